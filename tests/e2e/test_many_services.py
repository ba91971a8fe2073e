"""Three ECS services in one Release end to end (issue many-services): the operator moves moto's ECS
and ALB; the API behind its listener, the MCP server behind a listener of its own (another port of
the ALB), a worker with none. From the outside, one thread reads both listeners in one call every
0.1 s: the MCP server's canary weight is never ahead of the API's, and the worker's new tasks come
only once the API has weight. Pauses are seconds long."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.aws.shapes import forward_weights
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.operator import OperatorProcess
from tests.e2e.helpers import Releases, cli, condition

pytestmark = pytest.mark.timeout(240)

STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {"duration": "2s"}}, {"setWeight": 60},
                               {"pause": {"duration": "2s"}}]


def tier(worlds: dict[str, WorldIds], namespace: str, version: str, steps: list[dict[str, Any]] = STEPS) -> dict[str, Any]:
    services = []
    for name, w in worlds.items():
        s: dict[str, Any] = {"name": name, "image": w.image.rsplit(":", 1)[0] + f":{version}",
                             "ecs": {"cluster": w.cluster, "service": w.service, "containerName": w.container_name}}
        if name != "api":
            s["after"] = ["api"]
        if name != "worker":
            s["traffic"] = {"listenerArn": w.listener_arn, "stableTargetGroupArn": w.stable_target_group_arn,
                            "canaryTargetGroupArn": w.canary_target_group_arn}
        services.append(s)
    return {"apiVersion": "delivery.pratiko.ai/v1alpha1", "kind": "Release",
            "metadata": {"name": "tier", "namespace": namespace},
            "spec": {"environment": "development", "backend": {"version": version, "services": services},
                     "strategy": {"type": "Canary", "canary": {"steps": steps}}, "rollback": {"window": "1s"}}}


class Watch(threading.Thread):
    """(api green weight, mcp green weight, worker task sets of the new version), one read each 0.1 s."""

    def __init__(self, aws: AwsClients, worlds: dict[str, WorldIds], version: str) -> None:
        super().__init__(daemon=True)
        self.aws, self.worlds, self.version = aws, worlds, version
        self.samples: list[tuple[int, int, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        api, mcp, worker = self.worlds["api"], self.worlds["mcp"], self.worlds["worker"]
        while not self.done.is_set():
            listeners = self.aws.elbv2.describe_listeners(ListenerArns=[api.listener_arn, mcp.listener_arn])["Listeners"]
            by = {raw["ListenerArn"]: forward_weights(raw) for raw in listeners}
            sets = self.aws.ecs.describe_services(cluster=worker.cluster, services=[worker.service])["services"][0]
            new = sum(1 for t in sets.get("taskSets", []) if t.get("externalId") and t["scale"]["value"] > 0
                      and t["status"] != "DRAINING" and t.get("externalId") != worker.initial_external_id)
            self.samples.append((by[api.listener_arn].get(api.canary_target_group_arn, 0),
                                 by[mcp.listener_arn].get(mcp.canary_target_group_arn, 0), new))
            time.sleep(0.1)


def seed_tier(aws: AwsClients) -> dict[str, WorldIds]:
    cluster = f"tier{os.getpid()}x{time.monotonic_ns() % 10**6}"
    worlds: dict[str, WorldIds] = {}
    network = None
    for name in ("api", "mcp", "worker"):
        worlds[name] = seed_world(aws, name=f"{cluster}-{name}", cluster=cluster, network=network, with_frontend=False,
                                  image=f"repo/{cluster}-{name}:1.0.0")
        network = worlds[name].network
    return worlds


def test_three_services_roll_out_in_order_and_in_lockstep(
    operator: OperatorProcess, releases: Releases, namespace: str, aws: AwsClients,
) -> None:
    worlds = seed_tier(aws)
    releases.apply(tier(worlds, namespace, "1.0.0"))
    adopted = releases.wait_phase(namespace, "tier", "Succeeded", 60, generation=1)
    assert [e["name"] for e in adopted["backend"]["services"]] == ["api", "mcp", "worker"]

    watch = Watch(aws, worlds, "2.0.0")
    watch.start()
    try:
        releases.apply(tier(worlds, namespace, "2.0.0"))
        status = releases.wait(namespace, "tier", lambda s: s.get("phase") == "Succeeded"
                               and s.get("observedGeneration") == 2, 150, "Succeeded at 2.0.0")
    finally:
        watch.done.set()
        watch.join(5)
    assert status["backend"]["stableVersion"] == "2.0.0" and condition(status, "Ready")["status"] == "True"
    assert all(e["stableImage"].endswith(":2.0.0") for e in status["backend"]["services"])
    samples = watch.samples
    assert samples and all(mcp <= api for api, mcp, _ in samples), samples
    api_steps = [w for i, (w, _, _) in enumerate(samples) if i == 0 or samples[i - 1][0] != w]
    assert api_steps[:3] == [0, 20, 60]  # the API walked the steps
    assert any(mcp == 20 for _, mcp, _ in samples) and any(mcp == 60 for _, mcp, _ in samples)
    first_worker = next(i for i, (_, _, n) in enumerate(samples) if n > 0)
    assert samples[first_worker][0] >= 20  # the worker's new tasks only once the API took the step


def test_an_abort_rolls_every_service_back_the_last_first(
    operator: OperatorProcess, releases: Releases, namespace: str, aws: AwsClients, env_vars: dict[str, str],
) -> None:
    worlds = seed_tier(aws)
    held = [{"setWeight": 40}, {"pause": {}}]
    releases.apply(tier(worlds, namespace, "1.0.0", held))
    releases.wait_phase(namespace, "tier", "Succeeded", 60, generation=1)
    releases.apply(tier(worlds, namespace, "2.0.0", held))
    releases.wait_phase(namespace, "tier", "Paused", 90, generation=2)

    watch = Watch(aws, worlds, "2.0.0")
    watch.start()
    try:
        cli(env_vars, "abort", "tier", "-n", namespace)
        status = releases.wait(namespace, "tier", lambda s: s.get("phase") == "RolledBack" and bool(watch.samples)
                               and watch.samples[-1][:2] == (0, 0), 90, "RolledBack with every listener back")
    finally:
        watch.done.set()
        watch.join(5)
    samples = watch.samples
    assert samples[0][:2] == (40, 40) and samples[-1][:2] == (0, 0)
    assert all(mcp <= api for api, mcp, _ in samples), samples  # mcp goes back first, api last
    assert any(api == 40 and mcp == 0 for api, mcp, _ in samples), samples  # seen between the two
    assert all(e["stableImage"].endswith(":1.0.0") and not e.get("canaryImage") for e in status["backend"]["services"])
