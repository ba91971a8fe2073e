"""Every strategy end to end: the operator moves moto's ECS, ALB, CloudFront and SSM step by step.

Each test seeds a world running 1.0.0, lets a Release adopt it, changes it to 2.0.0 and watches
AWS from the outside while the operator works: a background thread polls the listener (and the
service's task sets) every 0.2 s, so the weights a user's traffic would have seen are asserted, not
the status the controller claims. Pauses are seconds long so each test takes seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.conftest import Releases, condition

pytestmark = pytest.mark.timeout(240)

CLI = str(Path(sys.executable).parent / "release-controller")

CANARY_STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {"duration": "2s"}}, {"setWeight": 60}, {"pause": {"duration": "2s"}}]
CANARY = {"type": "Canary", "canary": {"steps": CANARY_STEPS}}
SHORT_WINDOW = {"window": "1s"}  # the previous version is deleted a second after promotion


# --------------------------------------------------------------------------- watching AWS


@dataclass(frozen=True)
class Sample:
    at: float
    weights: dict[str, int]  # target group ARN -> weight
    task_sets: tuple[dict[str, Any], ...]  # live (not DRAINING) task sets, as DescribeServices says


@dataclass
class AwsWatch:
    """Polls one world's listener (and task sets) in a thread while a test drives the operator.

    The listener is read before the task sets in each sample: during a rollout capacity moves
    before traffic, so a weight seen in a sample was backed by the scale seen right after it.
    """

    env: dict[str, str]
    world: WorldIds
    task_sets: bool = True
    interval: float = 0.2
    samples: list[Sample] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> "AwsWatch":
        clients = AwsClients.from_env(self.env)  # its own clients: the test's are used meanwhile
        self._thread = threading.Thread(target=self._run, args=(clients,), daemon=True)
        self._thread.start()
        wait_for(lambda: bool(self.samples), 20, "a first sample of the world")
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.errors:
            raise AssertionError(f"watching AWS failed: {self.errors[0]!r}")

    def _run(self, clients: AwsClients) -> None:
        while not self._stop.is_set():
            try:
                weights = listener_weights(clients, self.world)
                live = tuple(live_task_sets(clients, self.world)) if self.task_sets else ()
                self.samples.append(Sample(time.monotonic(), weights, live))
            except Exception as exc:  # noqa: BLE001 - reported by stop()
                self.errors.append(exc)
                return
            self._stop.wait(self.interval)

    def weights_of(self, target_group: str) -> list[int]:
        """The weights `target_group` had, consecutive repeats collapsed: e.g. [0, 20, 60, 100]."""
        out: list[int] = []
        for s in list(self.samples):
            w = s.weights.get(target_group, 0)
            if not out or out[-1] != w:
                out.append(w)
        return out

    def latest(self) -> Sample:
        return self.samples[-1]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen in {timeout}s")


def listener_weights(aws: AwsClients, world: WorldIds) -> dict[str, int]:
    listener = aws.elbv2.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]
    groups = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    return {g["TargetGroupArn"]: int(g.get("Weight", 0)) for g in groups}


def live_task_sets(aws: AwsClients, world: WorldIds) -> list[dict[str, Any]]:
    service = aws.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]
    return [t for t in service.get("taskSets", []) if t["status"] != "DRAINING"]


_images: dict[str, str] = {}


def image_of(aws: AwsClients, task_definition: str) -> str:
    if task_definition not in _images:
        td = aws.ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
        _images[task_definition] = td["containerDefinitions"][0]["image"]
    return _images[task_definition]


def target_group_of(task_set: dict[str, Any]) -> str:
    return str(task_set["loadBalancers"][0]["targetGroupArn"])


def origin_path(aws: AwsClients, world: WorldIds) -> str:
    config = aws.cloudfront.get_distribution_config(Id=world.distribution_id)["DistributionConfig"]
    return str(config["Origins"]["Items"][0]["OriginPath"])


def invalidated_paths(aws: AwsClients, world: WorldIds) -> list[list[str]]:
    """The paths of every invalidation of the world's distribution, one list per invalidation."""
    listing = aws.cloudfront.list_invalidations(DistributionId=world.distribution_id)["InvalidationList"]
    out = []
    for item in listing.get("Items", []):
        inv = aws.cloudfront.get_invalidation(DistributionId=world.distribution_id, Id=item["Id"])["Invalidation"]
        out.append(list(inv["InvalidationBatch"]["Paths"].get("Items", [])))
    return out


def flags_published(aws: AwsClients, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        value = aws.ssm.get_parameter(Name=f"/release-controller/{namespace}/{name}/flags")["Parameter"]["Value"]
    except aws.ssm.exceptions.ParameterNotFound:
        return None
    found: dict[str, Any] = json.loads(value)
    return found


def task_definition_images(aws: AwsClients, world: WorldIds) -> list[str]:
    """The image of every revision in the world's task definition family, oldest first."""
    arns = aws.ecs.list_task_definitions(familyPrefix=f"{world.name}-backend", sort="ASC")["taskDefinitionArns"]
    return [image_of(aws, arn) for arn in arns]


def snapshot(aws: AwsClients, world: WorldIds, namespace: str, name: str) -> dict[str, Any]:
    """What a Release could change in AWS: task sets, task definitions, weights, origin, flags."""
    service = aws.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]
    return {
        "task_sets": sorted((t["id"], t["status"], t["scale"]["value"], t["taskDefinition"])
                            for t in service.get("taskSets", [])),
        "service_task_definition": service.get("taskDefinition"),
        "deployments": sorted(d["id"] for d in service.get("deployments", [])),
        "task_definitions": task_definition_images(aws, world),
        "weights": listener_weights(aws, world),
        "origin_path": origin_path(aws, world),
        "invalidations": len(invalidated_paths(aws, world)),
        "flags": flags_published(aws, namespace, name),
    }


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"release-controller {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc


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


