"""A Release moves only the traffic it names: a listener that forwards to a target group outside
the spec's pair, or a target group that serves another load balancer, is refused before the Release
adopts or changes anything, with the wrong ARN named, and no listener changes."""

from __future__ import annotations

import os

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Releases, condition
from tests.e2e.helpers import listener_weights, snapshot, task_definition_images

pytestmark = pytest.mark.timeout(180)


@pytest.fixture()
def neighbour(aws: AwsClients, world: WorldIds) -> WorldIds:
    """Another service with its own load balancer, listener and target groups."""
    return seed_world(aws, name=f"{world.name}n{os.getpid() % 1000}", image="repo/pratiko-backend:1.0.0")


def refused(releases: Releases, namespace: str, name: str) -> str:
    status = releases.wait(namespace, name, lambda s: condition(s, "Ready").get("reason") == "InvalidTraffic", 30,
                           "Ready=False/InvalidTraffic")
    message: str = condition(status, "Ready")["message"]
    stalled = condition(status, "Stalled")
    assert (stalled["status"], stalled["reason"], stalled["message"]) == ("True", "InvalidTraffic", message)
    assert condition(status, "Reconciling")["status"] == "False"
    return message


def test_a_listener_of_another_load_balancer_is_refused(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, neighbour: WorldIds,
    aws: AwsClients,
) -> None:
    before = snapshot(aws, neighbour, namespace, "app")
    body = release_for(world, name="app", namespace=namespace, version="2.0.0")
    body["spec"]["backend"]["traffic"]["listenerArn"] = neighbour.listener_arn
    releases.apply(body)
    message = refused(releases, namespace, "app")
    assert neighbour.stable_target_group_arn in message and "neither" in message, message
    assert snapshot(aws, neighbour, namespace, "app") == before  # the other service keeps its traffic
    assert task_definition_images(aws, world) == [world.image]  # and nothing was started for this one


def test_a_mistyped_canary_group_is_refused_and_the_listener_keeps_the_right_one(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, neighbour: WorldIds,
    aws: AwsClients,
) -> None:
    weights = listener_weights(aws, world)
    body = release_for(world, name="app", namespace=namespace, version="2.0.0")
    body["spec"]["backend"]["traffic"]["canaryTargetGroupArn"] = neighbour.canary_target_group_arn
    releases.apply(body)
    message = refused(releases, namespace, "app")
    assert neighbour.canary_target_group_arn in message, message
    assert listener_weights(aws, world) == weights
    assert task_definition_images(aws, world) == [world.image]
