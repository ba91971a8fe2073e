"""Fixtures for the data plane tests: a real moto server seeded with an ECS service behind an ALB.

The world is `controller.testing.aws_world.seed_world` (a VPC with DNS hostnames, subnets, a
security group, an ALB listener forwarding 100/0 to target groups blue and green, an EXTERNAL ECS
service whose PRIMARY task set runs 1.4.0 in blue), plus a second task set running 1.5.0 in green,
as the controller would create for a canary.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, push_image, seed_world
from controller.testing.moto import MotoServer
from controller.testing.prometheus import PrometheusServer

REGION = "eu-west-1"


@dataclass
class World:
    """The seeded ids, and the changes a controller would make to them."""

    ids: WorldIds
    clients: AwsClients
    task_sets: dict[str, str] = field(default_factory=dict)  # version -> task set ARN

    @property
    def endpoint(self) -> str:
        assert self.clients.endpoint_url is not None
        return self.clients.endpoint_url

    @property
    def cluster(self) -> str:
        return self.ids.cluster

    @property
    def service(self) -> str:
        return self.ids.service

    @property
    def listener_arn(self) -> str:
        return self.ids.listener_arn

    @property
    def blue(self) -> str:
        return self.ids.stable_target_group_arn

    @property
    def green(self) -> str:
        return self.ids.canary_target_group_arn

    @property
    def network(self) -> dict[str, Any]:
        net = self.ids.network
        return {"awsvpcConfiguration": {"subnets": list(net.subnet_ids), "securityGroups": [net.security_group_id]}}

    def task_definition(self, version: str) -> str:
        push_image(self.clients, f"123456789012.dkr.ecr.{REGION}.amazonaws.com/pratiko-backend:{version}")
        # A sidecar first: the workload must run the image of the container the target group names.
        return str(self.clients.ecs.register_task_definition(
            family=f"{self.ids.name}-backend", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="256", memory="512",
            containerDefinitions=[
                {"name": "otel", "image": "public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0", "memory": 128},
                {"name": self.ids.container_name, "memory": 384,
                 "image": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/pratiko-backend:{version}",
                 "portMappings": [{"containerPort": self.ids.container_port}]},
            ],
        )["taskDefinition"]["taskDefinitionArn"])

    def add_task_set(self, version: str, target_group: str, scale: float = 100.0) -> str:
        arn = str(self.clients.ecs.create_task_set(
            cluster=self.cluster, service=self.service, taskDefinition=self.task_definition(version),
            externalId=version, launchType="FARGATE", networkConfiguration=self.network,
            scale={"value": scale, "unit": "PERCENT"},
            loadBalancers=[{"targetGroupArn": target_group, "containerName": self.ids.container_name,
                            "containerPort": self.ids.container_port}],
        )["taskSet"]["taskSetArn"])
        self.task_sets[version] = arn
        return arn

    def delete_task_set(self, version: str) -> None:
        self.clients.ecs.delete_task_set(cluster=self.cluster, service=self.service, taskSet=self.task_sets.pop(version))

    def scale(self, version: str, value: float) -> None:
        self.clients.ecs.update_task_set(cluster=self.cluster, service=self.service, taskSet=self.task_sets[version],
                                         scale={"value": value, "unit": "PERCENT"})

    def set_weights(self, blue: int, green: int) -> None:
        self.clients.elbv2.modify_listener(ListenerArn=self.listener_arn, DefaultActions=[{
            "Type": "forward",
            "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": self.blue, "Weight": blue},
                                               {"TargetGroupArn": self.green, "Weight": green}]},
        }])


def seed(endpoint: str, *, external: bool = True) -> World:
    """A fresh moto holding 1.4.0 in blue (and, for an EXTERNAL service, 1.5.0 in green)."""
    MotoServer(port=int(urllib.parse.urlsplit(endpoint).port or 0)).reset()
    clients = AwsClients.for_endpoint(endpoint, REGION)
    ids = seed_world(clients, image=f"123456789012.dkr.ecr.{REGION}.amazonaws.com/pratiko-backend:1.4.0",
                     deployment_controller="EXTERNAL" if external else "ECS", with_frontend=False)
    world = World(ids, clients)
    if external:
        assert ids.initial_task_set_arn is not None
        world.task_sets["1.4.0"] = ids.initial_task_set_arn
        world.add_task_set("1.5.0", world.green)
    return world


@pytest.fixture(scope="session")
def moto_endpoint(moto_server: MotoServer) -> str:
    return moto_server.endpoint


@pytest.fixture()
def world(moto_endpoint: str) -> World:
    return seed(moto_endpoint)


@pytest.fixture()
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping every file_sd target in its `targets_dir` each second."""
    server = PrometheusServer(tmp_path / "prometheus", scrape_interval="1s")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def pid_alive(pid: int) -> bool:
    """Whether `pid` still runs. A zombie does not: an orphan's exit is reaped by whoever adopted it,
    and in a container that may be never."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
