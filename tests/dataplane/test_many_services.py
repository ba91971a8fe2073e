"""Several ECS services in one local world (issue many-services): an API and an MCP server, each behind
its own ALB listener, and a worker without traffic, on one cluster, each followed by its own data
plane. The API's preview route (controller/aws/preview.py) takes header traffic to the API's new
version while its production traffic, and every request to the MCP server, stays on 1.4.0."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from controller.aws.clients import AwsClients
from controller.aws.preview import PreviewRoute, ensure_preview_route
from controller.testing.aws_world import seed_world
from controller.testing.dataplane.loadgen import LoadGenerator
from controller.testing.dataplane.supervisor import DataPlane
from controller.testing.dataplane.workload import write_behaviour
from controller.testing.moto import MotoServer
from controller.testing.ports import wait_until
from tests.dataplane.conftest import REGION, World

pytestmark = pytest.mark.timeout(120)

HEADER = "aws-cf-cd-release-preview"


@pytest.fixture()
def worlds(moto_endpoint: str) -> dict[str, World]:
    MotoServer(port=int(urllib.parse.urlsplit(moto_endpoint).port or 0)).reset()
    clients = AwsClients.for_endpoint(moto_endpoint, REGION)
    out: dict[str, World] = {}
    network = None
    for name in ("api", "mcp", "worker"):
        ids = seed_world(clients, name=name, cluster="pratiko-production", network=network, with_frontend=False,
                         image=f"123456789012.dkr.ecr.{REGION}.amazonaws.com/pratiko-backend:1.4.0")
        network = ids.network
        world = World(ids, clients)
        assert ids.initial_task_set_arn is not None
        world.task_sets["1.4.0"] = ids.initial_task_set_arn
        out[name] = world
    return out


@pytest.fixture()
def planes(worlds: dict[str, World], tmp_path: Path) -> Iterator[dict[str, DataPlane]]:
    behaviour = tmp_path / "behaviour.json"
    write_behaviour(behaviour, {"default": {"error_rate": 0.0, "latency_ms": 2}})
    with ExitStack() as stack:
        out = {}
        for name, world in worlds.items():
            listener = None if name == "worker" else world.listener_arn  # the worker serves no traffic
            plane = DataPlane(world.endpoint, REGION, world.cluster, world.service, listener, tmp_path / name,
                              tmp_path / "targets", behaviour, poll_interval=0.2)
            out[name] = stack.enter_context(plane)
        yield out


def test_three_services_each_followed_and_the_api_previewed_alone(worlds: dict[str, World],
                                                                    planes: dict[str, DataPlane]) -> None:
    # The new version's task sets, as a rollout's first step would make them: no weight yet.
    for name in ("api", "mcp", "worker"):
        worlds[name].add_task_set("2.0.0", worlds[name].green, scale=50)
    for plane in planes.values():
        plane.wait_serving({"1.4.0", "2.0.0"}, timeout=30)
    api = worlds["api"]
    assert ensure_preview_route(api.clients.elbv2, PreviewRoute(
        api.listener_arn, "production/pratiko/api", HEADER, ("2.0.0",), api.green)) is not None
    planes["api"].wait_for(lambda p: len(p.rules) == 1, 5, "the API's preview rule")

    def versions(service: str, count: int, **headers: str) -> dict[str, int]:
        stats = LoadGenerator(planes[service].balancer_url, rate=100, count=count, headers=headers).run()
        assert stats.sent == count
        return stats.by_version

    preview = {HEADER: "2.0.0"}
    assert versions("api", 30, **preview) == {"2.0.0": 30}
    assert versions("api", 30) == {"1.4.0": 30}
    assert versions("mcp", 30, **preview) == {"1.4.0": 30}  # its own listener: no preview rule there
    assert planes["mcp"].rules == ()

    # Each data plane reports its own service's tasks to the local ECS; none takes another's.
    def running(world: World) -> dict[str, int]:
        service = world.clients.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]
        return {ts.get("externalId") or "initial": ts["runningCount"] for ts in service["taskSets"]}

    for name, world in worlds.items():
        wait_until(lambda: running(world) == {"initial": 2, "2.0.0": 1}, 10, f"{name}'s tasks reported ({running(world)})")
        assert {w.version for w in planes[name].workloads()} == {"1.4.0", "2.0.0"}
