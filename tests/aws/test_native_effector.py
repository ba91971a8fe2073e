"""The native effector (controller.aws.native) against the local ECS over HTTP: a deployment started
once, pause hooks answered once by id, a rollback by StopServiceDeployment, refusals that change nothing.
A minute of ECS time is half a second here (LOCAL_ECS_MINUTE_SECONDS)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.api.release import ReleaseSpec, StrategyType
from controller.aws.clients import AwsClients
from controller.aws.errors import AwsEffectError
from controller.aws.native import EcsNativeDeployments, NativeDeployment
from controller.planner.native import NativePlan, native_plan
from controller.testing.aws_world import WorldIds, push_image, seed_world
from controller.testing.moto import MotoServer
from controller.testing.ports import wait_until
from controller.testing.specs import release_spec

REGION = "eu-west-1"
IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/pratiko-backend"




def world(server: MotoServer, **config: Any) -> tuple[AwsClients, WorldIds]:
    server.reset()
    clients = AwsClients.for_endpoint(server.endpoint, REGION)
    ids = seed_world(clients, deployment_controller="ECS", with_frontend=False, image=f"{IMAGE}:1.0.0",
                     deployment_configuration=config or {"strategy": "ROLLING"})
    return clients, ids


def plan_for(steps: list[dict[str, Any]]) -> NativePlan:
    spec = ReleaseSpec.model_validate(release_spec(version="2.0.0", image=f"{IMAGE}:2.0.0", cluster="c", service="s",
                                                   strategy={"type": "Canary", "canary": {"steps": steps}},
                                                   rollback={"window": "1m"}))
    plan = native_plan(spec, StrategyType.CANARY, has_test_listener=False)
    assert isinstance(plan, NativePlan)
    return plan


def weights(clients: AwsClients, ids: WorldIds) -> tuple[int, int]:
    rule = clients.elbv2.describe_rules(RuleArns=[ids.extra["production_rule"]])["Rules"][0]
    groups = {g["TargetGroupArn"]: g["Weight"] for g in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]}
    return groups[ids.stable_target_group_arn], groups[ids.canary_target_group_arn]


def waiting(native: EcsNativeDeployments, ids: WorldIds, weight: float) -> NativeDeployment:
    def at_gate() -> bool:
        d = native.observe(ids.cluster, ids.service)
        return d is not None and d.awaiting is not None and d.production_weight == weight

    wait_until(at_gate, 15, f"a pause hook at {weight}%")
    found = native.observe(ids.cluster, ids.service)
    assert found is not None
    return found


def test_a_canary_is_started_once_and_each_hook_answered_once(native_moto: MotoServer) -> None:
    clients, ids = world(native_moto, strategy="BLUE_GREEN", bakeTimeInMinutes=0)
    push_image(clients, f"{IMAGE}:2.0.0")
    plan = plan_for([{"setWeight": 10}, {"pause": {"duration": "1m"}}])
    native = EcsNativeDeployments(clients.ecs)
    assert native.start(ids.cluster, ids.service, ids.container_name, f"{IMAGE}:2.0.0", plan) is not None
    # Again, and from a restarted operator (nothing cached): no second deployment.
    assert native.start(ids.cluster, ids.service, ids.container_name, f"{IMAGE}:2.0.0", plan) is None
    assert EcsNativeDeployments(clients.ecs).start(ids.cluster, ids.service, ids.container_name, f"{IMAGE}:2.0.0",
                                                   plan) is None
    listed = clients.ecs.list_service_deployments(cluster=ids.cluster, service=ids.service)["serviceDeployments"]
    assert len(listed) == 2  # CreateService's and ours
    service = clients.ecs.describe_services(cluster=ids.cluster, services=[ids.service])["services"][0]
    assert service["deploymentConfiguration"]["strategy"] == "CANARY"
    assert service["deploymentConfiguration"]["maximumPercent"] == 200  # the service's own settings kept

    first = waiting(native, ids, 0.0)
    assert first.active and first.stage == "PRE_PRODUCTION_TRAFFIC_SHIFT"
    assert first.target_task_definition is not None and first.target_task_definition.endswith(":2")
    assert first.awaiting is not None
    hook = first.awaiting.hook_id
    assert native.answer(first.arn, hook, "CONTINUE") is not None
    assert native.answer(first.arn, hook, "CONTINUE") is None  # once
    second = waiting(native, ids, 10.0)
    assert second.awaiting is not None and second.awaiting.hook_id != hook
    assert weights(clients, ids) == (90, 10)
    assert native.answer(second.arn, hook, "CONTINUE") is None  # a stale id moves nothing
    assert waiting(native, ids, 10.0).awaiting == second.awaiting

    assert native.stop(second.arn) is not None
    assert weights(clients, ids) == (100, 0)
    wait_until(lambda: native.observe(ids.cluster, ids.service).status == "ROLLBACK_SUCCESSFUL",  # type: ignore[union-attr]
               10, "rolled back")
    assert native.stop(second.arn) is None
    assert native.answer(second.arn, second.awaiting.hook_id, "CONTINUE") is None


def test_rollback_through_the_hook_and_success_through_every_gate(native_moto: MotoServer) -> None:
    clients, ids = world(native_moto, strategy="CANARY")
    push_image(clients, f"{IMAGE}:2.0.0")
    plan = plan_for([{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}, {"setWeight": 75}])
    assert plan.strategy == "LINEAR"
    native = EcsNativeDeployments(clients.ecs)
    native.start(ids.cluster, ids.service, ids.container_name, f"{IMAGE}:2.0.0", plan)
    for weight in (0.0, 25.0, 50.0, 75.0):
        d = waiting(native, ids, weight)
        assert d.awaiting is not None and plan.gate(d.stage, d.production_weight) is not None
        native.answer(d.arn, d.awaiting.hook_id, "CONTINUE")
    wait_until(lambda: native.observe(ids.cluster, ids.service).succeeded, 15, "successful")  # type: ignore[union-attr]
    assert weights(clients, ids) == (0, 100)

    push_image(clients, f"{IMAGE}:3.0.0")
    native.start(ids.cluster, ids.service, ids.container_name, f"{IMAGE}:3.0.0", plan)
    native.answer((d := waiting(native, ids, 0.0)).arn, d.awaiting.hook_id, "CONTINUE")  # type: ignore[union-attr]
    d = waiting(native, ids, 25.0)
    assert weights(clients, ids) == (25, 75)  # blue now takes the new revision
    assert d.awaiting is not None
    native.answer(d.arn, d.awaiting.hook_id, "ROLLBACK")
    wait_until(lambda: native.observe(ids.cluster, ids.service).rolled_back, 10, "rolled back")  # type: ignore[union-attr]
    assert weights(clients, ids) == (0, 100)


def test_refusals_change_nothing(native_moto: MotoServer) -> None:
    clients, ids = world(native_moto)  # ROLLING, with no advancedConfiguration
    push_image(clients, f"{IMAGE}:2.0.0")
    native = EcsNativeDeployments(clients.ecs)
    before = native.observe(ids.cluster, ids.service)
    with pytest.raises(AwsEffectError) as refused:
        native.start(ids.cluster, ids.service, ids.container_name, f"{IMAGE}:2.0.0", plan_for([{"setWeight": 10}]))
    assert refused.value.reason == "NativeRoutingMissing" and "alternateTargetGroupArn" in str(refused.value)
    assert native.observe(ids.cluster, ids.service) == before

    clients.ecs.create_service(cluster=ids.cluster, serviceName="external", desiredCount=1,
                               deploymentController={"type": "EXTERNAL"})
    with pytest.raises(AwsEffectError) as external:
        native.start(ids.cluster, "external", ids.container_name, f"{IMAGE}:2.0.0", plan_for([{"setWeight": 10}]))
    assert external.value.reason == "DeploymentControllerMismatch"
