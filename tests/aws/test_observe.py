"""Observation against a moto server: what the planner sees, what a read costs, what is missing."""

from __future__ import annotations

import dataclasses
import json

import pytest
from botocore.stub import Stubber

from controller.aws.apply import apply
from controller.aws.clients import AwsClients
from controller.aws.observe import Observer
from controller.planner.actions import (
    EnsurePreviewRoute,
    EnsureTaskSet,
    RemovePreviewRoute,
    SetListenerWeights,
    external_id_for,
)
from controller.testing.aws_world import WorldIds, seed_network, seed_world
from tests.aws.conftest import KEY, spec_of


def test_observe_returns_the_seeded_world(clients: AwsClients, world: WorldIds) -> None:
    obs = Observer(clients).observe(KEY, spec_of(world))

    assert obs.errors == ()
    svc = obs.service
    assert svc is not None and svc.deployment_controller == "EXTERNAL" and svc.desired_count == 2
    [ts] = svc.task_sets
    assert (ts.status, ts.image, ts.scale_percent) == ("PRIMARY", "repo/pratiko-backend:1.0.0", 100.0)
    assert ts.external_id is None  # seeded before the controller: adopted by image
    assert ts.target_group_arn == world.stable_target_group_arn
    assert obs.listener is not None
    assert dict(obs.listener.weights) == {world.stable_target_group_arn: 100, world.canary_target_group_arn: 0}
    assert obs.frontend is not None and obs.frontend.origin_path == "/releases/1.0.0"
    assert obs.frontend.staging is None
    assert obs.flags is None
    assert obs.backend_version_serving == "1.0.0"


def test_one_release_costs_four_reads_in_steady_state(clients: AwsClients, world: WorldIds) -> None:
    observer = Observer(clients)
    observer.observe(KEY, spec_of(world))
    first = clients.calls.snapshot()
    assert first["ecs:DescribeTaskDefinition"] == 1  # the task set's revision, once

    clients.calls.reset()
    observer.observe(KEY, spec_of(world))
    assert clients.calls.snapshot() == {
        "ecs:DescribeServices": 1,
        "elasticloadbalancing:DescribeListeners": 1,
        "cloudfront:GetDistribution": 1,
        "ssm:GetParameters": 1,
    }


def test_published_flags_are_read_back(clients: AwsClients, world: WorldIds) -> None:
    clients.ssm.put_parameter(
        Name="/release-controller/production/pratiko/flags", Value=json.dumps({"new_chat": True}), Type="String"
    )
    obs = Observer(clients).observe(KEY, spec_of(world))
    assert obs.flags == {"new_chat": True}


def test_serving_version_follows_the_listener_weights(clients: AwsClients, world: WorldIds) -> None:
    image2 = "repo/pratiko-backend:2.0.0"
    apply([EnsureTaskSet(world.cluster, world.service, external_id_for(*KEY, image2), "api", image2,
                         world.canary_target_group_arn, None, 100.0)], clients)
    observer = Observer(clients)
    spec = spec_of(world, version="2.0.0")

    def serving_at(canary_weight: int) -> str | None:
        apply([SetListenerWeights(world.listener_arn, {world.stable_target_group_arn: 100 - canary_weight,
                                                      world.canary_target_group_arn: canary_weight})], clients)
        return observer.observe(KEY, spec).backend_version_serving

    assert serving_at(10) == "1.0.0"
    assert serving_at(60) == "2.0.0"
    canary = observer.observe(KEY, spec).service.task_set(external_id_for(*KEY, image2))  # type: ignore[union-attr]
    assert canary is not None and canary.image == image2 and canary.status == "ACTIVE"


def test_ecs_controller_service(clients: AwsClients) -> None:
    world = seed_world(clients, name="rolling", deployment_controller="ECS")
    obs = Observer(clients).observe(KEY, spec_of(world))
    assert obs.errors == ()
    assert obs.service is not None and obs.service.deployment_controller == "ECS"
    assert obs.service.task_sets == ()
    assert obs.service.image == "repo/pratiko-backend:1.0.0"
    assert [d.status for d in obs.service.deployments] == ["PRIMARY"]
    assert obs.backend_version_serving == "1.0.0"


