"""Coordinated tiers end to end: the operator against moto, the real kube-apiserver and a local
OpenAPI server. Order is asserted from AWS state polled from the outside, never from the status.

The frontend switches atomically here (origin path plus invalidation). The frontend canary
(CloudFront continuous deployment, which moto lacks and the local moto process adds:
controller/testing/local_cloudfront.py) is tested against it over HTTP and with botocore's Stubber
(tests/aws/test_cloudfront_staging.py), its step machine by planner tables
(tests/planner/test_tiers_canary.py), and end to end, viewers sampled through the local edge, with
a backend preview in tests/e2e/test_preview.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import CONTAINER_NAME, CONTAINER_PORT, WorldIds
from controller.testing.dataplane.workload import openapi_document
from controller.testing.operator import OperatorProcess
from controller.testing.ports import serve_in_background
from controller.testing.releases import release_for
from tests.e2e.helpers import (
    Releases,
    condition,
    image_of,
    listener_weights,
    live_task_sets,
    origin_path,
    set_origin,
    set_weights,
    wait_for,
    wait_passes,
)

pytestmark = pytest.mark.timeout(300)

RESYNC = 3.0  # the session operator's --resync
CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "2s"}}]}}


def settled(releases: Releases, namespace: str, name: str, body: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    releases.apply(body)
    return releases.wait_phase(namespace, name, "Succeeded", 90, generation=generation)


# --------------------------------------------------------------------------- a local OpenAPI server


@pytest.fixture()
def openapi_server() -> Iterator[str]:
    """Serves the data plane's OpenAPI document of any version at /v/<version>/openapi.json, as each
    backend version's FastAPI would (1.x has POST /api/v1/chat; 2.x moved it to /api/v2/chat)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            match = re.fullmatch(r"/v/([^/]+)/openapi.json", self.path)
            if match is None:
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps(openapi_document(match.group(1))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve_in_background(server)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v/{{{{version}}}}/openapi.json"
    finally:
        server.shutdown()
        server.server_close()


def with_frontend(body: dict[str, Any], **frontend: Any) -> dict[str, Any]:
    body["spec"]["frontend"].update(frontend)
    return body


# --------------------------------------------------------------------------- ordering and gates


def test_both_tiers_change_backend_moves_first_then_frontend(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
    openapi_server: str,
) -> None:
    contract = {"openapiUrl": openapi_server,
                "operations": [{"method": "POST", "path": "/api/v2/chat", "fields": ["answer"]}]}
    settled(releases, namespace, "app", release_for(world, name="app", namespace=namespace, version="1.0.0",
                                                    frontend_version="1.0.0", strategy=CANARY))
    green, blue = world.canary_target_group_arn, world.stable_target_group_arn
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        # Timestamps of what AWS shows: first canary traffic, backend fully on green, origin switched.
        while not stop.is_set():
            w = listener_weights(aws, world)
            now = time.monotonic()
            if w.get(green, 0) > 0:
                seen.setdefault("canary", now)
            if w.get(green, 0) == 100 and w.get(blue, 0) == 0:
                seen.setdefault("backend", now)
            if origin_path(aws, world) == "/releases/2.0.0":
                seen.setdefault("frontend", now)
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        body = release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                           strategy=CANARY)
        status = settled(releases, namespace, "app",
                         with_frontend(body, requiresBackend=">=2.0.0", apiContract=contract), generation=2)
        wait_for("the watcher saw the frontend switch", lambda: "frontend" in seen, 10)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert seen["canary"] < seen["backend"] < seen["frontend"], seen
    assert status["backend"]["stableVersion"] == "2.0.0" and status["frontend"]["stableVersion"] == "2.0.0"
    compatible = condition(status, "Compatible")
    assert compatible["status"] == "True" and "backend 2.0.0 serves every API operation" in compatible["message"]


