"""The native mode end to end: the operator releases a service ECS deploys itself (the ECS deployment
controller, a CANARY deploymentConfiguration with PAUSE hooks) on the local ECS, gated by a real
Prometheus measuring the workloads that serve real traffic through the local balancer.

The world is an NLB one: ECS weighs the listener itself (for an ALB it weighs a listener rule, which
moto stores and the balancer, following the listener's default action, does not route by yet), so the
balancer's own request log shows what users got. One canary is promoted through its pause hooks; one
whose new version answers errors is rolled back by StopServiceDeployment with the traffic restored.
A blue/green is previewed through the test listener (a second balancer, its own request log): the
analysis judges green on test traffic alone, production stays on blue until ECS shifts it. A
frontend that requires the new backend moves only once ECS reports the deployment SUCCESSFUL.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.dataplane import DataPlane, LoadGenerator, read_log, write_behaviour
from controller.testing.dataplane.scenario import analysis_spec, versions_after
from controller.testing.env import LocalEnvironment
from controller.testing.operator import OperatorProcess
from controller.testing.ports import wait_until
from controller.testing.specs import release_spec
from tests.e2e.helpers import Releases, cli, origin_path

pytestmark = pytest.mark.timeout(420)

NAME = "native"
HEALTHY = {"default": {"error_rate": 0.0, "latency_ms": 5}}
STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {"duration": "6s"}}]
_worlds = itertools.count(1)


@pytest.fixture()
def native_world(aws: AwsClients) -> WorldIds:
    return seed_world(aws, name=f"n{os.getpid()}x{next(_worlds)}", image="repo/pratiko-backend:1.0.0",
                      deployment_controller="ECS", deployment_configuration={"strategy": "CANARY"},
                      load_balancer_type="network", desired_count=1, with_frontend=False)


@pytest.fixture()
def plane(native_world: WorldIds, local_env: LocalEnvironment, env_vars: dict[str, str],
          tmp_path: Path) -> Iterator[tuple[DataPlane, Path]]:
    assert local_env.prometheus is not None
    behaviour = tmp_path / "behaviour.json"
    write_behaviour(behaviour, HEALTHY)
    dp = DataPlane(env_vars["AWS_ENDPOINT_URL"], env_vars["AWS_REGION"], native_world.cluster, native_world.service,
                   native_world.listener_arn, tmp_path / "dataplane", local_env.prometheus.targets_dir, behaviour)
    with dp, LoadGenerator(dp.balancer_url, rate=40.0):
        dp.wait_serving({"1.0.0"}, timeout=30)
        yield dp, behaviour


def release(world: WorldIds, namespace: str, version: str, prometheus: str,
            steps: list[dict[str, Any]] = STEPS) -> dict[str, Any]:
    spec = native(release_spec(version=version, image=f"repo/pratiko-backend:{version}", cluster=world.cluster,
                        service=world.service, container_name=world.container_name, environment="development",
                        strategy={"type": "Canary", "canary": {"steps": steps}},
                        analysis=analysis_spec(prometheus, world.service), rollback={"window": "0s"}))
    return {"apiVersion": "delivery.pratiko.ai/v1alpha1", "kind": "Release",
            "metadata": {"name": NAME, "namespace": namespace}, "spec": spec}


def native(spec: dict[str, Any]) -> dict[str, Any]:
    """backend.ecs.mode Native: ECS shifts the traffic, so the spec names no listener of its own."""
    spec["backend"]["ecs"]["mode"] = "Native"
    return spec


def deployments(aws: AwsClients, world: WorldIds) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = aws.ecs.list_service_deployments(
        cluster=world.cluster, service=world.service)["serviceDeployments"]
    return found


@dataclass(frozen=True)
class Since:
    """A moment of a test: its time, and the service deployments that existed then (the world's
    own, from CreateService, or the previous Release's). A CI run: CreateService's deployment came less
    than a second before the test's clock, and a window of `createdAt >= started - 1` counted it."""

    at: float
    known: frozenset[str]


def since(aws: AwsClients, world: WorldIds) -> Since:
    return Since(time.time(), frozenset(d["serviceDeploymentArn"] for d in deployments(aws, world)))


def deployments_since(aws: AwsClients, world: WorldIds, started: Since) -> list[dict[str, Any]]:
    """The service deployments started since `started`, the newest first."""
    return [d for d in deployments(aws, world) if d["serviceDeploymentArn"] not in started.known]


def test_a_native_canary_is_promoted_through_its_pause_hooks(
        operator: OperatorProcess, releases: Releases, namespace: str, native_world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, plane: tuple[DataPlane, Path]) -> None:
    assert local_env.prometheus is not None
    dp, _ = plane
    releases.apply(release(native_world, namespace, "1.0.0", local_env.prometheus.url))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    started = since(aws, native_world)

    with Sampler(traffic_against_ecs(releases, namespace, aws, native_world, started), interval=0.5) as watch:
        releases.apply(release(native_world, namespace, "2.0.0", local_env.prometheus.url))
        # ECS holds 20% at its pause hook while the analysis watches both versions serve.
        dp.wait_for(lambda p: sorted(p.weights.values()) == [20, 80], 60, "ECS at 20% of production")
        status = releases.wait_phase(namespace, NAME, "Succeeded", 120, generation=2)
        wait_until(lambda: watch.samples[-1][1]["traffic"] == "2.0.0=100%", 20, "a sample of the promoted status")
    assert status["backend"]["stableVersion"] == "2.0.0"
    # What the status said serves, over time, beside what ECS sent the new revision.
    never_ahead_of_ecs(watch.samples, "2.0.0")
    shown = {s["traffic"] for _, s in watch.samples if s["status"] == "IN_PROGRESS"}
    # ECS's PRIMARY deployment is 2.0.0 from UpdateService on: the status still says 1.0.0 serves.
    assert any(s["status"] == "IN_PROGRESS" and s["production"] == 0.0 and s["traffic"] == "1.0.0=100%"
               for _, s in watch.samples), shown
    assert "1.0.0=80%,2.0.0=20%" in shown, shown
    ours = deployments_since(aws, native_world, started)
    assert [d["status"] for d in ours] == ["SUCCESSFUL"]  # one deployment, walked to its end
    reasons = [e["reason"] for e in releases.events(namespace, NAME)]
    assert reasons.count("NativeDeployment") >= 2 and "Promoted" in reasons
    log = read_log(dp.request_log)
    during = versions_after(log, started.at)
    assert during.get("1.0.0", 0) > 0 and during.get("2.0.0", 0) > 0
    dp.wait_serving({"2.0.0"}, timeout=30)
    after = time.time()
    wait_until(lambda: sum(versions_after(read_log(dp.request_log), after).values()) >= 40, 20, "40 requests")
    assert set(versions_after(read_log(dp.request_log), after)) == {"2.0.0"}


def test_a_native_canary_answering_errors_is_rolled_back_with_traffic_restored(
        operator: OperatorProcess, releases: Releases, namespace: str, native_world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, plane: tuple[DataPlane, Path]) -> None:
    assert local_env.prometheus is not None
    dp, behaviour = plane
    write_behaviour(behaviour, {**HEALTHY, "2.0.0": {"error_rate": 0.5, "latency_ms": 5}})
    releases.apply(release(native_world, namespace, "1.0.0", local_env.prometheus.url))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    started = since(aws, native_world)
    with Sampler(traffic_against_ecs(releases, namespace, aws, native_world, started), interval=0.5) as watch:
        releases.apply(release(native_world, namespace, "2.0.0", local_env.prometheus.url))
        status = releases.wait_phase(namespace, NAME, "RolledBack", 120, generation=2)
        wait_until(lambda: watch.samples[-1][1]["status"] == "ROLLBACK_SUCCESSFUL"
                   and watch.samples[-1][1]["traffic"] == "1.0.0=100%", 30, "a sample of the rolled back status")
    assert status["backend"]["stableVersion"] == "1.0.0"
    # ECS took the traffic back at once; the status followed within a pass, never ahead of ECS.
    never_ahead_of_ecs(watch.samples, "2.0.0")
    assert "1.0.0=80%,2.0.0=20%" in {s["traffic"] for _, s in watch.samples}
    ours = deployments_since(aws, native_world, started)
    rolled_back(aws, native_world, started)
    assert len(ours) == 1
    assert "2.0.0" in versions_after(read_log(dp.request_log), started.at)  # the canary was really exposed
    dp.wait_for(lambda p: sorted(p.weights.values()) == [0, 100], 30, "traffic back on 1.0.0")
    dp.wait_serving({"1.0.0"}, timeout=30)
    back = time.time()
    wait_until(lambda: sum(versions_after(read_log(dp.request_log), back).values()) >= 40, 20, "40 requests")
    assert set(versions_after(read_log(dp.request_log), back)) == {"1.0.0"}


def test_a_killed_operator_answers_each_pending_hook_once_and_starts_no_second_deployment(
        own_namespace: str, releases: Releases, native_world: WorldIds, aws: AwsClients, env_vars: dict[str, str],
        tmp_path: Path) -> None:
    """Its own operator (own namespace), SIGKILLed while ECS waits at each pause hook of a linear canary."""
    ns = own_namespace
    log = tmp_path / "operator.log"
    steps = [{"setWeight": 25}, {"pause": {"duration": "3s"}}, {"setWeight": 50}, {"pause": {"duration": "3s"}},
             {"setWeight": 75}, {"pause": {"duration": "3s"}}]

    def body(version: str) -> dict[str, Any]:
        spec = release_spec(version=version, image=f"repo/pratiko-backend:{version}", cluster=native_world.cluster,
                            service=native_world.service, container_name=native_world.container_name,
                            environment="development", strategy={"type": "Canary", "canary": {"steps": steps}},
                            rollback={"window": "0s"})
        native(spec)
        return {"apiVersion": "delivery.pratiko.ai/v1alpha1", "kind": "Release",
                "metadata": {"name": NAME, "namespace": ns}, "spec": spec}

    def current() -> dict[str, Any]:
        arn = aws.ecs.describe_services(cluster=native_world.cluster,
                                        services=[native_world.service])["services"][0]["currentServiceDeployment"]
        found: dict[str, Any] = aws.ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]
        return found

    def operator() -> OperatorProcess:
        return OperatorProcess(env_vars, namespaces=(ns,), resync=3.0, log_path=log).start()

    proc = operator()
    try:
        releases.apply(body("1.0.0"))
        releases.wait_phase(ns, NAME, "Succeeded", 60, generation=1)
        started = since(aws, native_world)
        releases.apply(body("2.0.0"))
        kills = []
        for weight in (25.0, 50.0, 75.0):
            # Killed as soon as ECS waits at the step's hook: the pause is under way, maybe unwritten.
            wait_until(lambda w=weight: (current()["targetServiceRevision"].get("requestedProductionTrafficWeight")  # type: ignore[misc]
                                         == w and any(h["status"] == "AWAITING_ACTION"
                                                      for h in current().get("lifecycleHookDetails") or [])),
                       90, f"a hook awaiting action at {weight}%")
            proc.kill()
            kills.append(weight)
            proc = operator()
        status = releases.wait_phase(ns, NAME, "Succeeded", 120, generation=2)
    finally:
        proc.stop()
    assert kills == [25.0, 50.0, 75.0]
    assert status["backend"]["stableVersion"] == "2.0.0"
    ours = deployments_since(aws, native_world, started)
    assert [d["status"] for d in ours] == ["SUCCESSFUL"]  # no second deployment after any restart