def _broken(world: WorldIds, what: str) -> dict[str, object]:
    spec = world.spec()
    backend, frontend = spec["backend"], spec["frontend"]
    missing_tg = world.canary_target_group_arn.rsplit("/", 1)[0] + "/0000000000000000"
    if what == "ClusterNotFound":
        backend["ecs"]["cluster"] = "no-such-cluster"
    elif what == "ServiceNotFound":
        backend["ecs"]["service"] = "no-such-service"
    elif what == "ListenerNotFound":
        backend["traffic"]["listenerArn"] = world.listener_arn.rsplit("/", 1)[0] + "/0000000000000000"
    elif what == "TargetGroupNotFound":
        backend["traffic"]["canaryTargetGroupArn"] = missing_tg.replace("pratiko-green", "pratiko-gone")
    elif what == "DistributionNotFound":
        frontend["cloudfront"]["distributionId"] = "ENOSUCHDIST"
    elif what == "OriginNotFound":
        frontend["cloudfront"]["originId"] = "api"
    return spec


@pytest.mark.parametrize(
    "reason",
    ["ClusterNotFound", "ServiceNotFound", "ListenerNotFound", "TargetGroupNotFound", "DistributionNotFound",
     "OriginNotFound"],
)
def test_missing_parts_are_reported_with_their_reason(clients: AwsClients, world: WorldIds, reason: str) -> None:
    from controller.api.release import ReleaseSpec

    obs = Observer(clients).observe(KEY, ReleaseSpec.model_validate(_broken(world, reason)))
    assert [e.reason for e in obs.errors] == [reason]
    assert not obs.errors[0].retryable
    # The rest of the world is still seen.
    if reason not in ("ClusterNotFound", "ServiceNotFound"):
        assert obs.service is not None and len(obs.service.task_sets) == 1
    mutating = [a for a in clients.calls.snapshot() if not a.split(":")[1].startswith(("Describe", "Get", "List"))]
    assert mutating == []


def test_throttling_after_retries_is_a_retryable_aws_error(clients: AwsClients, world: WorldIds) -> None:
    # Stubbed at the client (after botocore's retries would have given up): moto does not throttle.
    ecs = clients.session.client("ecs", region_name=clients.region, endpoint_url=clients.endpoint_url)
    with Stubber(ecs) as stub:
        stub.add_client_error("DescribeServices", service_error_code="ThrottlingException", http_status_code=400)
        obs = Observer(dataclasses.replace(clients, ecs=ecs)).observe(KEY, spec_of(world))
    [error] = obs.errors
    assert error.reason == "AwsError" and error.retryable
    assert obs.listener is not None  # the other surfaces were still read


def test_twelve_services_in_one_cluster_cost_two_describe_services(clients: AwsClients) -> None:
    network = seed_network(clients, "fleet")
    worlds = [seed_world(clients, name=f"svc{i:02d}", cluster="shared", network=network) for i in range(12)]
    items = [(("fleet", w.name), spec_of(w)) for w in worlds]
    observer = Observer(clients)
    observer.observe_many(items)  # warms the task definition cache

    clients.calls.reset()
    seen = observer.observe_many(items)
    calls = clients.calls.snapshot()
    assert calls["ecs:DescribeServices"] == 2
    assert calls == {
        "ecs:DescribeServices": 2,
        "elasticloadbalancing:DescribeListeners": 1,
        "cloudfront:ListDistributions": 1,
        "ssm:GetParameters": 2,
    }
    assert sum(calls.values()) <= len(items)  # at most one read per Release per resync
    for (key, _), w in zip(items, worlds):
        obs = seen[key]
        assert obs.errors == ()
        assert obs.service is not None and obs.service.name == w.service
        assert obs.listener is not None and obs.listener.weight(w.stable_target_group_arn) == 100
        assert obs.frontend is not None and obs.frontend.origin_path == "/releases/1.0.0"

    # A steady worker takes its snapshot without a call; a worker woken by a change reads afresh.
    clients.calls.reset()
    assert observer.observe(items[3][0], items[3][1], fresh=False) is seen[items[3][0]]
    assert clients.calls.total() == 0
    observer.observe(items[3][0], items[3][1], fresh=False)  # the snapshot was used up
    assert clients.calls["ecs:DescribeServices"] == 1


def test_old_snapshots_are_not_served(clients: AwsClients, world: WorldIds) -> None:
    now = [0.0]
    observer = Observer(clients, snapshot_max_age=60, clock=lambda: now[0])
    observer.observe_many([(KEY, spec_of(world))])
    now[0] = 61.0
    clients.calls.reset()
    observer.observe(KEY, spec_of(world), fresh=False)
    assert clients.calls["ecs:DescribeServices"] == 1


