"""Every strategy end to end: the operator moves moto's ECS, ALB, CloudFront and SSM step by step.

Each test seeds a world running 1.0.0, lets a Release adopt it, changes it to 2.0.0 and watches
AWS from the outside while the operator works: a background thread polls the listener (and the
service's task sets) every 0.2 s, so the weights a user's traffic would have seen are asserted, not
the status the controller claims. Pauses are seconds long so each test takes seconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import (
    AwsWatch,
    Releases,
    assert_serving_only,
    cli,
    condition,
    flags_published,
    hold_for_passes,
    image_of,
    invalidated_paths,
    live_task_sets,
    origin_path,
    snapshot,
    target_group_of,
    task_definition_images,
    wait_converged,
    wait_for,
    wait_passes,
)

pytestmark = pytest.mark.timeout(240)

CANARY_STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {"duration": "2s"}}, {"setWeight": 60}, {"pause": {"duration": "2s"}}]
CANARY = {"type": "Canary", "canary": {"steps": CANARY_STEPS}}
SHORT_WINDOW = {"window": "1s"}  # the previous version is deleted a second after promotion


# --------------------------------------------------------------------------- shared assertions


def adopt(releases: Releases, aws: AwsClients, world: WorldIds, namespace: str, name: str,
          strategy: dict[str, Any], **extra: Any) -> None:
    """Apply the Release at 1.0.0 and check it adopts the seeded world without touching it."""
    before = snapshot(aws, world, namespace, name)
    releases.apply(release_for(world, name=name, namespace=namespace, version="1.0.0", frontend_version="1.0.0",
                               strategy=strategy, **extra))
    status = releases.wait_phase(namespace, name, "Succeeded", 60, generation=1)
    assert status["backend"]["stableVersion"] == "1.0.0"
    after = snapshot(aws, world, namespace, name)
    # Flags are published on adoption (the spec declares them); nothing else moves.
    assert {**after, "flags": None, "invalidations": 0} == {**before, "flags": None, "invalidations": 0}
    if world.initial_task_set_arn:
        assert [t["taskSetArn"] for t in live_task_sets(aws, world)] == [world.initial_task_set_arn]


def assert_capacity_before_traffic(watch: AwsWatch) -> None:
    """In every sample, a target group with traffic had a task set at least that scale behind it, read
    just before or just after the listener (`AwsWatch`: growing capacity leads, shrinking follows)."""
    for s in watch.samples:
        for tg, weight in s.weights.items():
            if weight == 0:
                continue
            scales = [t["scale"]["value"] for t in (*s.task_sets_before, *s.task_sets) if target_group_of(t) == tg]
            assert scales and max(scales) >= weight, f"weight {weight} on {tg} with scales {scales}"


def assert_frontend_and_flags(aws: AwsClients, world: WorldIds, namespace: str, name: str, version: str,
                              flags: dict[str, Any], invalidations_before: int) -> None:
    assert origin_path(aws, world) == f"/releases/{version}"
    invalidations = invalidated_paths(aws, world)
    assert len(invalidations) > invalidations_before
    assert any("/index.html" in paths for paths in invalidations[invalidations_before:]), invalidations
    assert flags_published(aws, namespace, name) == flags


# --------------------------------------------------------------------------- every strategy


ROLLING = {"type": "Rolling", "rolling": {"steps": [25, 50, 75, 100], "interval": "2s"}}
BLUE_GREEN = {"type": "BlueGreen", "blueGreen": {"previewDuration": "2s", "scaleDownDelay": "2s"}}

STRATEGIES = [
    # id, strategy, canary target group weights seen in moto, history strategy
    pytest.param({"type": "Fast"}, [0, 100], "Fast", id="fast"),
    pytest.param(ROLLING, [0, 25, 50, 75, 100], "Rolling", id="rolling"),
    pytest.param(CANARY, [0, 20, 60, 100], "Canary", id="canary"),
    pytest.param(BLUE_GREEN, [0, 100], "BlueGreen", id="bluegreen"),
    pytest.param({"type": "Auto", "changeClass": "api", "canary": {"steps": CANARY_STEPS}}, [0, 20, 60, 100], "Canary",
                 id="auto-api"),
    pytest.param({"type": "Auto", "changeClass": "minor"}, [0, 100], "Fast", id="auto-minor"),
]


@pytest.mark.parametrize(("strategy", "weights", "resolved"), STRATEGIES)
def test_strategy_walks_its_steps_from_v1_to_v2(
    strategy: dict[str, Any], weights: list[int], resolved: str, operator: OperatorProcess, releases: Releases,
    namespace: str, world: WorldIds, aws: AwsClients, env_vars: dict[str, str],
) -> None:
    adopt(releases, aws, world, namespace, "app", strategy, featureFlags={"new_chat_interface": False},
          rollback=SHORT_WINDOW)
    invalidations = len(invalidated_paths(aws, world))

    with AwsWatch(env_vars, world) as watch:
        releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                                   strategy=strategy, featureFlags={"new_chat_interface": True},
                                   rollback=SHORT_WINDOW))
        status = wait_converged(releases, aws, world, namespace, "app", "2.0.0", generation=2)
        wait_for("one live task set", lambda: len(watch.latest().task_sets) == 1, 20)

    # The seeded world serves from the "blue" group; the new version comes in on "green".
    assert watch.weights_of(world.canary_target_group_arn) == weights
    assert watch.weights_of(world.stable_target_group_arn) == [100 - w for w in weights]
    assert_capacity_before_traffic(watch)
    assert max(len(s.task_sets) for s in watch.samples) == 2
    assert_serving_only(aws, world, "2.0.0")
    assert_frontend_and_flags(aws, world, namespace, "app", "2.0.0", {"new_chat_interface": True}, invalidations)
    assert task_definition_images(aws, world) == [world.image, world.image.replace("1.0.0", "2.0.0")]
    assert status["strategy"] == resolved
    assert status["frontend"]["stableVersion"] == "2.0.0"
    assert [h["result"] for h in status["history"]][-1] == "Succeeded"
    assert status["history"][-1]["backendVersion"] == "2.0.0"

    if resolved == "BlueGreen":
        # Preview: green at full scale with no traffic; after the switch, blue warm with none.
        green = world.canary_target_group_arn
        preview = [s for s in watch.samples if s.weights[green] == 0 and len(s.task_sets) == 2
                   and all(t["scale"]["value"] == 100.0 for t in s.task_sets)]
        warm = [s for s in watch.samples if s.weights[green] == 100 and len(s.task_sets) == 2]
        assert preview and preview[-1].at - preview[0].at >= 1.5
        assert warm and warm[-1].at - warm[0].at >= 1.5


def test_rolling_on_an_ecs_controller_service_updates_the_service(
    operator: OperatorProcess, releases: Releases, namespace: str, aws: AwsClients, env_vars: dict[str, str],
) -> None:
    world = seed_world(aws, name=f"e{os.getpid()}x{time.monotonic_ns() % 10**6}", deployment_controller="ECS")
    adopt(releases, aws, world, namespace, "svc", ROLLING)
    invalidations = len(invalidated_paths(aws, world))

    with AwsWatch(env_vars, world, task_sets=False) as watch:
        releases.apply(release_for(world, name="svc", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                                   strategy=ROLLING, featureFlags={"beta": True}))
        status = wait_converged(releases, aws, world, namespace, "svc", "2.0.0", generation=2)

    # ECS rolls the tasks itself behind the one target group: the listener never moves.
    assert watch.weights_of(world.stable_target_group_arn) == [100]
    service = aws.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]
    assert image_of(aws, service["taskDefinition"]).endswith(":2.0.0")
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert not service.get("taskSets")
    assert status["strategy"] == "Rolling"
    assert_frontend_and_flags(aws, world, namespace, "svc", "2.0.0", {"beta": True}, invalidations)


@pytest.mark.parametrize("strategy", [CANARY, BLUE_GREEN], ids=["canary", "bluegreen"])
def test_canary_and_bluegreen_refuse_an_ecs_controller_service(
    strategy: dict[str, Any], operator: OperatorProcess, releases: Releases, namespace: str, aws: AwsClients,
) -> None:
    world = seed_world(aws, name=f"r{os.getpid()}x{time.monotonic_ns() % 10**6}", deployment_controller="ECS")
    adopt(releases, aws, world, namespace, "svc", strategy)
    before = snapshot(aws, world, namespace, "svc")

    releases.apply(release_for(world, name="svc", namespace=namespace, version="2.0.0", frontend_version="1.0.0",
                               strategy=strategy))
    status = releases.wait(namespace, "svc", lambda s: s.get("observedGeneration") == 2, 30, "generation 2")
    progressing = condition(status, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "DeploymentControllerNotExternal")
    assert "EXTERNAL" in progressing["message"]
    assert_unchanged_for(operator, aws, world, namespace, "svc", before, passes=2)
    assert "DeploymentControllerNotExternal" in {e["reason"] for e in releases.events(namespace, "svc")}


def assert_unchanged_for(operator: OperatorProcess, aws: AwsClients, world: WorldIds, namespace: str, name: str,
                         before: dict[str, Any], passes: int) -> None:
    """AWS stays exactly as `before` while the operator makes `passes` passes over the Release."""

    def unchanged() -> None:
        assert snapshot(aws, world, namespace, name) == before

    hold_for_passes(operator, namespace, name, passes, unchanged)


# --------------------------------------------------------------------------- bad references


BROKEN = [
    pytest.param(lambda spec: spec["backend"]["ecs"].update(service="no-such-service"), "ServiceNotFound",
                 id="service"),
    pytest.param(lambda spec: spec["backend"]["traffic"].update(
        listenerArn=spec["backend"]["traffic"]["listenerArn"].rsplit("/", 1)[0] + "/0123456789abcdef"),
        "ListenerNotFound", id="listener"),
    pytest.param(lambda spec: spec["frontend"]["cloudfront"].update(distributionId="E0NOSUCHDIST00"),
                 "DistributionNotFound", id="distribution"),
]


@pytest.mark.parametrize(("break_spec", "reason"), BROKEN)
def test_a_missing_reference_is_reported_and_nothing_changes(
    break_spec: Callable[[dict[str, Any]], None], reason: str, operator: OperatorProcess, releases: Releases,
    namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    before = snapshot(aws, world, namespace, "broken")
    body = release_for(world, name="broken", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                       strategy=CANARY, featureFlags={"new_chat_interface": True})
    break_spec(body["spec"])
    releases.apply(body)
    status = releases.wait(namespace, "broken", lambda s: condition(s, "Ready").get("reason") == reason, 30, reason)
    ready = condition(status, "Ready")
    assert ready["status"] == "False" and ready["message"]
    assert status.get("phase", "Pending") == "Pending"
    assert_unchanged_for(operator, aws, world, namespace, "broken", before, passes=2)
    warnings = [e for e in releases.events(namespace, "broken") if e["reason"] == reason]
    # Retried with backoff, reported once: not an event (or a pass) per second.
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning" and warnings[0].get("count", 1) <= 2


# --------------------------------------------------------------------------- steering a canary


def start_canary(releases: Releases, aws: AwsClients, world: WorldIds, namespace: str, steps: list[dict[str, Any]],
                 version: str = "2.0.0", **extra: Any) -> None:
    releases.apply(release_for(world, name="app", namespace=namespace, version=version, frontend_version=version,
                               strategy={"type": "Canary", "canary": {"steps": steps}}, rollback=SHORT_WINDOW,
                               **extra))


def test_indefinite_pause_waits_for_promote(operator: OperatorProcess, releases: Releases, namespace: str,
                                             world: WorldIds, aws: AwsClients, env_vars: dict[str, str]) -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {"duration": "1s"}}]
    adopt(releases, aws, world, namespace, "app", {"type": "Canary", "canary": {"steps": steps}})
    green = world.canary_target_group_arn
    with AwsWatch(env_vars, world) as watch:
        start_canary(releases, aws, world, namespace, steps)
        status = releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "WaitingForPromote",
                               60, "WaitingForPromote")
        assert status["phase"] == "Paused" and status["backend"]["canaryWeight"] == 20
        held_from = time.monotonic()
        wait_passes(operator, namespace, "app", 2)  # several passes: still held
        held_until = time.monotonic()
        assert releases.status(namespace, "app")["phase"] == "Paused"
        assert watch.weights_of(green) == [0, 20]

        out = cli(env_vars, "promote", "app", "-n", namespace).stdout
        assert "promote" in out
        wait_converged(releases, aws, world, namespace, "app", "2.0.0", generation=2)
    assert watch.weights_of(green) == [0, 20, 60, 100]
    assert all(s.weights[green] == 20 for s in watch.samples if held_from <= s.at <= held_until)
    assert_serving_only(aws, world, "2.0.0")
    assert "Promote" in {e["reason"] for e in releases.events(namespace, "app")}


def test_paused_holds_the_weight_until_unpaused(operator: OperatorProcess, releases: Releases, namespace: str,
                                               world: WorldIds, aws: AwsClients, env_vars: dict[str, str]) -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {"duration": "5s"}}, {"setWeight": 60}, {"pause": {"duration": "2s"}}]
    adopt(releases, aws, world, namespace, "app", {"type": "Canary", "canary": {"steps": steps}})
    green = world.canary_target_group_arn
    with AwsWatch(env_vars, world) as watch:
        start_canary(releases, aws, world, namespace, steps)
        wait_for("canary weight 20", lambda: watch.latest().weights[green] == 20, 60)
        start_canary(releases, aws, world, namespace, steps, paused=True)
        status = releases.wait(namespace, "app", lambda s: s.get("phase") == "Paused", 30, "Paused")
        assert condition(status, "Progressing")["reason"] == "Paused"
        held = watch.latest().weights[green]
        held_from = time.monotonic()
        # Longer than the 5 s step: the step timer is frozen too. (A negative check over the clock
        # on purpose: what must not fire is a timer; passes happen meanwhile, every resync.)
        wait_for("a held rollout", lambda: time.monotonic() - held_from > 8, 12)
        assert {s.weights[green] for s in watch.samples if s.at >= held_from} == {held}
        assert releases.status(namespace, "app")["phase"] == "Paused"

        start_canary(releases, aws, world, namespace, steps, paused=False)
        wait_converged(releases, aws, world, namespace, "app", "2.0.0", generation=4)
    assert watch.weights_of(green) == [0, 20, 60, 100]
    assert_serving_only(aws, world, "2.0.0")
    assert {"Paused", "Resumed"} <= {e["reason"] for e in releases.events(namespace, "app")}


def test_spec_change_mid_rollout_restarts_from_stable(operator: OperatorProcess, releases: Releases, namespace: str,
                                                      world: WorldIds, aws: AwsClients, env_vars: dict[str, str]) -> None:
    slow: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 60}, {"pause": {"duration": "1s"}}]
    adopt(releases, aws, world, namespace, "app", {"type": "Canary", "canary": {"steps": slow}})
    green = world.canary_target_group_arn
    with AwsWatch(env_vars, world) as watch:
        start_canary(releases, aws, world, namespace, slow)
        releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "Pausing", 60,
                      "the first pause")
        assert watch.latest().weights[green] == 20
        start_canary(releases, aws, world, namespace, CANARY_STEPS, version="3.0.0")
        status = wait_converged(releases, aws, world, namespace, "app", "3.0.0", generation=3)
        wait_for("one live task set", lambda: len(watch.latest().task_sets) == 1, 20)
    # 2.0.0's traffic goes back to stable, then 3.0.0 walks every step from the start.
    assert watch.weights_of(green) == [0, 20, 0, 20, 60, 100]
    assert max(len(s.task_sets) for s in watch.samples) == 2
    assert_serving_only(aws, world, "3.0.0")
    assert origin_path(aws, world) == "/releases/3.0.0"
    results = [(h["backendVersion"], h["result"]) for h in status["history"]]
    assert results[-2:] == [("2.0.0", "Superseded"), ("3.0.0", "Succeeded")]
    assert "Superseded" in {e["reason"] for e in releases.events(namespace, "app")}


def test_abort_puts_traffic_back_then_retry_starts_again(operator: OperatorProcess, releases: Releases,
                                                          namespace: str, world: WorldIds, aws: AwsClients,
                                                          env_vars: dict[str, str]) -> None:
    slow: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 60}, {"pause": {"duration": "1s"}}]
    adopt(releases, aws, world, namespace, "app", {"type": "Canary", "canary": {"steps": slow}})
    green, blue = world.canary_target_group_arn, world.stable_target_group_arn
    with AwsWatch(env_vars, world) as watch:
        start_canary(releases, aws, world, namespace, slow)
        releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "Pausing", 60,
                      "the first pause")
        cli(env_vars, "abort", "app", "-n", namespace)
        status = releases.wait_phase(namespace, "app", "RolledBack", 30)
        wait_for("the canary task set deleted", lambda: len(watch.latest().task_sets) == 1, 20)
        assert condition(status, "Progressing")["reason"] == "Aborted"
        assert status["history"][-1]["result"] == "Aborted" and status["history"][-1]["backendVersion"] == "2.0.0"
        # One listener change from 80/20 to 100/0: no sample in between.
        assert watch.weights_of(green) == [0, 20, 0]
        assert watch.weights_of(blue) == [100, 80, 100]
        assert_serving_only(aws, world, "1.0.0")

        cli(env_vars, "retry", "app", "-n", namespace)
        releases.wait(namespace, "app", lambda s: s.get("phase") == "Progressing"
                      and condition(s, "Progressing").get("reason") == "Pausing", 60, "the first pause again")
        assert watch.latest().weights[green] == 20
        # --full: every remaining step (60%, the second pause) skipped; plain promote would end the
        # 5-minute pause only and go on to 60%.
        cli(env_vars, "promote", "app", "-n", namespace, "--full")
        wait_converged(releases, aws, world, namespace, "app", "2.0.0", generation=2)
    assert watch.weights_of(green) == [0, 20, 0, 20, 100]
    assert_serving_only(aws, world, "2.0.0")
    reasons = {e["reason"] for e in releases.events(namespace, "app")}
    assert {"RolledBack", "Retry", "PromoteFull"} <= reasons