def test_abort_mid_native_deployment_rolls_it_back(
        operator: OperatorProcess, releases: Releases, namespace: str, native_world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, plane: tuple[DataPlane, Path], env_vars: dict[str, str]) -> None:
    assert local_env.prometheus is not None
    dp, _ = plane
    held: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}]  # until promote: ECS waits at its hook with 20% on 2.0.0
    releases.apply(release(native_world, namespace, "1.0.0", local_env.prometheus.url, held))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    started = since(aws, native_world)
    releases.apply(release(native_world, namespace, "2.0.0", local_env.prometheus.url, held))
    releases.wait_phase(namespace, NAME, "Paused", 90, generation=2)
    dp.wait_for(lambda p: sorted(p.weights.values()) == [20, 80], 30, "ECS at 20% of production")

    cli(env_vars, "abort", NAME, "-n", namespace)
    status = releases.wait_phase(namespace, NAME, "RolledBack", 60, generation=2)
    assert status["backend"]["stableVersion"] == "1.0.0"
    rolled_back(aws, native_world, started)
    dp.wait_for(lambda p: sorted(p.weights.values()) == [0, 100], 30, "traffic back on 1.0.0")
    dp.wait_serving({"1.0.0"}, timeout=30)
    back = time.time()
    wait_until(lambda: sum(versions_after(read_log(dp.request_log), back).values()) >= 40, 20, "40 requests")
    assert set(versions_after(read_log(dp.request_log), back)) == {"1.0.0"}


