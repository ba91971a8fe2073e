"""The operator against the real kube-apiserver and moto: a Release is seen, reported and converged."""

from __future__ import annotations

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Releases, condition


def test_new_release_gets_pending_status_and_an_event(operator: OperatorProcess, releases: Releases,
                                                       namespace: str, world: WorldIds) -> None:
    body = release_for(world, name="lost", namespace=namespace, version="1.1.0")
    body["spec"]["backend"]["ecs"]["cluster"] = "no-such-cluster"
    releases.apply(body)
    status = releases.wait(namespace, "lost", lambda s: s.get("observedGeneration") == 1, 30, "observedGeneration")
    assert status["phase"] == "Pending"
    ready = condition(status, "Ready")
    assert ready["status"] == "False" and ready["reason"] in {"ClusterNotFound", "ServiceNotFound"}
    reasons = {e["reason"] for e in releases.events(namespace, "lost")}
    assert "Accepted" in reasons and ready["reason"] in reasons


def test_fast_release_converges_then_rolls_to_v2(operator: OperatorProcess, releases: Releases, namespace: str,
                                                 world: WorldIds, aws: AwsClients) -> None:
    releases.apply(release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.0.0",
                               featureFlags={"new_chat_interface": True}))
    status = releases.wait_phase(namespace, "app", "Succeeded", 60)
    assert status["backend"]["stableVersion"] == "1.0.0"

    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               featureFlags={"new_chat_interface": False}))
    status = releases.wait_phase(namespace, "app", "Succeeded", 90, generation=2)
    assert status["backend"]["stableVersion"] == "2.0.0"

    service = aws.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]
    live = [t for t in service["taskSets"] if t["status"] != "DRAINING"]
    assert len(live) == 1, live
    image = aws.ecs.describe_task_definition(taskDefinition=live[0]["taskDefinition"])["taskDefinition"][
        "containerDefinitions"][0]["image"]
    assert image.endswith(":2.0.0")
    tg = live[0]["loadBalancers"][0]["targetGroupArn"]
    listener = aws.elbv2.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]
    weights = {t["TargetGroupArn"]: t["Weight"] for t in listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]}
    assert weights[tg] == 100 and sum(weights.values()) == 100
    config = aws.cloudfront.get_distribution_config(Id=world.distribution_id)["DistributionConfig"]
    assert config["Origins"]["Items"][0]["OriginPath"] == "/releases/2.0.0"
    flags = aws.ssm.get_parameter(Name=f"/release-controller/{namespace}/app/flags")["Parameter"]["Value"]
    assert '"new_chat_interface": false' in flags.replace(":false", ": false")
