"""The local balancer routes by the listener rules moto stores, as an ALB does.

Each test seeds moto with 1.4.0 in target group blue and 1.5.0 in green (tests/dataplane/conftest),
changes the listener's rules through the ELBv2 API the controller uses, and sends real requests
through the data plane's balancer: which version answers is what a user of the local world sees.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from controller.aws.preview import PreviewRoute, ensure_preview_route, remove_preview_route
from controller.testing.dataplane.balancer import read_log
from controller.testing.dataplane.loadgen import LoadGenerator
from tests.dataplane.conftest import World
from tests.dataplane.test_dataplane import make_plane

pytestmark = pytest.mark.timeout(120)

HEADER = "X-Release-Preview"


def header_rule(world: World, priority: int, *groups: tuple[str, int], values: tuple[str, ...] = ("2.0",)) -> str:
    """A preview rule: requests whose HEADER matches `values` go to `groups` (weighted, not sticky)."""
    return str(world.clients.elbv2.create_rule(
        ListenerArn=world.listener_arn, Priority=priority,
        Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": HEADER, "Values": list(values)}}],
        Actions=[{"Type": "forward", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": tg, "Weight": w} for tg, w in groups],
            "TargetGroupStickinessConfig": {"Enabled": False}}}],
    )["Rules"][0]["RuleArn"])


def path_rule(world: World, priority: int, pattern: str, action: dict[str, Any]) -> str:
    return str(world.clients.elbv2.create_rule(
        ListenerArn=world.listener_arn, Priority=priority,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": [pattern]}}], Actions=[action],
    )["Rules"][0]["RuleArn"])


def test_header_traffic_reaches_the_canary_and_production_traffic_never_does(world: World, tmp_path: Path) -> None:
    with make_plane(world, tmp_path) as plane:
        plane.wait_serving({"1.4.0", "1.5.0"})
        # The listener's default still sends everything to blue (100/0): only the rule reaches green.
        rule = header_rule(world, 10, (world.green, 1), values=("on", "2.*"))
        plane.wait_for(lambda p: [r.arn for r in p.rules] == [rule], 5, "the preview rule routed by")

        started = time.time()
        # Both at once, for four seconds each: preview traffic (the header in mixed case, as any
        # client may send it) and production traffic without it.
        preview = LoadGenerator(plane.balancer_url, rate=25, duration=4, headers={HEADER.lower(): "2.0.0-RC1"}).start()
        production = LoadGenerator(plane.balancer_url, rate=25, duration=4).start()
        seen_preview, seen_production = preview.join(timeout=20), production.join(timeout=20)
        assert preview.finished and production.finished
        assert seen_preview.sent == 100 and seen_preview.by_version == {"1.5.0": 100}
        assert seen_production.sent == 100 and seen_production.by_version == {"1.4.0": 100}

        # Over time, not only in total: in every second of the run, both kinds of traffic flowed and
        # each reached only its own version, by the rule the balancer logged for it.
        seconds: dict[int, Counter[tuple[str, str]]] = defaultdict(Counter)
        for e in read_log(plane.request_log):
            if e["time"] >= started:
                seconds[int(e["time"] - started)][(e["rule"], e["version"])] += 1
        assert {0, 1, 2, 3} <= set(seconds)
        for second in sorted(seconds):
            assert set(seconds[second]) <= {("10", "1.5.0"), ("default", "1.4.0")}, (second, seconds[second])
        for second in (0, 1, 2, 3):
            assert seconds[second][("10", "1.5.0")] > 0 and seconds[second][("default", "1.4.0")] > 0

        # Removed, the rule routes nothing: the header reaches production like any request.
        world.clients.elbv2.delete_rule(RuleArn=rule)
        plane.wait_for(lambda p: p.rules == (), 5, "no rule")
        after = LoadGenerator(plane.balancer_url, rate=100, count=20, headers={HEADER: "on"}).run()
        assert after.by_version == {"1.4.0": 20}


def test_rules_apply_in_priority_order_with_weights_and_fixed_responses(world: World, tmp_path: Path) -> None:
    elbv2 = world.clients.elbv2
    with make_plane(world, tmp_path) as plane:
        plane.wait_serving({"1.4.0", "1.5.0"})
        world.set_weights(50, 50)
        # A rule of the user's (priority 5) keeps /api/ on blue; the preview rule (priority 10)
        # splits header traffic 1:3; a maintenance page (priority 7) answers by itself.
        api = path_rule(world, 5, "/api/*", {"Type": "forward", "TargetGroupArn": world.blue})
        path_rule(world, 7, "/maintenance", {"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "503", "ContentType": "text/plain", "MessageBody": "back soon"}})
        preview = header_rule(world, 10, (world.blue, 1), (world.green, 3))
        plane.wait_for(lambda p: [r.label for r in p.rules] == ["5", "7", "10"]
                       and p.weights == {world.blue: 50, world.green: 50}, 5, "three rules and 50/50")

        def answers(path: str, count: int, headers: dict[str, str] | None = None) -> dict[str, int]:
            """Who answered `count` requests: versions, or statuses where the balancer answered itself."""
            stats = LoadGenerator(plane.balancer_url, rate=100, count=count, path=path, headers=headers or {}).run()
            assert stats.sent == count
            return stats.by_version or {str(s): n for s, n in stats.by_status.items()}

        preview_header = {HEADER: "2.0"}
        assert answers("/", 40) == {"1.4.0": 20, "1.5.0": 20}  # the default's 50/50
        assert answers("/", 40, {HEADER.replace("-", "_"): "2.0"}) == {"1.4.0": 20, "1.5.0": 20}  # `_` is not `-`
        assert answers("/", 40, preview_header) == {"1.4.0": 10, "1.5.0": 30}  # the preview rule's own 1:3
        assert answers("/api/v1/chat", 20, preview_header) == {"1.4.0": 20}  # the user's rule first: 5 < 10
        assert answers("/maintenance", 5, preview_header) == {"503": 5}

        # Moved before the user's rule (SetRulePriorities), the preview rule takes /api/ traffic too.
        elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": preview, "Priority": 1}])
        plane.wait_for(lambda p: [r.arn for r in p.rules][:2] == [preview, api], 5, "preview first")
        assert answers("/api/v1/chat", 20, preview_header) == {"1.4.0": 5, "1.5.0": 15}
        assert answers("/api/v1/chat", 20) == {"1.4.0": 20}
    entries = read_log(plane.request_log)
    assert {e["rule"] for e in entries} == {"default", "1", "5", "7", "10"}
    assert all(e["target_group"] is None and e["status"] == 503 for e in entries if e["rule"] == "7")


def test_the_preview_route_reaches_the_canary_without_shadowing_the_users_rules(world: World, tmp_path: Path) -> None:
    path_rule(world, 5, "/admin/*", {"Type": "forward", "TargetGroupArn": world.blue})  # the user's own
    preview = PreviewRoute(world.listener_arn, "production/pratiko", HEADER, ("2.*",), world.green)
    with make_plane(world, tmp_path) as plane:
        plane.wait_serving({"1.4.0", "1.5.0"})
        world.set_weights(90, 10)  # a canary step: the Release's weights on the default action
        assert ensure_preview_route(world.clients.elbv2, preview) is not None
        plane.wait_for(lambda p: [r.label for r in p.rules] == ["5", "6"], 5, "the preview rule after the user's")

        def versions(path: str, count: int, headers: dict[str, str] | None = None) -> dict[str, int]:
            stats = LoadGenerator(plane.balancer_url, rate=100, count=count, path=path, headers=headers or {}).run()
            assert stats.sent == count
            return stats.by_version

        assert versions("/", 40, {HEADER: "2.0.0"}) == {"1.5.0": 40}
        assert versions("/", 100) == {"1.4.0": 90, "1.5.0": 10}  # production: the step's weights, untouched
        assert versions("/admin/users", 20, {HEADER: "2.0.0"}) == {"1.4.0": 20}  # the user's rule still decides

        assert remove_preview_route(world.clients.elbv2, world.listener_arn, "production/pratiko") is not None
        plane.wait_for(lambda p: [r.label for r in p.rules] == ["5"], 5, "the preview rule removed")
        assert versions("/", 50, {HEADER: "2.0.0"}) == {"1.4.0": 45, "1.5.0": 5}
