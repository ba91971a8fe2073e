"""The preview route effector (controller.aws.preview) against a moto server: the header rule is
created once, found again by its tag, kept after every rule of the user's, and removed alone."""

from __future__ import annotations

from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.aws.errors import AwsEffectError
from controller.aws.preview import (
    INVALID_PREVIEW_HEADER,
    NO_FREE_PRIORITY,
    TAG_PREVIEW,
    PreviewRoute,
    ensure_preview_route,
    preview_rule_priority,
    remove_preview_route,
)
from controller.testing.aws_world import WorldIds

OWNER = "production/pratiko"


def route(world: WorldIds, *values: str, owner: str = OWNER, header: str = "X-Release-Preview",
          target_group: str | None = None) -> PreviewRoute:
    return PreviewRoute(world.listener_arn, owner, header, values or ("2.0.0",),
                        target_group or world.canary_target_group_arn)


def user_rule(clients: AwsClients, world: WorldIds, priority: int, path: str) -> str:
    """A rule of the user's: a path sent to the stable target group."""
    return str(clients.elbv2.create_rule(
        ListenerArn=world.listener_arn, Priority=priority,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": [path]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": world.stable_target_group_arn}],
    )["Rules"][0]["RuleArn"])


def rules(clients: AwsClients, world: WorldIds) -> list[dict[str, Any]]:
    """The listener's rules other than the default, by priority, with their tags."""
    got = [r for r in clients.elbv2.describe_rules(ListenerArn=world.listener_arn)["Rules"] if not r["IsDefault"]]
    tags = {t["ResourceArn"]: {x["Key"]: x["Value"] for x in t["Tags"]}
            for t in clients.elbv2.describe_tags(ResourceArns=[r["RuleArn"] for r in got])["TagDescriptions"]} if got else {}
    return sorted(({**r, "Tags": tags.get(r["RuleArn"], {})} for r in got), key=lambda r: int(r["Priority"]))


def writes(clients: AwsClients) -> dict[str, int]:
    """The calls that change AWS, with their counts."""
    return {a: n for a, n in clients.calls.snapshot().items()
            if not a.split(":")[1].startswith(("Describe", "Get", "List"))}


def test_created_once_after_every_user_rule_and_found_again_by_its_tag(clients: AwsClients, world: WorldIds) -> None:
    user_rule(clients, world, 5, "/api/*")
    user_rule(clients, world, 20, "/admin/*")
    default_before = clients.elbv2.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]["DefaultActions"]
    clients.calls.reset()

    first = ensure_preview_route(clients.elbv2, route(world))
    second = ensure_preview_route(clients.elbv2, route(world))

    assert first is not None and "priority 21" in first and second is None
    assert writes(clients) == {"elasticloadbalancing:CreateRule": 1}
    ours = rules(clients, world)[-1]
    assert ours["Priority"] == "21" and ours["Tags"] == {TAG_PREVIEW: OWNER}
    assert ours["Conditions"] == [{"Field": "http-header", "HttpHeaderConfig": {
        "HttpHeaderName": "X-Release-Preview", "Values": ["2.0.0"]}}]
    assert ours["Actions"][0]["ForwardConfig"]["TargetGroups"] == [
        {"TargetGroupArn": world.canary_target_group_arn, "Weight": 1}]
    assert ours["Actions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"] == {"Enabled": False}
    # The user's rules and the default action (the Release's weights) are as they were.
    assert [r["Priority"] for r in rules(clients, world)] == ["5", "20", "21"]
    after = clients.elbv2.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]["DefaultActions"]
    assert after == default_before


def test_a_rule_the_user_adds_later_is_not_shadowed(clients: AwsClients, world: WorldIds) -> None:
    ensure_preview_route(clients.elbv2, route(world))
    assert preview_rule_priority(clients.elbv2, world.listener_arn, OWNER) == 1
    user_rule(clients, world, 30, "/late/*")
    clients.calls.reset()

    moved = ensure_preview_route(clients.elbv2, route(world))

    assert moved is not None and "moved" in moved
    assert writes(clients) == {"elasticloadbalancing:SetRulePriorities": 1}
    assert [(r["Priority"], r["Tags"].get(TAG_PREVIEW)) for r in rules(clients, world)] == [("30", None), ("31", OWNER)]
    assert ensure_preview_route(clients.elbv2, route(world)) is None


def test_a_changed_header_or_target_modifies_the_same_rule(clients: AwsClients, world: WorldIds) -> None:
    ensure_preview_route(clients.elbv2, route(world))
    [before] = rules(clients, world)
    clients.calls.reset()

    changed = ensure_preview_route(clients.elbv2, route(world, "2.1.*", "preview", header="X-Preview"))
    # ALB compares header names without case: a name that differs only in case is no change.
    same = ensure_preview_route(clients.elbv2, route(world, "2.1.*", "preview", header="x-preview"))

    assert changed is not None and "updated" in changed and same is None
    assert writes(clients) == {"elasticloadbalancing:ModifyRule": 1}
    [after] = rules(clients, world)
    assert after["RuleArn"] == before["RuleArn"] and after["Priority"] == before["Priority"]
    assert after["Conditions"][0]["HttpHeaderConfig"] == {"HttpHeaderName": "X-Preview", "Values": ["2.1.*", "preview"]}