def wait_converged(releases: Releases, aws: AwsClients, world: WorldIds, namespace: str, name: str,
                   version: str, generation: int, timeout: float = 120) -> dict[str, Any]:
    """Succeeded at `version`, the previous backend deleted; returns the status."""
    status = releases.wait(
        namespace, name,
        lambda s: s.get("phase") == "Succeeded" and s.get("observedGeneration") == generation
        and condition(s, "Progressing").get("reason") == "RolloutCompleted",
        timeout, f"Succeeded at {version} with the rollout completed",
    )
    assert status["backend"]["stableVersion"] == version
    assert condition(status, "Ready")["status"] == "True"
    return status


def assert_serving_only(aws: AwsClients, world: WorldIds, version: str) -> None:
    """Exactly one live task set, at `version`, primary, full scale, with all the traffic."""
    live = live_task_sets(aws, world)
    assert len(live) == 1, live
    only = live[0]
    assert image_of(aws, only["taskDefinition"]).endswith(f":{version}")
    assert only["status"] == "PRIMARY" and only["scale"]["value"] == 100.0
    weights = listener_weights(aws, world)
    assert weights[target_group_of(only)] == 100 and sum(weights.values()) == 100, weights


def assert_capacity_before_traffic(watch: AwsWatch) -> None:
    """In every sample, a target group with traffic had a task set at least that scale behind it."""
    for s in watch.samples:
        for tg, weight in s.weights.items():
            if weight == 0:
                continue
            scales = [t["scale"]["value"] for t in s.task_sets if target_group_of(t) == tg]
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
        wait_for(lambda: len(watch.latest().task_sets) == 1, 20, "one live task set")

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
    assert_unchanged_for(aws, world, namespace, "svc", before, seconds=4)
    assert "DeploymentControllerNotExternal" in {e["reason"] for e in releases.events(namespace, "svc")}


def assert_unchanged_for(aws: AwsClients, world: WorldIds, namespace: str, name: str, before: dict[str, Any],
                         seconds: float) -> None:
    """AWS stays exactly as `before` for `seconds` (over more than one reconcile pass)."""
    deadline = time.monotonic() + seconds
    while True:
        assert snapshot(aws, world, namespace, name) == before
        if time.monotonic() > deadline:
            return
        time.sleep(0.5)


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
    assert_unchanged_for(aws, world, namespace, "broken", before, seconds=4)
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
        wait_for(lambda: time.monotonic() - held_from > 5, 10, "a held pause")  # several resyncs pass
        assert releases.status(namespace, "app")["phase"] == "Paused"
        assert watch.weights_of(green) == [0, 20]

        out = cli(env_vars, "promote", "app", "-n", namespace).stdout
        assert "promote" in out
        wait_converged(releases, aws, world, namespace, "app", "2.0.0", generation=2)
    assert watch.weights_of(green) == [0, 20, 60, 100]
    assert all(s.weights[green] == 20 for s in watch.samples if held_from <= s.at <= held_from + 5)
    assert_serving_only(aws, world, "2.0.0")
    assert "Promote" in {e["reason"] for e in releases.events(namespace, "app")}


def test_paused_holds_the_weight_until_unpaused(operator: OperatorProcess, releases: Releases, namespace: str,
                                               world: WorldIds, aws: AwsClients, env_vars: dict[str, str]) -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {"duration": "5s"}}, {"setWeight": 60}, {"pause": {"duration": "2s"}}]
    adopt(releases, aws, world, namespace, "app", {"type": "Canary", "canary": {"steps": steps}})
    green = world.canary_target_group_arn
    with AwsWatch(env_vars, world) as watch:
        start_canary(releases, aws, world, namespace, steps)
        wait_for(lambda: watch.latest().weights[green] == 20, 60, "canary weight 20")
        start_canary(releases, aws, world, namespace, steps, paused=True)
        status = releases.wait(namespace, "app", lambda s: s.get("phase") == "Paused", 30, "Paused")
        assert condition(status, "Progressing")["reason"] == "Paused"
        held = watch.latest().weights[green]
        held_from = time.monotonic()
        # Longer than the 5 s step: the step timer is frozen too.
        wait_for(lambda: time.monotonic() - held_from > 8, 12, "a held rollout")
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
        wait_for(lambda: len(watch.latest().task_sets) == 1, 20, "one live task set")
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
        wait_for(lambda: len(watch.latest().task_sets) == 1, 20, "the canary task set deleted")
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
        cli(env_vars, "promote", "app", "-n", namespace)
        wait_converged(releases, aws, world, namespace, "app", "2.0.0", generation=2)
    assert watch.weights_of(green) == [0, 20, 0, 20, 100]
    assert_serving_only(aws, world, "2.0.0")
    reasons = {e["reason"] for e in releases.events(namespace, "app")}
    assert {"RolledBack", "Retry", "PromoteFull"} <= reasons