def test_incompatible_frontend_is_held_with_compatible_false(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    settled(releases, namespace, "app", release_for(world, name="app", namespace=namespace, version="1.0.0",
                                                    frontend_version="1.0.0"))
    body = release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="2.0.0")
    releases.apply(with_frontend(body, requiresBackend=">=2.0.0"))
    status = releases.wait(namespace, "app", lambda s: condition(s, "Compatible").get("status") == "False", 60,
                           "Compatible=False")
    compatible = condition(status, "Compatible")
    assert compatible["reason"] == "IncompatibleBackend"
    assert ">=2.0.0" in compatible["message"] and "backend serving is 1.0.0" in compatible["message"]
    wait_passes(operator, namespace, "app", 1)  # a pass later, still held
    assert origin_path(aws, world) == "/releases/1.0.0"
    assert releases.status(namespace, "app")["phase"] == "Progressing"


def test_backend_change_that_breaks_the_live_frontend_is_refused(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    body = release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.2.0")
    settled(releases, namespace, "app", with_frontend(body, requiresBackend="<2.0.0"))
    before = (listener_weights(aws, world), [t["id"] for t in live_task_sets(aws, world)], origin_path(aws, world))
    body = release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="1.2.0")
    releases.apply(with_frontend(body, requiresBackend="<2.0.0"))
    status = releases.wait(namespace, "app", lambda s: condition(s, "Compatible").get("status") == "False", 60,
                           "Compatible=False")
    compatible = condition(status, "Compatible")
    assert compatible["reason"] == "IncompatibleBackend"
    assert "2.0.0" in compatible["message"] and "1.2.0" in compatible["message"]
    wait_passes(operator, namespace, "app", 1)
    assert (listener_weights(aws, world), [t["id"] for t in live_task_sets(aws, world)], origin_path(aws, world)) == before


def test_backend_whose_openapi_lacks_an_operation_blocks_the_frontend(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
    openapi_server: str,
) -> None:
    contract = {"openapiUrl": openapi_server,
                "operations": [{"method": "POST", "path": "/api/v1/chat", "fields": ["answer"]},
                               {"method": "GET", "path": "/health"}]}
    body = release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.0.0")
    settled(releases, namespace, "app", with_frontend(body, apiContract=contract))
    body = release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="1.1.0")
    releases.apply(with_frontend(body, apiContract=contract))
    status = releases.wait(namespace, "app", lambda s: condition(s, "Compatible").get("reason") == "ApiContractBroken",
                           90, "Compatible=False ApiContractBroken")
    compatible = condition(status, "Compatible")
    assert compatible["status"] == "False"
    assert "POST /api/v1/chat: operation missing" in compatible["message"] and "backend 2.0.0" in compatible["message"]
    assert "GET /health" not in compatible["message"]
    assert status["backend"]["stableVersion"] == "2.0.0"  # the backend went first, and stays
    assert origin_path(aws, world) == "/releases/1.0.0"
    reasons = [e["reason"] for e in releases.events(namespace, "app")]
    assert "ApiContractBroken" in reasons


# --------------------------------------------------------------------------- flags