def test_remove_deletes_only_the_owners_rule(clients: AwsClients, world: WorldIds) -> None:
    mine = user_rule(clients, world, 5, "/api/*")
    ensure_preview_route(clients.elbv2, route(world))
    ensure_preview_route(clients.elbv2, route(world, owner="production/other", target_group=world.stable_target_group_arn))
    # Another owner's preview rule is not the user's: ours is not moved behind it, nor it behind ours.
    clients.calls.reset()
    assert ensure_preview_route(clients.elbv2, route(world)) is None
    assert ensure_preview_route(clients.elbv2, route(world, owner="production/other",
                                                      target_group=world.stable_target_group_arn)) is None
    assert writes(clients) == {}

    removed = remove_preview_route(clients.elbv2, world.listener_arn, OWNER)
    again = remove_preview_route(clients.elbv2, world.listener_arn, OWNER)

    assert removed is not None and again is None
    left = rules(clients, world)
    assert [r["Tags"].get(TAG_PREVIEW) for r in left] == [None, "production/other"] and left[0]["RuleArn"] == mine
    assert preview_rule_priority(clients.elbv2, world.listener_arn, OWNER) is None


def test_no_place_after_the_users_rules_refuses_and_changes_nothing(clients: AwsClients, world: WorldIds) -> None:
    user_rule(clients, world, 50_000, "/last/*")
    clients.calls.reset()
    with pytest.raises(AwsEffectError) as err:
        ensure_preview_route(clients.elbv2, route(world))
    assert err.value.reason == NO_FREE_PRIORITY and not err.value.retryable
    assert writes(clients) == {} and len(rules(clients, world)) == 1


@pytest.mark.parametrize(("header", "values"), [
    ("X Preview", ("on",)),  # a space: not an HTTP field name
    ("X-" + "p" * 39, ("on",)),  # 41 characters
    ("X-Preview", ()),
    ("X-Preview", ("a", "b", "c", "d", "e", "f")),
    ("X-Preview", ("v" * 129,)),
    ("X-Preview", ("line\nbreak",)),
])
def test_a_header_alb_would_refuse_changes_nothing(clients: AwsClients, world: WorldIds, header: str,
                                                   values: tuple[str, ...]) -> None:
    bad = PreviewRoute(world.listener_arn, OWNER, header, values, world.canary_target_group_arn)
    with pytest.raises(AwsEffectError) as err:
        ensure_preview_route(clients.elbv2, bad)
    assert err.value.reason == INVALID_PREVIEW_HEADER and not err.value.retryable
    assert clients.calls.total() == 0  # refused before any call, not even a read


def test_missing_listener_or_target_group(clients: AwsClients, world: WorldIds) -> None:
    gone_tg = world.canary_target_group_arn.rsplit("/", 1)[0] + "/0000000000000000"
    with pytest.raises(AwsEffectError) as err:
        ensure_preview_route(clients.elbv2, route(world, target_group=gone_tg))
    assert err.value.reason == "TargetGroupNotFound" and rules(clients, world) == []

    gone_listener = world.listener_arn.rsplit("/", 1)[0] + "/0000000000000000"
    missing = PreviewRoute(gone_listener, OWNER, "X-Preview", ("on",), world.canary_target_group_arn)
    with pytest.raises(AwsEffectError) as err:
        ensure_preview_route(clients.elbv2, missing)
    assert err.value.reason == "ListenerNotFound" and not err.value.retryable
    assert remove_preview_route(clients.elbv2, gone_listener, OWNER) is None


def test_the_traffic_check_counts_a_preview_route_as_the_releases_own_not_another_user(
    clients: AwsClients, world: WorldIds
) -> None:
    """A spec edited mid-preview is checked again (once per generation): the Release's own preview
    rule forwarding to its canary group must not make its traffic look shared; a user's rule must."""
    from controller.api.release import ReleaseSpec
    from controller.aws.observe import Observer
    from controller.aws.traffic import TrafficChecker

    spec = ReleaseSpec.model_validate(world.spec())
    checker = TrafficChecker(clients)
    ensure_preview_route(clients.elbv2, route(world))
    obs = Observer(clients).observe(("production", "pratiko"), spec)
    assert checker.refusal(spec, obs) is None
    clients.elbv2.create_rule(
        ListenerArn=world.listener_arn, Priority=40000,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/beta/*"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": world.canary_target_group_arn}])
    refusal = checker.refusal(spec, obs)
    assert refusal is not None and "is also used by rule" in refusal
