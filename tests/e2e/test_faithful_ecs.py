"""Deployments that fail the way real ECS deployments fail, on the local ECS (controller.testing.local_ecs):
a container that exits on start, a task that takes seconds to pass its health check, the stale
stability ECS reports just after a scale change, and an ECR image that does not exist.

Each test seeds its own world, adopts it with an analysed canary Release (as in test_analysis), and
releases 2.0.0 misbehaving in one way; it watches the Release status, its Events and history, the
listener in moto, and the balancer's own request log.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, push_image, seed_world
from controller.testing.dataplane import write_behaviour
from controller.testing.dataplane.scenario import canary_release, traffic_of
from controller.testing.env import LocalEnvironment
from controller.testing.operator import OperatorProcess
from tests.e2e.helpers import Releases, condition, wait_passes, weights_by_colour as weights
from tests.e2e.test_analysis import HEALTHY, NAME, Plane, adopt, events, start_plane

pytestmark = pytest.mark.timeout(420)

__all__ = ["start_plane"]  # the fixture, shared with test_analysis


def behave(plane: Plane, version: str, **knobs: object) -> None:
    write_behaviour(plane.behaviour, {**HEALTHY, version: {"error_rate": 0.0, "latency_ms": 5, **knobs}})


def test_crash_on_start_canary_gets_no_request_and_is_rolled_back_with_the_stopped_reason(
        operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    plane = start_plane(world)
    adopt(releases, world, namespace, prometheus)
    behave(plane, "2.0.0", crash_on_start=True)
    started = time.time()
    body = canary_release(world, name=NAME, namespace=namespace, version="2.0.0", prometheus_url=prometheus)
    body["spec"]["progressDeadline"] = "90s"
    releases.apply(body)

    status = releases.wait_phase(namespace, NAME, "RolledBack", 80, generation=2)
    elapsed = time.time() - started
    assert elapsed < 90, f"rolled back after {elapsed:.0f}s: not before the progress deadline"
    ready = condition(status, "Ready")
    assert ready["reason"] == "TasksStopped", ready
    assert "Essential container in task exited (exit code 3)" in ready["message"], ready
    last = status["history"][-1]
    assert last["result"] == "RolledBack" and "exit code 3" in last["message"], status["history"]
    rolled = [m for r, _, m in events(releases, namespace) if r == "RolledBack"]
    assert rolled and "Essential container in task exited" in rolled[-1], rolled
    assert weights(aws, world) == {"blue": 100, "green": 0}
    assert traffic_of(plane.log(), "2.0.0", since=started).requests == 0


def test_slow_starting_canary_gets_weight_only_once_healthy(
        operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    plane = start_plane(world)
    adopt(releases, world, namespace, prometheus)
    start_seconds = 6.0  # the operator polls a waiting rollout every second or so: several polls
    behave(plane, "2.0.0", start_seconds=start_seconds)
    started = time.time()
    releases.apply(canary_release(world, name=NAME, namespace=namespace, version="2.0.0", prometheus_url=prometheus))

    status = releases.wait_phase(namespace, NAME, "Succeeded", 150, generation=2)
    assert status["backend"]["stableVersion"] == "2.0.0"
    log = [e for e in plane.log() if float(e["time"]) >= started]
    assert not [e for e in log if int(e["status"]) >= 500], "5xx while a slow canary started"
    canary = traffic_of(log, "2.0.0")
    assert canary.first is not None and canary.first - started >= start_seconds, (canary.first, started)


def test_stale_stability_after_a_scale_change_never_lets_weight_through(
        operator: OperatorProcess, releases: Releases, namespace: str, aws: AwsClients,
        local_env: LocalEnvironment, start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    # Four tasks: 25% is one canary task, 50% two, so the second step is a real scale-up.
    world = seed_world(aws, name=f"stale{os.getpid()}", image="repo/pratiko-backend:1.0.0", desired_count=4)
    steps = ({"setWeight": 25}, {"pause": {"duration": "2s"}}, {"setWeight": 50}, {"pause": {"duration": "2s"}})
    plane = start_plane(world)
    adopt(releases, world, namespace, prometheus, steps=steps)
    behave(plane, "2.0.0", start_seconds=3.0)

    # Watch what a user would: the listener's canary weight and the canary group's healthy targets.
    seen: list[tuple[float, int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.1):
            try:
                w = weights(aws, world)["green"]
                health = aws.elbv2.describe_target_health(TargetGroupArn=world.canary_target_group_arn)
            except Exception:  # noqa: BLE001 - a missed sample only loses resolution
                continue
            healthy = sum(1 for d in health["TargetHealthDescriptions"] if d["TargetHealth"]["State"] == "healthy")
            seen.append((time.time(), w, healthy))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        releases.apply(canary_release(world, name=NAME, namespace=namespace, version="2.0.0",
                                      prometheus_url=prometheus, steps=steps))
        releases.wait_phase(namespace, NAME, "Succeeded", 150, generation=2)
    finally:
        stop.set()
        watcher.join(5)
    # Weight w needs ceil(4 * w / 100) healthy canary tasks behind it, at every sample.
    bad = [(t, w, h) for t, w, h in seen if 0 < w < 100 and h < -(-4 * w // 100)]
    assert not bad, f"weight ahead of healthy capacity: {bad[:5]}"
    assert any(w == 50 for _, w, _ in seen), "the 50% step was never observed"


def test_missing_ecr_image_is_refused_before_anything_is_created(
        operator: OperatorProcess, releases: Releases, namespace: str, aws: AwsClients,
        local_env: LocalEnvironment) -> None:
    assert local_env.prometheus is not None
    registry = f"123456789012.dkr.ecr.{aws.region}.amazonaws.com"
    world = seed_world(aws, name=f"ecr{os.getpid()}", image=f"{registry}/pratiko-backend:1.0.0")
    releases.apply(canary_release(world, name=NAME, namespace=namespace, version="1.0.0",
                                  prometheus_url=local_env.prometheus.url))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    before = aws.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]["taskSets"]

    missing = f"{registry}/pratiko-backend:2.0.0"  # never pushed
    releases.apply(canary_release(world, name=NAME, namespace=namespace, version="2.0.0",
                                  prometheus_url=local_env.prometheus.url))
    status = releases.wait(namespace, NAME, lambda s: condition(s, "Ready").get("reason") == "ImageNotFound", 60,
                           "Ready False ImageNotFound")
    assert missing in condition(status, "Ready")["message"]
    wait_passes(operator, namespace, NAME, 2)  # a few passes: still nothing created
    after = aws.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]["taskSets"]
    assert [t["id"] for t in after] == [t["id"] for t in before]
    assert weights(aws, world) == {"blue": 100, "green": 0}
    assert any(r == "ImageNotFound" for r, _, _ in events(releases, namespace))

    # Pushed: the same spec goes ahead by itself.
    push_image(aws, missing)
    releases.wait(namespace, NAME, lambda s: condition(s, "Ready").get("reason") != "ImageNotFound", 60,
                  "the refusal lifted once the image exists")