def test_a_spec_with_a_preview_reads_the_preview_rules_and_apply_makes_and_removes_them(
    clients: AwsClients, world: WorldIds
) -> None:
    """The preview route through the planner's actions and back through the observer: found by its
    tag, read only for a spec that has a preview (two more reads), removed by `RemovePreviewRoute`."""
    strategy = {"type": "Canary", "canary": {"steps": [{"preview": {"duration": "1m"}}, {"setWeight": 20}]}}
    previewing, plain = spec_of(world, strategy=strategy), spec_of(world)
    observer = Observer(clients)
    before = observer.observe(KEY, previewing)
    assert before.listener is not None and before.listener.previews_read and before.listener.previews == ()

    owner = f"{KEY[0]}/{KEY[1]}"
    ensure = EnsurePreviewRoute(world.listener_arn, owner, "aws-cf-cd-release-preview", ("2.0.0",),
                                world.canary_target_group_arn)
    assert apply([ensure], clients) and apply([ensure], clients) == []  # idempotent: the second changes nothing
    clients.calls.reset()
    seen = observer.observe(KEY, previewing)
    assert seen.listener is not None
    [rule] = seen.listener.preview_of(owner)
    assert rule.routes("AWS-CF-CD-Release-Preview", "2.0.0", world.canary_target_group_arn)
    assert rule.priority >= 1 and seen.listener.weight(world.canary_target_group_arn) == 0
    calls = clients.calls.snapshot()
    assert calls["elasticloadbalancing:DescribeRules"] == 1 and calls["elasticloadbalancing:DescribeTags"] == 1

    clients.calls.reset()
    other = observer.observe(KEY, plain)  # no preview in the spec: no rule read, none reported
    assert other.listener is not None and not other.listener.previews_read and other.listener.previews == ()
    assert "elasticloadbalancing:DescribeRules" not in clients.calls.snapshot()

    assert apply([RemovePreviewRoute(world.listener_arn, owner)], clients)
    gone = observer.observe(KEY, previewing)
    assert gone.listener is not None and gone.listener.previews == ()


def test_a_tier_with_a_preview_reads_each_services_listener_rules_and_each_rule_is_its_own(
    clients: AwsClients,
) -> None:
    """A tier of several services with a preview (docs/many-services.md, section 3): the observer reads
    the preview rules of every service's listener (a worker has none), and each service's rule, made by
    the planner's action under `<namespace>/<name>/<service>`, is found on its own listener only,
    forwarding to its own canary group; removing one leaves the other."""
    from tests.aws.test_observe_services import seed_tier, tier_spec

    worlds = seed_tier(clients)
    spec = tier_spec(worlds)
    previewing = spec.model_copy(update={"strategy": type(spec.strategy).model_validate(
        {"type": "Canary", "canary": {"steps": [{"preview": {"duration": "1m"}}, {"setWeight": 20}]}})})
    observer = Observer(clients)
    before = observer.observe(KEY, previewing)
    assert before.errors == ()
    for name in ("api", "mcp"):
        listener = before.services[name].listener
        assert listener is not None and listener.previews_read and listener.previews == ()
    assert before.services["worker"].listener is None

    owners = {name: f"{KEY[0]}/{KEY[1]}/{name}" for name in ("api", "mcp")}
    ensure = [EnsurePreviewRoute(worlds[n].listener_arn, owners[n], "aws-cf-cd-release-preview", ("2.0.0",),
                                 worlds[n].canary_target_group_arn) for n in owners]
    assert apply(ensure, clients)
    clients.calls.reset()
    seen = observer.observe(KEY, previewing)
    for name, owner in owners.items():
        listener = seen.services[name].listener
        assert listener is not None
        [rule] = listener.previews  # its own rule, and no other service's
        assert rule.owner == owner and rule.routes("aws-cf-cd-release-preview", "2.0.0",
                                                   worlds[name].canary_target_group_arn)
        assert listener.weight(worlds[name].canary_target_group_arn) == 0
    calls = clients.calls.snapshot()
    # One rule read per listener with traffic (both in the same DescribeListeners batch).
    assert calls["elasticloadbalancing:DescribeRules"] == 2 and calls["elasticloadbalancing:DescribeTags"] == 2
    assert calls["elasticloadbalancing:DescribeListeners"] == 1

    assert apply([RemovePreviewRoute(worlds["api"].listener_arn, owners["api"])], clients)
    after = observer.observe(KEY, previewing)
    assert after.services["api"].listener is not None and after.services["api"].listener.previews == ()
    mcp = after.services["mcp"].listener
    assert mcp is not None and [r.owner for r in mcp.previews] == [owners["mcp"]]
