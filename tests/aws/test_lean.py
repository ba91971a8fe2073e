"""Lean read models (controller/aws/lean.py): the observer sees exactly the same world, cheaper, and
nothing that writes ever reads through them."""

from __future__ import annotations

import time
from typing import Any

from controller.aws.apply import apply
from controller.aws.clients import AwsClients
from controller.aws.lean import ReusedParses, reusing_parses
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
        # ECS deploys it natively: its strategy, routing and current service deployment are read too.
        "native": seed_world(clients, name="native", cluster="lean", network=network, deployment_controller="ECS",
                             deployment_configuration={"strategy": "CANARY"}),
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
    # (It shows the old figures for 1 s after a change: two reads 1.5 s apart, as in test_steady_rounds.)
    full_seen = Observer(clients).observe_many(items)
    deadline = time.monotonic() + 30
    while (time.sleep(1.5), again := Observer(clients).observe_many(items))[1] != full_seen:
        assert time.monotonic() < deadline, "the world never came to rest"
        full_seen = again
    lean_seen = Observer(lean).observe_many(items)
    assert lean_seen == full_seen
    mid = lean_seen[("lean", "mid-rollout")]
    assert mid.service is not None and len(mid.service.task_sets) == 2
    assert mid.listener is not None and mid.listener.weights == {w.stable_target_group_arn: 70, w.canary_target_group_arn: 30}
    ecs = lean_seen[("lean", "ecs-controller")].service
    assert ecs is not None and ecs.deployment_controller == "ECS" and ecs.image == "repo/pratiko-backend:1.0.0"
    native = lean_seen[("lean", "native")].service
    assert native is not None and native.strategy == "CANARY" and native.native_routing and native.test_listener
    assert native.native is not None and native.native.succeeded
    assert native.native.target_image == "repo/pratiko-backend:1.0.0"
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


def reused(clients: AwsClients) -> ReusedParses:
    """The parses kept by the batched reads' clients (controller/aws/lean.py ReusedParses)."""
    assert clients.reads is not None and clients.reads.parses is not None
    return clients.reads.parses


def test_an_answer_seen_before_is_not_parsed_again_and_a_changed_one_is(
    clients: AwsClients, moto_endpoint: MotoServer,
) -> None:
    network = seed_network(clients, "reuse")
    worlds = [seed_world(clients, name=f"reuse{i}", cluster="reuse", network=network) for i in range(2)]
    for w in worlds:
        clients.ssm.put_parameter(Name=f"/release-controller/reuse/{w.name}/flags", Value='{"a": true}', Type="String")
    items = [(("reuse", w.name), spec_of(w, frontend_version="1.0.0")) for w in worlds]
    lean = lean_clients(moto_endpoint)
    parses = reused(lean)
    observer = Observer(lean)
    # At rest first: the local ECS reports the seeded tasks' starts for a moment (two reads 1.5 s apart alike).
    first = observer.observe_many(items)
    deadline = time.monotonic() + 30
    while (time.sleep(1.5), again := observer.observe_many(items))[1] != first:
        assert time.monotonic() < deadline, "the world never came to rest"
        first = again

    # A round over an unchanged world: every answer is one seen before; nothing is parsed.
    hits, misses = parses.hits, parses.misses
    assert observer.observe_many(items) == first
    assert (parses.hits - hits, parses.misses - misses) == (4, 0)  # services, listeners, distributions, flags

    # Each answer still has its own request id (the logs' AWS request id): only the body is reused.
    with reusing_parses():
        hits = parses.hits
        ids = {lean.reads.ssm.get_parameters(Names=["/release-controller/reuse/reuse0/flags"])["ResponseMetadata"]["RequestId"]
               for _ in range(2)}
        listener_ids = {lean.reads.elbv2.describe_listeners(ListenerArns=[worlds[0].listener_arn])
                        ["ResponseMetadata"]["RequestId"] for _ in range(2)}
        assert parses.hits - hits == 2  # the second of each
    assert len(ids) == 2 and "" not in ids
    assert len(listener_ids) == 2 and "" not in listener_ids

    # A single Release's pass asks its own questions: its answers are not kept.
    kept = len(parses)
    assert observer.observe(("reuse", worlds[0].name), items[0][1]) == first[("reuse", worlds[0].name)]
    assert len(parses) == kept

    # What changed is seen at once, the rest still reused.
    w = worlds[1]
    clients.elbv2.modify_listener(ListenerArn=w.listener_arn, DefaultActions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": w.stable_target_group_arn, "Weight": 80},
                         {"TargetGroupArn": w.canary_target_group_arn, "Weight": 20}]}}])
    clients.ssm.put_parameter(Name=f"/release-controller/reuse/{w.name}/flags", Value='{"a": false}', Type="String",
                              Overwrite=True)
    hits, misses = parses.hits, parses.misses
    seen = observer.observe_many(items)
    assert seen[("reuse", w.name)].listener is not None
    assert seen[("reuse", w.name)].listener.weights == {w.stable_target_group_arn: 80, w.canary_target_group_arn: 20}
    assert seen[("reuse", w.name)].flags == {"a": False}
    assert seen[("reuse", worlds[0].name)] == first[("reuse", worlds[0].name)]
    assert (parses.hits - hits, parses.misses - misses) == (2, 2)  # services and distributions reused

    # The full clients (passes, writes) never reuse a parse.
    assert not hasattr(clients.session._session.get_component("response_parser_factory"), "parses")


def test_the_read_twin_loads_no_model_of_its_own(moto_endpoint: MotoServer) -> None:
    """Its session hands out what the full session loaded (one copy of the models and endpoint
    rules per process), lean copies only for the four batched reads, the full model unchanged."""
    lean = lean_clients(moto_endpoint)
    assert lean.reads is not None
    full_loader = lean.session._session.get_component("data_loader")
    twin_loader = lean.reads.session._session.get_component("data_loader")
    assert twin_loader.load_data("endpoints") is full_loader.load_data("endpoints")
    full_ecs = full_loader.load_service_model("ecs", "service-2")
    twin_ecs = twin_loader.load_service_model("ecs", "service-2")
    assert twin_ecs is not full_ecs and twin_ecs["shapes"]["Cluster"] is full_ecs["shapes"]["Cluster"]
    assert twin_ecs["operations"]["DescribeServices"]["output"]["shape"] == "LeanDescribeServicesResponse"
    assert full_ecs["operations"]["DescribeServices"]["output"]["shape"] == "DescribeServicesResponse"
    assert "LeanDescribeServicesResponse" not in full_ecs["shapes"]
    assert twin_loader.load_service_model("events", "service-2") is full_loader.load_service_model("events", "service-2")


def test_reused_parses_keep_what_the_last_round_used() -> None:
    parses = ReusedParses(limit=3)
    parses.new_round()
    parses.put(b"a", {"i": "a"})
    parses.put(b"b", {"i": "b"})
    parses.new_round()  # the next round uses a only, and adds c
    assert parses.get(b"a") == {"i": "a"}
    parses.put(b"c", {"i": "c"})
    parses.new_round()  # b was not used for a whole round: gone
    assert parses.get(b"b") is None and parses.get(b"a") == {"i": "a"} and parses.get(b"c") == {"i": "c"}
    assert len(parses) == 2
    parses.put(b"d", {"i": "d"})
    parses.put(b"e", {"i": "e"})  # over the limit: not kept
    assert len(parses) == 3 and parses.get(b"e") is None
