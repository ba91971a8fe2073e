"""The local ECS's native deployments (controller.testing.native_ecs) as boto3 sees them over HTTP.

A service on the ECS deployment controller with strategy BLUE_GREEN, CANARY or LINEAR: UpdateService
starts a service deployment that walks its lifecycle stages, shifts the listener rules' weights,
waits at PAUSE hooks for ContinueServiceDeployment, bakes, and rolls back (traffic first). A minute
of ECS time is half a second here (LOCAL_ECS_MINUTE_SECONDS). These also fail if a moto upgrade
breaks one of the places native_ecs leaves moto's public API.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, push_image, seed_world
from controller.testing.dataplane import DataPlane, LoadGenerator, read_log, write_behaviour
from controller.testing.dataplane.scenario import versions_after
from controller.testing.moto import MotoServer
from controller.testing.ports import wait_until

REGION = "eu-west-1"
IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/pratiko-backend"


def pause(*stages: str, minutes: int = 20, action: str = "ROLLBACK") -> dict[str, Any]:
    return {"targetType": "PAUSE", "lifecycleStages": list(stages),
            "timeoutConfiguration": {"timeoutInMinutes": minutes, "action": action}}




class Native:
    """A native world: helpers to update the service and read what ECS reports."""

    def __init__(self, server: MotoServer, config: dict[str, Any], desired_count: int = 2,
                 load_balancer_type: str = "application") -> None:
        server.reset()
        self.clients = AwsClients.for_endpoint(server.endpoint, REGION)
        self.ids: WorldIds = seed_world(self.clients, deployment_controller="ECS", with_frontend=False,
                                        image=f"{IMAGE}:1.0.0", desired_count=desired_count,
                                        deployment_configuration=config,
                                        load_balancer_type=load_balancer_type)  # type: ignore[arg-type]
        self.ecs = self.clients.ecs

    def task_definition(self, version: str) -> str:
        push_image(self.clients, f"{IMAGE}:{version}")
        return str(self.ecs.register_task_definition(
            family=f"{self.ids.name}-backend", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="256", memory="512",
            containerDefinitions=[{"name": self.ids.container_name, "image": f"{IMAGE}:{version}", "memory": 512,
                                   "portMappings": [{"containerPort": self.ids.container_port}]}],
        )["taskDefinition"]["taskDefinitionArn"])

    def deploy(self, version: str) -> str:
        """UpdateService to `version`; the ARN of the service deployment it started."""
        self.ecs.update_service(cluster=self.ids.cluster, service=self.ids.service,
                                taskDefinition=self.task_definition(version))
        return str(self.service()["currentServiceDeployment"])

    def service(self) -> dict[str, Any]:
        got: dict[str, Any] = self.ecs.describe_services(cluster=self.ids.cluster, services=[self.ids.service])["services"][0]
        return got

    def deployment(self, arn: str) -> dict[str, Any]:
        got: dict[str, Any] = self.ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]
        return got

    def weights(self, rule: str = "production_rule") -> tuple[int, int]:
        """(blue, green) of a listener rule (an NLB's: the listener), as moto stores it."""
        arn = self.ids.extra[rule]
        if ":listener-rule/" in arn:
            actions = self.clients.elbv2.describe_rules(RuleArns=[arn])["Rules"][0]["Actions"]
        else:
            actions = self.clients.elbv2.describe_listeners(ListenerArns=[arn])["Listeners"][0]["DefaultActions"]
        groups = {g["TargetGroupArn"]: g["Weight"] for g in actions[0]["ForwardConfig"]["TargetGroups"]}
        return groups.get(self.ids.stable_target_group_arn, 0), groups.get(self.ids.canary_target_group_arn, 0)

    def awaiting(self, arn: str) -> dict[str, Any] | None:
        d = self.deployment(arn)
        return next((h for h in d.get("lifecycleHookDetails") or [] if h["status"] == "AWAITING_ACTION"), None)

    def wait_hook(self, arn: str, stage: str, timeout: float = 15) -> dict[str, Any]:
        def at() -> bool:
            return self.deployment(arn).get("lifecycleStage") == stage and self.awaiting(arn) is not None

        wait_until(at, timeout, f"a hook awaiting action at {stage}")
        hook = self.awaiting(arn)
        assert hook is not None
        return hook

    def answer(self, arn: str, hook: dict[str, Any], action: str = "CONTINUE") -> None:
        self.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action=action)

    def wait_status(self, arn: str, status: str, timeout: float = 15) -> dict[str, Any]:
        wait_until(lambda: self.deployment(arn)["status"] == status, timeout, f"deployment {status}")
        return self.deployment(arn)