# --------------------------------------------------------------------------- sampling AWS over time


class Sampler:
    """Calls `read` every `interval` seconds in a thread, keeping (time.time(), value) pairs."""

    def __init__(self, read: Callable[[], dict[str, Any]], interval: float = 0.2) -> None:
        self.read, self.interval = read, interval
        self.samples: list[tuple[float, dict[str, Any]]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        wait_until(lambda: bool(self.samples) or bool(self.errors), 20, "a first sample")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        assert not self.errors, f"sampling AWS failed: {self.errors[0]!r}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), self.read()))
            except Exception as exc:  # noqa: BLE001 - reported on exit
                self.errors.append(exc)
                return
            self._stop.wait(self.interval)


def rolled_back(aws: AwsClients, world: WorldIds, started: Since) -> None:
    """Wait until the one service deployment started since `started` is ROLLBACK_SUCCESSFUL."""
    seen: list[list[tuple[str, Any, Any]]] = [[]]

    def ours() -> bool:
        seen[0] = [(d["status"], d["createdAt"], d.get("targetServiceRevisionArn"))
                   for d in deployments_since(aws, world, started)]
        return [s for s, _, _ in seen[0]] == ["ROLLBACK_SUCCESSFUL"]

    try:
        wait_until(ours, 30, "ECS rolled back")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; deployments since the change: {seen[0]}") from None


def deployment_since(ecs: Any, world: WorldIds, started: Since) -> dict[str, Any] | None:
    """The service deployment created since `started` (None before UpdateService)."""
    ours = [d for d in ecs.list_service_deployments(cluster=world.cluster, service=world.service)["serviceDeployments"]
            if d["serviceDeploymentArn"] not in started.known]
    if not ours:
        return None
    found: dict[str, Any] = ecs.describe_service_deployments(
        serviceDeploymentArns=[ours[0]["serviceDeploymentArn"]])["serviceDeployments"][0]
    return found


ONE_PASS = 10.0
"""Seconds the status may lag ECS by: one pass (passes come every few seconds while ECS moves; a
pass reads AWS, decides and writes the status), generous for a loaded machine."""


def traffic_against_ecs(releases: Releases, namespace: str, aws: AwsClients, world: WorldIds,
                        started: Since) -> Callable[[], dict[str, Any]]:
    """A sample of the Release's `status.backend.traffic`, then ECS's own production weight on the
    target revision of the deployment started since `started` (0 before there is one)."""
    def read() -> dict[str, Any]:
        traffic = (releases.status(namespace, NAME).get("backend") or {}).get("traffic")
        d = deployment_since(aws.ecs, world, started) or {}
        return {"traffic": traffic, "status": d.get("status"),
                "production": float((d.get("targetServiceRevision") or {}).get("requestedProductionTrafficWeight")
                                    or 0.0)}
    return read


def share(traffic: str | None, version: str) -> int:
    """The percent `traffic` (`1.0.0=80%,2.0.0=20%`) gives `version`."""
    return next((int(w.rstrip("%")) for v, _, w in (p.partition("=") for p in (traffic or "").split(","))
                 if v == version), 0)


def never_ahead_of_ecs(samples: list[tuple[float, dict[str, Any]]], version: str) -> None:
    """The status never claims `version` serves more than ECS sent it within the pass before."""
    assert samples
    for t, s in samples:
        sent = max(e["production"] for u, e in samples if t - ONE_PASS <= u <= t)
        assert share(s["traffic"], version) <= round(sent), (t, s, sent)


# --------------------------------------------------------------------------- blue/green preview


PREVIEW = "10s"


@pytest.fixture()
def bg_world(aws: AwsClients) -> WorldIds:
    return seed_world(aws, name=f"b{os.getpid()}x{next(_worlds)}", image="repo/pratiko-backend:1.0.0",
                      deployment_controller="ECS", deployment_configuration={"strategy": "BLUE_GREEN"},
                      load_balancer_type="network", desired_count=1, with_frontend=False)


@pytest.fixture()
def bg_plane(bg_world: WorldIds, local_env: LocalEnvironment, env_vars: dict[str, str],
             tmp_path: Path) -> Iterator[tuple[DataPlane, Path]]:
    """The data plane with both front doors: production (port 80's listener) and the test listener,
    each under load, each logging every request."""
    assert local_env.prometheus is not None
    behaviour = tmp_path / "behaviour.json"
    write_behaviour(behaviour, HEALTHY)
    dp = DataPlane(env_vars["AWS_ENDPOINT_URL"], env_vars["AWS_REGION"], bg_world.cluster, bg_world.service,
                   bg_world.listener_arn, tmp_path / "dataplane", local_env.prometheus.targets_dir, behaviour,
                   test_listener_arn=bg_world.extra["test_listener"])
    with dp, LoadGenerator(dp.balancer_url, rate=40.0), LoadGenerator(dp.test_balancer_url, rate=20.0):
        dp.wait_serving({"1.0.0"}, timeout=30)
        yield dp, behaviour


def blue_green(world: WorldIds, namespace: str, version: str, prometheus: str) -> dict[str, Any]:
    # The analysis judges {{version}} (green) and only once it served 20 requests in 10 s: during the
    # preview no production request reaches green, so only test-listener traffic can pass it.
    spec = native(release_spec(version=version, image=f"repo/pratiko-backend:{version}", cluster=world.cluster,
                               service=world.service, container_name=world.container_name,
                               environment="development",
                               strategy={"type": "BlueGreen",
                                         "blueGreen": {"previewDuration": PREVIEW, "scaleDownDelay": "0s"}},
                               analysis=analysis_spec(prometheus, world.service, min_requests=20),
                               rollback={"window": "0s"}))
    return {"apiVersion": "delivery.pratiko.ai/v1alpha1", "kind": "Release",
            "metadata": {"name": NAME, "namespace": namespace}, "spec": spec}


def shift_times(samples: list[tuple[float, dict[str, Any]]]) -> tuple[float, float]:
    """When ECS was first seen with test traffic on green, and with production on green."""
    test = next(t for t, s in samples if s and s.get("test", 0) >= 100)
    production = next(t for t, s in samples if s and s.get("production", 0) >= 100)
    return test, production


def test_a_native_blue_green_is_promoted_on_its_preview_analysis_of_test_listener_traffic(
        operator: OperatorProcess, releases: Releases, namespace: str, bg_world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, bg_plane: tuple[DataPlane, Path]) -> None:
    assert local_env.prometheus is not None
    dp, _ = bg_plane
    releases.apply(blue_green(bg_world, namespace, "1.0.0", local_env.prometheus.url))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    started = since(aws, bg_world)

    def read() -> dict[str, Any]:
        d = deployment_since(aws.ecs, bg_world, started)
        target = (d or {}).get("targetServiceRevision") or {}
        return {"stage": (d or {}).get("lifecycleStage"), "status": (d or {}).get("status"),
                "production": target.get("requestedProductionTrafficWeight", 0.0),
                "test": target.get("requestedTestTrafficWeight", 0.0)}

    with Sampler(read) as watch:
        releases.apply(blue_green(bg_world, namespace, "2.0.0", local_env.prometheus.url))
        status = releases.wait_phase(namespace, NAME, "Succeeded", 150, generation=2)
        dp.wait_serving({"2.0.0"}, timeout=30)
    assert status["backend"]["stableVersion"] == "2.0.0"
    assert [d["status"] for d in deployments_since(aws, bg_world, started)] \
        == ["SUCCESSFUL"]
    # ECS walked its blue/green: test traffic to green first, production only after the preview.
    test_at, production_at = shift_times(watch.samples)
    stages = [s["stage"] for _, s in watch.samples if s.get("stage")]
    assert stages.index("POST_TEST_TRAFFIC_SHIFT") < stages.index("PRE_PRODUCTION_TRAFFIC_SHIFT"), stages
    assert production_at - test_at >= 8.0, (test_at, production_at)  # the 10 s preview held ECS
    reasons = [e["reason"] for e in releases.events(namespace, NAME)]
    assert "Promoted" in reasons

    # What users got, from the balancers' own logs: the test listener served green during the preview,
    # production stayed on blue until ECS shifted it, and is on green after.
    margin = 1.0  # the data plane follows a listener change within a poll (0.25 s)
    test_log, production_log = read_log(dp.test_request_log), read_log(dp.request_log)
    preview_test = [e["version"] for e in test_log if test_at + margin < e["time"] < production_at]
    preview_production = [e["version"] for e in production_log if started.at < e["time"] < production_at - margin]
    assert len(preview_test) >= 100 and set(preview_test) == {"2.0.0"}, preview_test[:5]
    assert len(preview_production) >= 200 and set(preview_production) == {"1.0.0"}
    after = time.time()
    wait_until(lambda: sum(versions_after(read_log(dp.request_log), after).values()) >= 40, 20, "40 requests")
    assert set(versions_after(read_log(dp.request_log), after)) == {"2.0.0"}


def test_a_native_blue_green_failing_its_preview_never_reaches_production(
        operator: OperatorProcess, releases: Releases, namespace: str, bg_world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, bg_plane: tuple[DataPlane, Path]) -> None:
    assert local_env.prometheus is not None
    dp, behaviour = bg_plane
    write_behaviour(behaviour, {**HEALTHY, "2.0.0": {"error_rate": 0.5, "latency_ms": 5}})
    releases.apply(blue_green(bg_world, namespace, "1.0.0", local_env.prometheus.url))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    started = since(aws, bg_world)
    releases.apply(blue_green(bg_world, namespace, "2.0.0", local_env.prometheus.url))

    status = releases.wait_phase(namespace, NAME, "RolledBack", 150, generation=2)
    assert status["backend"]["stableVersion"] == "1.0.0"
    rolled_back(aws, bg_world, started)
    events = releases.events(namespace, NAME)
    assert any(e["reason"] == "RolledBack" and "error-rate" in e.get("message", "") for e in events), \
        [(e["reason"], e.get("message")) for e in events]  # rolled back on the preview's analysis
    dp.wait_serving({"1.0.0"}, timeout=30)
    # Green answered errors to test traffic only: no production request ever reached it.
    assert versions_after(read_log(dp.test_request_log), started.at).get("2.0.0", 0) > 0
    production = versions_after(read_log(dp.request_log), started.at)
    assert production.get("1.0.0", 0) >= 200 and set(production) == {"1.0.0"}, production


# --------------------------------------------------------------------------- the frontend after ECS


@pytest.fixture()
def fe_world(aws: AwsClients) -> WorldIds:
    return seed_world(aws, name=f"f{os.getpid()}x{next(_worlds)}", image="repo/pratiko-backend:1.0.0",
                      deployment_controller="ECS", deployment_configuration={"strategy": "CANARY"},
                      load_balancer_type="network", desired_count=1, with_frontend=True)


@pytest.fixture()
def fe_plane(fe_world: WorldIds, local_env: LocalEnvironment, env_vars: dict[str, str],
             tmp_path: Path) -> Iterator[DataPlane]:
    behaviour = tmp_path / "behaviour.json"
    write_behaviour(behaviour, HEALTHY)
    dp = DataPlane(env_vars["AWS_ENDPOINT_URL"], env_vars["AWS_REGION"], fe_world.cluster, fe_world.service,
                   fe_world.listener_arn, tmp_path / "dataplane", None, behaviour)
    with dp, LoadGenerator(dp.balancer_url, rate=40.0):
        dp.wait_serving({"1.0.0"}, timeout=30)
        yield dp


def with_frontend(world: WorldIds, namespace: str, version: str, requires: str | None) -> dict[str, Any]:
    frontend: dict[str, Any] = {"version": version, "cloudfront": {
        "distributionId": world.distribution_id, "originId": world.origin_id, "bucket": world.bucket}}
    if requires:
        frontend["requiresBackend"] = requires
    steps = [{"setWeight": 20}, {"pause": {"duration": "10s"}}]
    spec = native(release_spec(version=version, image=f"repo/pratiko-backend:{version}", cluster=world.cluster,
                               service=world.service, container_name=world.container_name,
                               environment="development", strategy={"type": "Canary", "canary": {"steps": steps}},
                               frontend=frontend, rollback={"window": "0s"}))
    return {"apiVersion": "delivery.pratiko.ai/v1alpha1", "kind": "Release",
            "metadata": {"name": NAME, "namespace": namespace}, "spec": spec}


def test_the_frontend_waits_until_ecs_reports_the_native_deployment_successful(
        operator: OperatorProcess, releases: Releases, namespace: str, fe_world: WorldIds, aws: AwsClients,
        fe_plane: DataPlane) -> None:
    dp = fe_plane
    releases.apply(with_frontend(fe_world, namespace, "1.0.0", None))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    assert origin_path(aws, fe_world) == "/releases/1.0.0"
    started = since(aws, fe_world)

    def read() -> dict[str, Any]:
        # The origin first, then ECS: an origin already moved next to a deployment still in progress
        # (read after it) is a frontend that moved too early, whatever happened in between.
        origin = origin_path(aws, fe_world)
        d = deployment_since(aws.ecs, fe_world, started) or {}
        return {"origin": origin, "status": d.get("status"),
                "production": (d.get("targetServiceRevision") or {}).get("requestedProductionTrafficWeight", 0.0)}

    with Sampler(read) as watch:
        releases.apply(with_frontend(fe_world, namespace, "2.0.0", ">=2.0.0"))
        status = releases.wait_phase(namespace, NAME, "Succeeded", 150, generation=2)
        wait_until(lambda: watch.samples[-1][1]["origin"] == "/releases/2.0.0", 10, "a sample of the moved origin")
    assert status["backend"]["stableVersion"] == "2.0.0"
    samples = watch.samples
    in_progress = [(t, s) for t, s in samples if s["status"] == "IN_PROGRESS"]
    # ECS held the canary for its 10 s pause: the frontend stayed on 1.0.0 all that while.
    assert in_progress[-1][0] - in_progress[0][0] >= 8.0
    assert {s["origin"] for _, s in in_progress} == {"/releases/1.0.0"}
    assert any(s["production"] == 20.0 for _, s in in_progress)
    moved = next(t for t, s in samples if s["origin"] == "/releases/2.0.0")
    assert all(s["status"] == "SUCCESSFUL" and s["production"] == 100.0
               for _, s in samples if s["origin"] == "/releases/2.0.0")
    # Once the frontend moved, the backend users reach is 2.0.0 alone.
    wait_until(lambda: sum(versions_after(read_log(dp.request_log), moved).values()) >= 40, 20, "40 requests")
    assert set(versions_after(read_log(dp.request_log), moved)) == {"2.0.0"}
