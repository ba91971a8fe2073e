"""The native mode end to end: the operator releases a service ECS deploys itself (the ECS deployment
controller, a CANARY deploymentConfiguration with PAUSE hooks) on the local ECS, gated by a real
Prometheus measuring the workloads that serve real traffic through the local balancer.

The world is an NLB one: ECS weighs the listener itself (for an ALB it weighs a listener rule, which
moto stores and the balancer, following the listener's default action, does not route by yet), so the
balancer's own request log shows what users got. One canary is promoted through its pause hooks; one
whose new version answers errors is rolled back by StopServiceDeployment with the traffic restored.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
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
from tests.e2e.helpers import Releases, cli

pytestmark = pytest.mark.timeout(420)

NAME = "native"
HEALTHY = {"default": {"error_rate": 0.0, "latency_ms": 5}}
STEPS = [{"setWeight": 20}, {"pause": {"duration": "6s"}}]
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


def test_a_native_canary_is_promoted_through_its_pause_hooks(
        operator: OperatorProcess, releases: Releases, namespace: str, native_world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, plane: tuple[DataPlane, Path]) -> None:
    assert local_env.prometheus is not None
    dp, _ = plane
    releases.apply(release(native_world, namespace, "1.0.0", local_env.prometheus.url))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    started = time.time()
    releases.apply(release(native_world, namespace, "2.0.0", local_env.prometheus.url))

    # ECS holds 20% at its pause hook while the analysis watches both versions serve.
    dp.wait_for(lambda p: sorted(p.weights.values()) == [20, 80], 60, "ECS at 20% of production")
    status = releases.wait_phase(namespace, NAME, "Succeeded", 120, generation=2)
    assert status["backend"]["stableVersion"] == "2.0.0"
    ours = [d for d in deployments(aws, native_world) if d["createdAt"].timestamp() >= started - 1]
    assert [d["status"] for d in ours] == ["SUCCESSFUL"]  # one deployment, walked to its end
    reasons = [e["reason"] for e in releases.events(namespace, NAME)]
    assert reasons.count("NativeDeployment") >= 2 and "Promoted" in reasons
    log = read_log(dp.request_log)
    during = versions_after(log, started)
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
    started = time.time()
    releases.apply(release(native_world, namespace, "2.0.0", local_env.prometheus.url))

    status = releases.wait_phase(namespace, NAME, "RolledBack", 120, generation=2)
    assert status["backend"]["stableVersion"] == "1.0.0"
    ours = [d for d in deployments(aws, native_world) if d["createdAt"].timestamp() >= started - 1]
    wait_until(lambda: [d["status"] for d in deployments(aws, native_world)
                        if d["createdAt"].timestamp() >= started - 1] == ["ROLLBACK_SUCCESSFUL"], 30, "ECS rolled back")
    assert len(ours) == 1
    assert "2.0.0" in versions_after(read_log(dp.request_log), started)  # the canary was really exposed
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
        started = time.time()
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
    ours = [d for d in deployments(aws, native_world) if d["createdAt"].timestamp() >= started - 1]
    assert [d["status"] for d in ours] == ["SUCCESSFUL"]  # no second deployment after any restart


def test_abort_mid_native_deployment_rolls_it_back(
        operator: OperatorProcess, releases: Releases, namespace: str, native_world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, plane: tuple[DataPlane, Path], env_vars: dict[str, str]) -> None:
    assert local_env.prometheus is not None
    dp, _ = plane
    held = [{"setWeight": 20}, {"pause": {}}]  # until promote: ECS waits at its hook with 20% on 2.0.0
    releases.apply(release(native_world, namespace, "1.0.0", local_env.prometheus.url, held))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    started = time.time()
    releases.apply(release(native_world, namespace, "2.0.0", local_env.prometheus.url, held))
    releases.wait_phase(namespace, NAME, "Paused", 90, generation=2)
    dp.wait_for(lambda p: sorted(p.weights.values()) == [20, 80], 30, "ECS at 20% of production")

    cli(env_vars, "abort", NAME, "-n", namespace)
    status = releases.wait_phase(namespace, NAME, "RolledBack", 60, generation=2)
    assert status["backend"]["stableVersion"] == "1.0.0"
    wait_until(lambda: [d["status"] for d in deployments(aws, native_world)
                        if d["createdAt"].timestamp() >= started - 1] == ["ROLLBACK_SUCCESSFUL"], 30, "ECS rolled back")
    dp.wait_for(lambda p: sorted(p.weights.values()) == [0, 100], 30, "traffic back on 1.0.0")
    dp.wait_serving({"1.0.0"}, timeout=30)
    back = time.time()
    wait_until(lambda: sum(versions_after(read_log(dp.request_log), back).values()) >= 40, 20, "40 requests")
    assert set(versions_after(read_log(dp.request_log), back)) == {"1.0.0"}
