"""Target groups are claimed too, and listener rules are read: a target group that another Release,
another service's task sets, or another listener or rule of the same load balancer uses is refused
(Conflict / InvalidTraffic) naming its ARN, and AWS is left as it was, over the whole wait."""

from __future__ import annotations

import os
import time

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Releases, condition, snapshot, task_definition_images

pytestmark = pytest.mark.timeout(240)


@pytest.fixture()
def neighbour(aws: AwsClients, world: WorldIds) -> WorldIds:
    """Another service with its own load balancer, listener and target groups."""
    return seed_world(aws, name=f"{world.name}t{os.getpid() % 1000}", image="repo/pratiko-backend:1.0.0")


def refused(releases: Releases, namespace: str, name: str, reason: str) -> str:
    status = releases.wait(namespace, name, lambda s: condition(s, "Ready").get("reason") == reason, 60,
                           f"Ready=False/{reason}")
    assert condition(status, "Stalled")["status"] == "True"
    return str(condition(status, "Ready")["message"])


def unchanged_for(aws: AwsClients, worlds: list[WorldIds], namespace: str, before: list[object], seconds: float) -> None:
    """AWS as it was, sampled for `seconds` (the Release looks again now and then)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert [snapshot(aws, w, namespace, "app") for w in worlds] == before
        time.sleep(1)


def test_a_target_group_of_another_release_is_a_conflict_naming_it(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, neighbour: WorldIds,
    aws: AwsClients,
) -> None:
    releases.apply(release_for(world, name="owner", namespace=namespace, version="1.0.0"))
    releases.wait_phase(namespace, "owner", "Succeeded", 60, generation=1)
    before = [snapshot(aws, w, namespace, "app") for w in (world, neighbour)]
    body = release_for(neighbour, name="app", namespace=namespace, version="2.0.0")
    body["spec"]["backend"]["traffic"]["canaryTargetGroupArn"] = world.canary_target_group_arn
    releases.apply(body)
    message = refused(releases, namespace, "app", "Conflict")
    assert world.canary_target_group_arn in message and f"{namespace}/owner" in message, message
    unchanged_for(aws, [world, neighbour], namespace, before, 5)
    assert task_definition_images(aws, neighbour) == [neighbour.image]


def test_a_target_group_a_rule_of_the_same_load_balancer_forwards_to_is_refused(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    rule = aws.elbv2.create_rule(
        ListenerArn=world.listener_arn, Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/admin/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": world.canary_target_group_arn}],
    )["Rules"][0]["RuleArn"]
    before = [snapshot(aws, world, namespace, "app")]
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0"))
    message = refused(releases, namespace, "app", "InvalidTraffic")
    assert world.canary_target_group_arn in message and rule in message, message
    unchanged_for(aws, [world], namespace, before, 5)
    assert task_definition_images(aws, world) == [world.image]


def test_a_target_group_another_service_registers_task_sets_with_is_refused(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    other = f"{world.service}-other"
    net = {"awsvpcConfiguration": {"subnets": list(world.network.subnet_ids),
                                   "securityGroups": [world.network.security_group_id], "assignPublicIp": "DISABLED"}}
    aws.ecs.create_service(cluster=world.cluster, serviceName=other, desiredCount=1,
                           deploymentController={"type": "EXTERNAL"}, networkConfiguration=net)
    aws.ecs.create_task_set(cluster=world.cluster, service=other, taskDefinition=world.task_definition_arn,
                            networkConfiguration=net, launchType="FARGATE", scale={"unit": "PERCENT", "value": 100.0},
                            loadBalancers=[{"targetGroupArn": world.canary_target_group_arn,
                                            "containerName": world.container_name,
                                            "containerPort": world.container_port}])
    before = [snapshot(aws, world, namespace, "app")]
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0"))
    message = refused(releases, namespace, "app", "InvalidTraffic")
    assert world.canary_target_group_arn in message and other in message, message
    unchanged_for(aws, [world], namespace, before, 5)
