"""Lean read models (controller/aws/lean.py): the observer sees exactly the same world, cheaper, and
nothing that writes ever reads through them."""

from __future__ import annotations

import time
from typing import Any

from controller.aws.apply import apply
from controller.aws.clients import AwsClients
from controller.aws.observe import Observer
from controller.planner.actions import EnsureTaskSet, SetListenerWeights
from controller.testing.aws_world import WorldIds, seed_network, seed_world
from controller.testing.moto import MotoServer

from tests.aws.conftest import spec_of


def lean_clients(moto: MotoServer) -> AwsClients:
    return AwsClients.from_env(
        {"AWS_ENDPOINT_URL": moto.endpoint, "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
         "AWS_SECRET_ACCESS_KEY": "testing"},
        lean_reads=True,
    )


def forward(listener: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = listener["DefaultActions"][0]["ForwardConfig"]
    return config


def test_the_observer_sees_the_same_worlds_through_lean_models(clients: AwsClients, moto_endpoint: MotoServer) -> None:
    network = seed_network(clients, "lean")
    worlds: dict[str, WorldIds] = {
        "steady": seed_world(clients, name="steady", cluster="lean", network=network),
        "mid-rollout": seed_world(clients, name="rolling", cluster="lean", network=network),
        "ecs-controller": seed_world(clients, name="ecsctl", cluster="lean", network=network,
                                     deployment_controller="ECS"),
        "no-frontend": seed_world(clients, name="backend-only", cluster="lean", network=network, with_frontend=False),
    }
    # A rollout half-way: a second task set at 2.0.0 in the canary group, 70/30 with stickiness.
    w = worlds["mid-rollout"]
    apply([EnsureTaskSet(w.cluster, w.service, "rc-2-0-0", w.container_name, "repo/pratiko-backend:2.0.0",
                         w.canary_target_group_arn, 8000, 30.0)], clients)
    clients.elbv2.modify_listener(ListenerArn=w.listener_arn, DefaultActions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": w.stable_target_group_arn, "Weight": 70},
                         {"TargetGroupArn": w.canary_target_group_arn, "Weight": 30}],
        "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300}}}])
    clients.ssm.put_parameter(Name="/release-controller/lean/steady/flags", Value='{"a": true}', Type="String")
    items = [(("lean", kind), spec_of(w, frontend_version="1.0.0" if w.distribution_id else None))
             for kind, w in worlds.items()]
    items.append((("lean", "steady"), spec_of(worlds["steady"])))

    lean = lean_clients(moto_endpoint)
    assert lean.reads is not None
    # The local ECS moves a new task set through its stale moment and starts its tasks: compare the
    # two models on a world that has stopped changing (two full reads alike), not across a change.
    full_seen = Observer(clients).observe_many(items)
    deadline = time.monotonic() + 20
    while (again := Observer(clients).observe_many(items)) != full_seen and time.monotonic() < deadline:
        full_seen = again
        time.sleep(0.5)
    lean_seen = Observer(lean).observe_many(items)
    assert lean_seen == full_seen
    mid = lean_seen[("lean", "mid-rollout")]
    assert mid.service is not None and len(mid.service.task_sets) == 2
    assert mid.listener is not None and mid.listener.weights == {w.stable_target_group_arn: 70, w.canary_target_group_arn: 30}
    ecs = lean_seen[("lean", "ecs-controller")].service
    assert ecs is not None and ecs.deployment_controller == "ECS" and ecs.image == "repo/pratiko-backend:1.0.0"
    # One Release alone is read with single calls, the same way.
    assert Observer(lean).observe(("lean", "steady"), items[0][1]) == Observer(clients).observe(("lean", "steady"), items[0][1])


def test_writes_go_through_full_models_and_keep_what_the_observer_does_not_read(
    clients: AwsClients, world: WorldIds, moto_endpoint: MotoServer,
) -> None:
    lean = lean_clients(moto_endpoint)
    assert lean.reads is not None
    clients.elbv2.modify_listener(ListenerArn=world.listener_arn, DefaultActions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": world.stable_target_group_arn, "Weight": 100},
                         {"TargetGroupArn": world.canary_target_group_arn, "Weight": 0}],
        "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300}}}])

    lean_view = lean.reads.elbv2.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]
    assert "Port" not in lean_view and "TargetGroupStickinessConfig" not in forward(lean_view)

    # The effector's read-modify-write of the listener uses the full clients: stickiness survives.
    apply([SetListenerWeights(world.listener_arn, {world.stable_target_group_arn: 50,
                                                   world.canary_target_group_arn: 50})], lean)
    listener = clients.elbv2.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]
    assert forward(listener)["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 300}
    assert {g["TargetGroupArn"]: g["Weight"] for g in forward(listener)["TargetGroups"]} == {
        world.stable_target_group_arn: 50, world.canary_target_group_arn: 50}
    assert lean.elbv2.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]["Port"] == 80