def test_flags_only_change_publishes_flags_and_touches_nothing_else(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    settled(releases, namespace, "app", release_for(world, name="app", namespace=namespace, version="1.0.0",
                                                    frontend_version="1.0.0", featureFlags={"new_chat": True}))
    before_sets = [(t["id"], t["taskDefinition"], t["scale"]["value"]) for t in live_task_sets(aws, world)]
    before = (listener_weights(aws, world), origin_path(aws, world))
    config_etag = aws.cloudfront.get_distribution_config(Id=world.distribution_id)["ETag"]
    flags = {"new_chat": False, "enhanced_ai": {"enabled": True, "rolloutPercent": 20}}
    status = settled(releases, namespace, "app", release_for(
        world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.0.0", featureFlags=flags),
        generation=2)
    parameter = aws.ssm.get_parameter(Name=f"/release-controller/{namespace}/app/flags")["Parameter"]["Value"]
    assert json.loads(parameter) == flags
    obj = aws.s3.get_object(Bucket=world.bucket, Key="flags.json")
    assert json.loads(obj["Body"].read()) == flags and obj["ContentType"] == "application/json"
    invalidations = aws.cloudfront.list_invalidations(DistributionId=world.distribution_id)["InvalidationList"]
    paths = [aws.cloudfront.get_invalidation(DistributionId=world.distribution_id, Id=i["Id"])["Invalidation"]
             ["InvalidationBatch"]["Paths"]["Items"] for i in invalidations.get("Items", [])]
    assert ["/flags.json"] in paths
    assert [(t["id"], t["taskDefinition"], t["scale"]["value"]) for t in live_task_sets(aws, world)] == before_sets
    assert (listener_weights(aws, world), origin_path(aws, world)) == before
    assert aws.cloudfront.get_distribution_config(Id=world.distribution_id)["ETag"] == config_etag
    history = status["history"]
    assert len(history) == 2 and history[-1]["result"] == "Succeeded"
    assert history[-1]["flagsHash"] != history[0]["flagsHash"]


def test_a_bad_flag_value_is_refused_by_the_api_server_naming_the_flag(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    # The flags ValidatingAdmissionPolicy refuses it; a Release stored before the policy is
    # InvalidSpec instead (tests/e2e/test_size.py).
    before = (listener_weights(aws, world), [t["id"] for t in live_task_sets(aws, world)], origin_path(aws, world))
    with pytest.raises(AssertionError) as refused:
        releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                                   featureFlags={"fine": True, "new_chat": {"enabled": True, "rolloutPercent": 150}}))
    assert "spec.featureFlags.new_chat" in str(refused.value) and "featureFlags.fine" not in str(refused.value)
    assert releases.kubectl("get", "release", "app", "-n", namespace, check=False).returncode != 0  # nothing stored
    # No Release, so no pass to wait for: a bounded look (a resync long) that nothing reached AWS anyway.
    time.sleep(RESYNC)
    assert (listener_weights(aws, world), [t["id"] for t in live_task_sets(aws, world)], origin_path(aws, world)) == before
    params = aws.ssm.get_parameters(Names=[f"/release-controller/{namespace}/app/flags"])
    assert params["Parameters"] == []


# --------------------------------------------------------------------------- drift


def hand_made_task_set(aws: AwsClients, world: WorldIds, version: str) -> str:
    """What a person in the console would do: a task set of another image, made primary."""
    td = aws.ecs.register_task_definition(
        family=f"{world.name}-backend", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512",
        containerDefinitions=[{"name": CONTAINER_NAME, "image": f"repo/pratiko-backend:{version}", "memory": 512,
                               "essential": True, "portMappings": [{"containerPort": CONTAINER_PORT}]}],
    )["taskDefinition"]["taskDefinitionArn"]
    arn = aws.ecs.create_task_set(
        cluster=world.cluster, service=world.service, taskDefinition=td, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": list(world.network.subnet_ids),
                                                      "securityGroups": [world.network.security_group_id]}},
        loadBalancers=[{"targetGroupArn": world.stable_target_group_arn, "containerName": CONTAINER_NAME,
                        "containerPort": CONTAINER_PORT}],
        scale={"unit": "PERCENT", "value": 100.0},
    )["taskSet"]["taskSetArn"]
    aws.ecs.update_service_primary_task_set(cluster=world.cluster, service=world.service, primaryTaskSet=arn)
    return str(arn)


def drift_events(releases: Releases, namespace: str) -> list[str]:
    return [e["message"] for e in releases.events(namespace, "app") if e["reason"] == "DriftDetected"]


def drift_metric(operator: OperatorProcess, namespace: str, resource: str) -> float:
    pattern = re.compile(
        r'^release_controller_drift_detected_total\{[^}]*namespace="%s"[^}]*resource="%s"[^}]*\} ([0-9.e+]+)$'
        % (re.escape(namespace), resource), re.M)
    return sum(float(m) for m in pattern.findall(operator.metrics()))


def unchanged_total(operator: OperatorProcess) -> float:
    found = re.search(r'^release_controller_reconcile_total\{result="unchanged"\} ([0-9.e+]+)$', operator.metrics(), re.M)
    return float(found.group(1)) if found else 0.0