CANARY = {"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 1},
          "bakeTimeInMinutes": 1, "lifecycleHooks": [pause("PRE_PRODUCTION_TRAFFIC_SHIFT")]}


def test_a_canary_shifts_its_percent_then_all_through_a_new_pause_hook_at_each_step(native_moto: MotoServer) -> None:
    w = Native(native_moto, CANARY)
    first = w.service()
    assert first["deploymentConfiguration"]["strategy"] == "CANARY"  # kept, where moto drops it
    arn = w.deploy("2.0.0")
    assert w.deployment(arn)["status"] == "IN_PROGRESS"
    assert w.weights() == (100, 0)

    # Scaled up, then held before the first production shift: nothing shifted yet.
    hook = w.wait_hook(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT")
    assert w.weights() == (100, 0)
    assert hook["targetType"] == "PAUSE" and hook["timeoutAction"] == "ROLLBACK"
    revisions = {r["arn"]: r for r in w.service()["currentServiceRevisions"]}
    assert len(revisions) == 2 and all(r["requestedTaskCount"] == 2 for r in revisions.values())
    w.answer(arn, hook)

    # 10% while the canary bakes, then a second hook, with a new id, before the rest.
    second = w.wait_hook(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT")
    assert second["hookId"] != hook["hookId"]
    assert w.weights() == (90, 10)
    assert w.deployment(arn)["targetServiceRevision"]["requestedProductionTrafficWeight"] == 10.0
    w.answer(arn, second)
    wait_until(lambda: w.deployment(arn)["lifecycleStage"] == "BAKE_TIME", 10, "bake time")
    assert w.weights() == (0, 100)
    assert w.deployment(arn)["status"] == "IN_PROGRESS"  # both revisions run while it bakes
    done = w.wait_status(arn, "SUCCESSFUL")
    assert done["lifecycleStage"] == "CLEAN_UP"
    service = w.service()
    assert [r["arn"] for r in service["currentServiceRevisions"]] == [done["targetServiceRevision"]["arn"]]
    assert [d["status"] for d in service["deployments"]] == ["PRIMARY"]
    assert service["deployments"][0]["taskDefinition"].endswith(":2")

    # The next deployment goes back to blue: the target groups take turns.
    again = w.deploy("3.0.0")
    w.answer(again, w.wait_hook(again, "PRE_PRODUCTION_TRAFFIC_SHIFT"))
    w.wait_hook(again, "PRE_PRODUCTION_TRAFFIC_SHIFT")
    assert w.weights() == (10, 90)

    # An answered hook is not answered twice.
    with pytest.raises(botocore.exceptions.ClientError, match="not awaiting action"):
        w.answer(arn, second)


def test_linear_steps_each_wait_at_their_own_hook(native_moto: MotoServer) -> None:
    w = Native(native_moto, {"strategy": "LINEAR", "bakeTimeInMinutes": 0,
                             "linearConfiguration": {"stepPercent": 40.0, "stepBakeTimeInMinutes": 0},
                             "lifecycleHooks": [pause("PRE_PRODUCTION_TRAFFIC_SHIFT")]})
    arn = w.deploy("2.0.0")
    seen_weights, hooks = [], set()
    for _ in range(3):
        hook = w.wait_hook(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT")
        hooks.add(hook["hookId"])
        seen_weights.append(w.weights())
        w.answer(arn, hook)
    w.wait_status(arn, "SUCCESSFUL")
    assert seen_weights == [(100, 0), (60, 40), (20, 80)]
    assert len(hooks) == 3
    assert w.weights() == (0, 100)


def test_a_rollback_answer_sends_traffic_back_and_restores_the_revision(native_moto: MotoServer) -> None:
    w = Native(native_moto, CANARY)
    before = w.service()["taskDefinition"]
    arn = w.deploy("2.0.0")
    w.answer(arn, w.wait_hook(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT"))
    hook = w.wait_hook(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT")
    assert w.weights() == (90, 10)
    w.answer(arn, hook, "ROLLBACK")
    assert w.weights() == (100, 0)  # at once, before the new revision's tasks are gone
    assert w.deployment(arn)["status"] in ("ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL")
    done = w.wait_status(arn, "ROLLBACK_SUCCESSFUL")
    assert hook["hookId"] in done["rollback"]["reason"]
    assert done["rollback"]["serviceRevisionArn"] == done["sourceServiceRevisions"][0]["arn"]
    service = w.service()
    assert service["taskDefinition"] == before
    assert [r["arn"] for r in service["currentServiceRevisions"]] == [done["sourceServiceRevisions"][0]["arn"]]


def test_a_hook_nobody_answers_times_out_into_its_timeout_action(native_moto: MotoServer) -> None:
    w = Native(native_moto, {**CANARY, "lifecycleHooks": [pause("POST_SCALE_UP", minutes=2)]})
    arn = w.deploy("2.0.0")
    hook = w.wait_hook(arn, "POST_SCALE_UP")
    done = w.wait_status(arn, "ROLLBACK_SUCCESSFUL", timeout=10)  # 2 "minutes" are 1 s here
    assert "timed out" in done["rollback"]["reason"]
    assert hook["expiresAt"] < done["finishedAt"]
    assert w.weights() == (100, 0)


def test_stop_with_rollback_mid_bake(native_moto: MotoServer) -> None:
    w = Native(native_moto, {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 60})
    arn = w.deploy("2.0.0")
    wait_until(lambda: w.deployment(arn)["lifecycleStage"] == "BAKE_TIME", 10, "bake time")
    assert w.weights() == (0, 100)
    w.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    assert w.weights() == (100, 0)
    w.wait_status(arn, "ROLLBACK_SUCCESSFUL")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        w.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    assert refused.value.response["Error"]["Code"] == "ConflictException"
    listed = w.ecs.list_service_deployments(cluster=w.ids.cluster, service=w.ids.service,
                                            status=["ROLLBACK_SUCCESSFUL"])["serviceDeployments"]
    assert [d["serviceDeploymentArn"] for d in listed] == [arn]


def test_blue_green_sends_test_traffic_to_green_before_production(native_moto: MotoServer) -> None:
    w = Native(native_moto, {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0,
                             "lifecycleHooks": [pause("POST_TEST_TRAFFIC_SHIFT")]})
    arn = w.deploy("2.0.0")
    hook = w.wait_hook(arn, "POST_TEST_TRAFFIC_SHIFT")
    assert w.weights("test_rule") == (0, 100) and w.weights() == (100, 0)
    w.answer(arn, hook)
    w.wait_status(arn, "SUCCESSFUL")
    assert w.weights() == (0, 100)


@pytest.mark.parametrize(("hook", "message"), [
    (pause("PRODUCTION_TRAFFIC_SHIFT"), "PAUSE hooks cannot be configured"),
    ({"targetType": "AWS_LAMBDA", "hookTargetArn": "arn:aws:lambda:eu-west-1:123456789012:function:x",
      "lifecycleStages": ["POST_SCALE_UP"]}, "PAUSE lifecycle hooks only"),
])
def test_refused_hooks_change_nothing(native_moto: MotoServer, hook: dict[str, Any], message: str) -> None:
    w = Native(native_moto, CANARY)
    before = w.service()
    with pytest.raises(botocore.exceptions.ClientError, match=message):
        w.ecs.update_service(cluster=w.ids.cluster, service=w.ids.service, taskDefinition=w.task_definition("2.0.0"),
                             deploymentConfiguration={**CANARY, "lifecycleHooks": [hook]})
    after = w.service()
    assert after["taskDefinition"] == before["taskDefinition"]
    assert after["currentServiceDeployment"] == before["currentServiceDeployment"]


def test_the_data_plane_runs_both_revisions_and_ecs_waits_for_green_health(native_moto: MotoServer, tmp_path: Path) -> None:
    w = Native(native_moto, {**CANARY, "lifecycleHooks": [pause("POST_SCALE_UP", "PRE_PRODUCTION_TRAFFIC_SHIFT")]},
               desired_count=1)
    behaviour = tmp_path / "behaviour.json"
    write_behaviour(behaviour, {"default": {"error_rate": 0.0}, "2.0.0": {"start_seconds": 2.0}})
    with DataPlane(native_moto.endpoint, REGION, w.ids.cluster, w.ids.service, w.ids.listener_arn, tmp_path / "dp",
                   tmp_path / "targets", behaviour, poll_interval=0.2) as plane:
        plane.wait_serving({"1.0.0"})
        arn = w.deploy("2.0.0")
        # SCALE_UP lasts until green's target passes its health check (2 s to start).
        wait_until(lambda: {x.version for x in plane.workloads()} == {"1.0.0", "2.0.0"}, 10, "green started")
        assert w.deployment(arn)["lifecycleStage"] == "SCALE_UP"
        hook = w.wait_hook(arn, "POST_SCALE_UP")
        by_version = {x.version: x for x in plane.workloads()}
        assert by_version["2.0.0"].target_group == w.ids.canary_target_group_arn and by_version["2.0.0"].ready
        assert by_version["1.0.0"].target_group == w.ids.stable_target_group_arn
        health = w.clients.elbv2.describe_target_health(TargetGroupArn=w.ids.canary_target_group_arn)
        assert [d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]] == ["healthy"]
        w.answer(arn, hook)
        for _ in range(2):
            w.answer(arn, w.wait_hook(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT"))
        w.wait_status(arn, "SUCCESSFUL")
        plane.wait_serving({"2.0.0"})  # blue's task stopped at clean-up
        # ECS counts blue's task as running until the data plane reports it stopped: wait for that
        # state (bounded), then check it; traffic already left blue a moment before.
        wait_until(lambda: w.service()["runningCount"] == 1, 10, "blue's task counted as stopped")
        service = w.service()
        assert service["runningCount"] == 1
        assert service["currentServiceRevisions"][0]["runningTaskCount"] == 1


def test_real_traffic_follows_an_nlb_canary_and_its_rollback(native_moto: MotoServer, tmp_path: Path) -> None:
    """On an NLB, ECS weighs the listener itself: the balancer (which follows the listener's default
    action) carries the split, so what users get is measured, not only what moto stores."""
    w = Native(native_moto, {**CANARY, "canaryConfiguration": {"canaryPercent": 20.0, "canaryBakeTimeInMinutes": 0}},
               desired_count=1, load_balancer_type="network")
    behaviour = tmp_path / "behaviour.json"
    write_behaviour(behaviour, {"default": {"error_rate": 0.0}})
    with DataPlane(native_moto.endpoint, REGION, w.ids.cluster, w.ids.service, w.ids.listener_arn, tmp_path / "dp",
                   tmp_path / "targets", behaviour, poll_interval=0.2) as plane, \
            LoadGenerator(plane.balancer_url, rate=50.0):
        plane.wait_serving({"1.0.0"})
        arn = w.deploy("2.0.0")
        w.answer(arn, w.wait_hook(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT"))
        w.wait_hook(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT")
        assert w.weights() == (80, 20)
        plane.wait_for(lambda p: sorted(p.weights.values()) == [20, 80], 10, "the balancer at 80/20")
        since = time.time()
        wait_until(lambda: sum(versions_after(read_log(plane.request_log), since).values()) >= 100, 20, "100 requests")
        seen = versions_after(read_log(plane.request_log), since)
        share = seen.get("2.0.0", 0) / sum(seen.values())
        assert 0.1 <= share <= 0.3, seen  # smooth weighted round-robin: 20 of every 100

        w.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
        plane.wait_for(lambda p: sorted(p.weights.values()) == [0, 100], 10, "the balancer back at 100/0")
        w.wait_status(arn, "ROLLBACK_SUCCESSFUL")
        plane.wait_serving({"1.0.0"})
        back = time.time()
        wait_until(lambda: sum(versions_after(read_log(plane.request_log), back).values()) >= 50, 20, "50 requests")
        assert set(versions_after(read_log(plane.request_log), back)) == {"1.0.0"}


def test_a_new_deployment_mid_canary_supersedes_it_from_the_production_revision(native_moto: MotoServer) -> None:
    w = Native(native_moto, {**CANARY, "lifecycleHooks": [pause("RECONCILE_SERVICE", "PRE_PRODUCTION_TRAFFIC_SHIFT")]})
    first = w.deploy("2.0.0")
    w.answer(first, w.wait_hook(first, "PRE_PRODUCTION_TRAFFIC_SHIFT"))
    w.wait_hook(first, "PRE_PRODUCTION_TRAFFIC_SHIFT")
    assert w.weights() == (90, 10)
    second = w.deploy("3.0.0")
    assert second != first
    assert w.deployment(first)["status"] == "STOPPED"
    assert w.weights() == (100, 0)  # back on the production revision, which the new one starts from
    w.wait_hook(second, "RECONCILE_SERVICE")  # more than one revision was active: ECS reconciles first
    source = w.deployment(second)["sourceServiceRevisions"][0]["arn"]
    assert source == w.deployment(first)["sourceServiceRevisions"][0]["arn"]
