"""Effectors against a moto server: each action applied twice changes AWS once; missing targets
give the contract's reason and change nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller import metrics
from controller.aws.apply import Effector, apply
from controller.aws.clients import AwsClients
from controller.aws.ecs import task_definition_for
from controller.aws.errors import AwsEffectError
from controller.aws.observe import Observer, TaskDefinitionCache
from controller.planner.actions import (
    Action,
    DeleteTaskSet,
    EnsureTaskSet,
    PublishFlags,
    ScaleTaskSet,
    SetListenerWeights,
    SetOriginPath,
    SetPrimaryTaskSet,
    UpdateServiceImage,
    external_id_for,
)
from controller.reconciler.driver import EffectError
from controller.testing.aws_world import WorldIds, seed_world
from tests.aws.conftest import KEY, spec_of

IMAGE2 = "repo/pratiko-backend:2.0.0"
EXT2 = external_id_for(*KEY, IMAGE2)


def ensure(world: WorldIds, scale: float = 10.0, image: str = IMAGE2) -> EnsureTaskSet:
    return EnsureTaskSet(world.cluster, world.service, external_id_for(*KEY, image), "api", image,
                         world.canary_target_group_arn, None, scale)


def task_sets(clients: AwsClients, world: WorldIds) -> list[dict[str, Any]]:
    return list(clients.ecs.describe_task_sets(cluster=world.cluster, service=world.service)["taskSets"])


def revisions(clients: AwsClients, family: str = "pratiko-backend") -> list[str]:
    return list(clients.ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"])


def state(clients: AwsClients, world: WorldIds) -> dict[str, Any]:
    """What a user would see changed: task sets, revisions, weights, origins, published flags."""
    listener = clients.elbv2.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]
    dist = clients.cloudfront.get_distribution_config(Id=world.distribution_id)["DistributionConfig"]
    return {
        "task_sets": sorted((ts["id"], ts["status"], ts["scale"]["value"]) for ts in task_sets(clients, world)),
        "revisions": revisions(clients),
        "listener": listener["DefaultActions"],
        "origins": dist["Origins"],
        "parameters": clients.ssm.describe_parameters()["Parameters"],
        "invalidations": clients.cloudfront.list_invalidations(DistributionId=world.distribution_id)["InvalidationList"].get("Quantity"),
    }


def mutating_calls(clients: AwsClients) -> list[str]:
    return [a for a in clients.calls.snapshot() if not a.split(":")[1].startswith(("Describe", "Get", "List", "Head"))]


def test_ensure_task_set_twice_makes_one_task_set_and_one_revision(clients: AwsClients, world: WorldIds) -> None:
    first = apply([ensure(world)], clients)
    second = apply([ensure(world)], clients)

    assert len(first) == 1 and second == []
    assert clients.calls["ecs:CreateTaskSet"] == 1 and clients.calls["ecs:RegisterTaskDefinition"] == 1
    assert len(revisions(clients)) == 2
    [new] = [ts for ts in task_sets(clients, world) if ts["externalId"] == EXT2]
    assert len(task_sets(clients, world)) == 2
    td = clients.ecs.describe_task_definition(taskDefinition=new["taskDefinition"])["taskDefinition"]
    assert td["revision"] == 2 and td["containerDefinitions"][0]["image"] == IMAGE2
    # Everything else is copied from the running revision.
    assert (td["cpu"], td["memory"], td["networkMode"]) == ("256", "512", "awsvpc")
    assert td["containerDefinitions"][0]["environment"] == [{"name": "APP_ENV", "value": "production"}]
    assert new["scale"] == {"unit": "PERCENT", "value": 10.0}
    assert new["loadBalancers"] == [
        {"targetGroupArn": world.canary_target_group_arn, "containerName": "api", "containerPort": 8000}
    ]
    assert new["launchType"] == "FARGATE"
    assert new["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == list(world.network.subnet_ids)


def test_ensure_task_set_after_a_crash_reuses_the_registered_revision(clients: AwsClients, world: WorldIds) -> None:
    # The crashed pass got as far as registering the revision, not creating the task set.
    registered, fresh = task_definition_for(clients.ecs, TaskDefinitionCache(), world.task_definition_arn, "api", IMAGE2)
    assert fresh and registered.endswith(":2")

    apply([ensure(world)], clients)  # a new process: nothing cached

    assert clients.calls["ecs:RegisterTaskDefinition"] == 1  # the crashed pass's only
    assert len(revisions(clients)) == 2
    [new] = [ts for ts in task_sets(clients, world) if ts["externalId"] == EXT2]
    assert new["taskDefinition"] == registered


def test_rolling_back_to_the_running_image_registers_nothing(clients: AwsClients, world: WorldIds) -> None:
    apply([ensure(world, image=world.image)], clients)
    assert clients.calls["ecs:RegisterTaskDefinition"] == 0
    assert {ts["taskDefinition"] for ts in task_sets(clients, world)} == {world.task_definition_arn}


def test_scale_primary_delete_are_idempotent(clients: AwsClients, world: WorldIds) -> None:
    actions: list[Action] = [
        ensure(world),
        ScaleTaskSet(world.cluster, world.service, EXT2, 100.0),
        SetPrimaryTaskSet(world.cluster, world.service, EXT2),
    ]
    apply(actions, clients)
    apply(actions, clients)
    assert clients.calls["ecs:UpdateTaskSet"] == 1
    assert clients.calls["ecs:UpdateServicePrimaryTaskSet"] == 1
    by_ext = {ts.get("externalId") or "seed": ts for ts in task_sets(clients, world)}
    assert by_ext[EXT2]["status"] == "PRIMARY" and by_ext[EXT2]["scale"]["value"] == 100.0
    assert by_ext["seed"]["status"] == "ACTIVE"

    # The adopted seed task set has no external id: it is addressed by id.
    seed_id = by_ext["seed"]["id"]
    apply([ScaleTaskSet(world.cluster, world.service, "", 0.0, task_set_id=seed_id)], clients)
    delete = DeleteTaskSet(world.cluster, world.service, seed_id)
    assert apply([delete], clients) == [f"deleted task set {seed_id}"]
    assert apply([delete], clients) == []
    assert [ts["externalId"] for ts in task_sets(clients, world)] == [EXT2]


def test_listener_weights_are_set_once(clients: AwsClients, world: WorldIds) -> None:
    action = SetListenerWeights(world.listener_arn, {world.stable_target_group_arn: 80, world.canary_target_group_arn: 20})
    apply([action], clients)
    apply([action], clients)
    assert clients.calls["elasticloadbalancing:ModifyListener"] == 1
    obs = Observer(clients).observe(KEY, spec_of(world))
    assert obs.listener is not None
    assert dict(obs.listener.weights) == {world.stable_target_group_arn: 80, world.canary_target_group_arn: 20}


def test_update_service_image_with_the_ecs_controller(clients: AwsClients) -> None:
    world = seed_world(clients, name="rolling", deployment_controller="ECS")
    clients.calls.reset()
    action = UpdateServiceImage(world.cluster, world.service, "api", IMAGE2)
    apply([action], clients)
    apply([action], clients)
    assert clients.calls["ecs:RegisterTaskDefinition"] == 1 and clients.calls["ecs:UpdateService"] == 1
    obs = Observer(clients).observe(KEY, spec_of(world))
    assert obs.service is not None and obs.service.image == IMAGE2
    assert obs.service.task_definition is not None and obs.service.task_definition.endswith("rolling-backend:2")


def test_update_service_image_refuses_an_external_service(clients: AwsClients, world: WorldIds) -> None:
    with pytest.raises(AwsEffectError) as err:
        apply([UpdateServiceImage(world.cluster, world.service, "api", IMAGE2)], clients)
    assert err.value.reason == "DeploymentControllerMismatch"
    assert mutating_calls(clients) == []


def test_origin_path_switch_invalidates_once(clients: AwsClients, world: WorldIds) -> None:
    action = SetOriginPath(world.distribution_id, "web", "/releases/2.0.0", ("/index.html", "/"))
    first = apply([action], clients)
    second = apply([action], clients)
    assert first and second == []
    assert clients.calls["cloudfront:UpdateDistribution"] == 1
    invalidations = clients.cloudfront.list_invalidations(DistributionId=world.distribution_id)["InvalidationList"]
    assert invalidations["Quantity"] == 1
    batch = clients.cloudfront.get_invalidation(
        DistributionId=world.distribution_id, Id=invalidations["Items"][0]["Id"]
    )["Invalidation"]["InvalidationBatch"]
    assert batch["Paths"]["Items"] == ["/index.html", "/"]
    obs = Observer(clients).observe(KEY, spec_of(world))
    assert obs.frontend is not None and obs.frontend.origin_path == "/releases/2.0.0"


def test_a_switch_made_without_its_invalidation_gets_it_from_the_next_ask(clients: AwsClients, world: WorldIds) -> None:
    """The pass that switched the origin died before CreateInvalidation: asked again, the effector
    leaves the distribution alone and creates the one missing invalidation."""
    got = clients.cloudfront.get_distribution_config(Id=world.distribution_id)
    config = got["DistributionConfig"]
    config["Origins"]["Items"][0]["OriginPath"] = "/releases/2.0.0"
    clients.cloudfront.update_distribution(Id=world.distribution_id, IfMatch=got["ETag"], DistributionConfig=config)
    clients.calls.reset()
    action = SetOriginPath(world.distribution_id, "web", "/releases/2.0.0", ("/index.html",))
    assert apply([action], clients) and apply([action], clients) == []
    assert clients.calls["cloudfront:UpdateDistribution"] == 0 and clients.calls["cloudfront:CreateInvalidation"] == 1
    invalidations = clients.cloudfront.list_invalidations(DistributionId=world.distribution_id)["InvalidationList"]
    assert invalidations["Quantity"] == 1


def test_flags_are_published_once(clients: AwsClients, world: WorldIds) -> None:
    flags = {"new_chat_interface": True, "enhanced_ai_models": {"enabled": True, "rolloutPercent": 20}}
    action = PublishFlags("/release-controller/production/pratiko/flags", flags, world.bucket,
                          distribution_id=world.distribution_id)
    apply([action], clients)
    apply([action], clients)
    assert clients.calls["ssm:PutParameter"] == 1 and clients.calls["s3:PutObject"] == 1
    assert clients.calls["cloudfront:CreateInvalidation"] == 1
    obj = clients.s3.get_object(Bucket=world.bucket, Key="flags.json")
    assert json.loads(obj["Body"].read()) == flags
    assert obj["ContentType"] == "application/json" and "max-age=30" in obj["CacheControl"]
    assert Observer(clients).observe(KEY, spec_of(world)).flags == flags


def test_flags_publish_interrupted_after_s3_finishes_without_a_second_invalidation(
    clients: AwsClients, world: WorldIds
) -> None:
    flags = {"new_chat_interface": True}
    name = "/release-controller/production/pratiko/flags"
    # The interrupted pass: S3 object written and invalidated, the parameter not yet.
    apply([PublishFlags(name, flags, world.bucket, distribution_id=world.distribution_id)], clients)
    clients.ssm.delete_parameter(Name=name)
    clients.calls.reset()

    apply([PublishFlags(name, flags, world.bucket, distribution_id=world.distribution_id)], clients)
    assert clients.calls["ssm:PutParameter"] == 1
    assert clients.calls["s3:PutObject"] == 0 and clients.calls["cloudfront:CreateInvalidation"] == 0


@pytest.mark.parametrize(
    ("reason", "make"),
    [
        ("ClusterNotFound", lambda w: EnsureTaskSet("nope", w.service, EXT2, "api", IMAGE2, None, None, 10.0)),
        ("ServiceNotFound", lambda w: EnsureTaskSet(w.cluster, "nope", EXT2, "api", IMAGE2, None, None, 10.0)),
        ("ServiceNotFound", lambda w: ScaleTaskSet(w.cluster, "nope", EXT2, 50.0)),
        ("TaskSetNotFound", lambda w: SetPrimaryTaskSet(w.cluster, w.service, "rc.nobody")),
        ("ContainerNotFound", lambda w: EnsureTaskSet(w.cluster, w.service, EXT2, "web", IMAGE2, None, None, 10.0)),
        ("ListenerNotFound", lambda w: SetListenerWeights(w.listener_arn[:-4] + "0000", {w.stable_target_group_arn: 100})),
        ("TargetGroupNotFound", lambda w: SetListenerWeights(
            w.listener_arn, {w.stable_target_group_arn: 50, w.canary_target_group_arn[:-4] + "0000": 50})),
        ("DistributionNotFound", lambda w: SetOriginPath("ENOSUCHDIST", "web", "/releases/2.0.0")),
        ("OriginNotFound", lambda w: SetOriginPath(w.distribution_id, "api", "/releases/2.0.0")),
        ("BucketNotFound", lambda w: PublishFlags("/release-controller/p/p/flags", {"a": True}, "no-such-bucket")),
    ],
)
def test_missing_targets_give_their_reason_and_change_nothing(
    clients: AwsClients, world: WorldIds, reason: str, make: Any
) -> None:
    before = state(clients, world)
    with pytest.raises(AwsEffectError) as err:
        apply([make(world)], clients)
    assert err.value.reason == reason
    assert isinstance(err.value, EffectError)  # what the reconciler catches
    assert state(clients, world) == before


def test_a_failing_action_stops_the_list_and_keeps_what_was_done(clients: AwsClients, world: WorldIds) -> None:
    weights = SetListenerWeights(world.listener_arn, {world.stable_target_group_arn: 90, world.canary_target_group_arn: 10})
    with pytest.raises(AwsEffectError):
        Effector(clients)([weights, SetOriginPath("ENOSUCHDIST", "web", "/x"), ensure(world)])
    assert clients.calls["elasticloadbalancing:ModifyListener"] == 1
    assert clients.calls["ecs:CreateTaskSet"] == 0


def test_calls_are_counted_by_iam_action(clients: AwsClients, world: WorldIds) -> None:
    before = metrics.REGISTRY.get_sample_value("release_controller_aws_calls_total", {"operation": "ecs:CreateTaskSet"}) or 0
    apply([ensure(world)], clients)
    assert clients.calls.snapshot() == {
        "ecs:DescribeServices": 1,
        "ecs:DescribeTaskDefinition": 2,  # the running revision (then cached), and again with its tags
        "ecs:ListTaskDefinitions": 1,  # the latest revision is the running one: nothing to reuse
        "ecs:RegisterTaskDefinition": 1,
        "ecs:CreateTaskSet": 1,
    }
    after = metrics.REGISTRY.get_sample_value("release_controller_aws_calls_total", {"operation": "ecs:CreateTaskSet"})
    assert after == before + 1