# Detection waits for the next resync (3 s) and the revert takes a pass or two more (2 s polls),
# on a machine shared with other test runs: this bound is "one resync", with room for the load.
REVERT_WITHIN = RESYNC + 12.0


def test_hand_made_changes_are_detected_and_reverted_within_a_resync(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    settled(releases, namespace, "app", release_for(world, name="app", namespace=namespace, version="1.0.0",
                                                    frontend_version="1.0.0", featureFlags={"a": True}))
    blue, green = world.stable_target_group_arn, world.canary_target_group_arn
    ours = [t["id"] for t in live_task_sets(aws, world)]
    # Settled, it is checked by the resync round without a pass of its own (result="unchanged").
    unchanged = unchanged_total(operator)
    wait_for("a resync round finding Releases unchanged", lambda: unchanged_total(operator) > unchanged,
             2 * RESYNC + 5)

    set_weights(aws, world, 60)
    took = wait_for("listener weights reverted", lambda: listener_weights(aws, world) == {blue: 100, green: 0}, REVERT_WITHIN)
    assert took <= REVERT_WITHIN
    wait_for("a DriftDetected event naming the listener",
             lambda: any("listener weights" in m for m in drift_events(releases, namespace)), 10, 0.5)
    assert drift_metric(operator, namespace, "listener") >= 1

    hand = hand_made_task_set(aws, world, "9.9.9")
    wait_for("the hand-made task set deleted and ours primary again",
             lambda: [t["id"] for t in live_task_sets(aws, world)] == ours
             and live_task_sets(aws, world)[0]["status"] == "PRIMARY", REVERT_WITHIN)
    assert any("unexpected task set" in m and "9.9.9" in m for m in drift_events(releases, namespace)), hand

    aws.ecs.update_task_set(cluster=world.cluster, service=world.service, taskSet=ours[0],
                            scale={"unit": "PERCENT", "value": 40.0})
    wait_for("the task set scaled back to 100%",
             lambda: live_task_sets(aws, world)[0]["scale"]["value"] == 100.0, REVERT_WITHIN)

    set_origin(aws, world, "/releases/0.9.0")
    wait_for("the origin path reverted", lambda: origin_path(aws, world) == "/releases/1.0.0", REVERT_WITHIN)

    status = releases.wait(namespace, "app", lambda s: condition(s, "Drifted").get("status") == "False", 20,
                           "Drifted=False")
    assert status["phase"] == "Succeeded" and condition(status, "Drifted")["reason"] == "InSync"
    assert image_of(aws, live_task_sets(aws, world)[0]["taskDefinition"]).endswith(":1.0.0")


def test_under_report_drift_is_only_reported(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    settled(releases, namespace, "app", release_for(world, name="app", namespace=namespace, version="1.0.0",
                                                    frontend_version="1.0.0", rollback={"onDrift": "Report"}))
    blue, green = world.stable_target_group_arn, world.canary_target_group_arn
    set_weights(aws, world, 70)
    set_origin(aws, world, "/releases/0.9.0")
    status = releases.wait(namespace, "app", lambda s: condition(s, "Drifted").get("status") == "True",
                           REVERT_WITHIN, "Drifted=True")
    status = releases.wait(namespace, "app", lambda s: "/releases/0.9.0" in condition(s, "Drifted").get("message", ""),
                           REVERT_WITHIN, "Drifted naming both changes")
    drifted = condition(status, "Drifted")
    assert drifted["reason"] == "DriftDetected"
    assert "listener weights" in drifted["message"] and "/releases/0.9.0" in drifted["message"]
    reported = len(drift_events(releases, namespace))
    wait_passes(operator, namespace, "app", 2)  # two more passes: nothing is put back
    assert listener_weights(aws, world) == {blue: 70, green: 30}
    assert origin_path(aws, world) == "/releases/0.9.0"
    assert 1 <= len(drift_events(releases, namespace)) == reported  # reported once, not every resync
    assert releases.status(namespace, "app")["phase"] == "Succeeded"
