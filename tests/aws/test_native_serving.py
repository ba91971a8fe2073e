"""What serves during a native deployment, as the observer reads it: the production weight ECS
reports per revision (the target's and each source's), not the PRIMARY deployment, which is the
target revision from the start at 0% of production.

The parsing is tested on the shapes the ECS API reference documents (API_ServiceDeployment,
API_ServiceRevisionSummary: `requestedProductionTrafficWeight`, 0.0 to 100.0, optional); the
observer against the local ECS over HTTP, whose deployment walks its stages while we read it.
"""

from __future__ import annotations

from typing import Any

from controller.api.release import ReleaseSpec, ReleaseStatus, StrategyType
from controller.aws.clients import AwsClients
from controller.aws.native import EcsNativeDeployments
from controller.aws.observe import Observer
from controller.aws.shapes import parse_deployment, serving_version
from controller.planner.native import NativePlan, native_plan
from controller.planner.serving import backend_serving, summary
from controller.planner.world import Observation, Service
from controller.testing.aws_world import WorldIds, push_image, seed_world
from controller.testing.moto import MotoServer
from controller.testing.ports import wait_until
from controller.testing.specs import release_spec

REGION = "eu-west-1"
IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/pratiko-backend"
SOURCE = "arn:aws:ecs:eu-west-1:123456789012:service-revision/c/s/111"
TARGET = "arn:aws:ecs:eu-west-1:123456789012:service-revision/c/s/222"
KEY = ("production", "pratiko")


def documented(status: str, target: float | None, source: float | None) -> dict[str, Any]:
    """A DescribeServiceDeployments entry in the shape the API reference gives (weights optional)."""
    def summary_of(arn: str, weight: float | None) -> dict[str, Any]:
        out: dict[str, Any] = {"arn": arn, "requestedTaskCount": 2, "runningTaskCount": 2, "pendingTaskCount": 0}
        if weight is not None:
            out["requestedProductionTrafficWeight"] = weight
            out["requestedTestTrafficWeight"] = weight
        return out

    return {"serviceDeploymentArn": "arn:aws:ecs:eu-west-1:123456789012:service-deployment/c/s/abc",
            "status": status, "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT",
            "sourceServiceRevisions": [summary_of(SOURCE, source)], "targetServiceRevision": summary_of(TARGET, target)}


IMAGES = {SOURCE: f"{IMAGE}:1.0.0", TARGET: f"{IMAGE}:2.0.0"}


def native_service(doc: dict[str, Any]) -> Service:
    native = parse_deployment(doc, "td:2", IMAGES[TARGET], IMAGES)
    # The PRIMARY deployment and the service's task definition are the target's from the start.
    return Service(arn="arn:s", cluster="c", name="s", deployment_controller="ECS", desired_count=2,
                   status="ACTIVE", task_definition="td:2", image=f"{IMAGE}:2.0.0", strategy="CANARY", native=native)


def test_the_documented_shape_gives_each_revision_its_production_weight() -> None:
    native = parse_deployment(documented("IN_PROGRESS", 20.0, 80.0), "td:2", IMAGES[TARGET], IMAGES)
    assert native.production_shares() == ((f"{IMAGE}:2.0.0", 20.0), (f"{IMAGE}:1.0.0", 80.0))
    assert [s.image for s in native.sources] == [f"{IMAGE}:1.0.0"]
    # A source revision the observer could not resolve is still weighed, its image unknown.
    unresolved = parse_deployment(documented("IN_PROGRESS", 20.0, 80.0), "td:2", IMAGES[TARGET], {})
    assert unresolved.production_shares() == ((f"{IMAGE}:2.0.0", 20.0), (None, 80.0))


def test_the_version_serving_is_the_source_until_ecs_reports_success_with_all_traffic_on_the_target() -> None:
    cases = [  # (status, target weight, source weight) -> serving_version
        (("IN_PROGRESS", 0.0, 100.0), "1.0.0"),  # PRIMARY is 2.0.0 already; ECS sends it nothing
        (("IN_PROGRESS", 20.0, 80.0), "1.0.0"),
        (("IN_PROGRESS", 100.0, 0.0), "1.0.0"),  # bake time: not SUCCESSFUL yet
        (("SUCCESSFUL", 100.0, 0.0), "2.0.0"),
        (("SUCCESSFUL", None, None), "2.0.0"),  # weights are optional: SUCCESSFUL means all of it
        (("IN_PROGRESS", None, None), "1.0.0"),
        (("ROLLBACK_SUCCESSFUL", 0.0, 100.0), "1.0.0"),
        (("STOPPED", 20.0, 80.0), "1.0.0"),
    ]
    got = [(case, serving_version(native_service(documented(*case)), None)) for case, _ in cases]
    assert got == [(case, want) for case, want in cases]


def test_the_serving_figures_follow_ecs_weights_not_the_primary_deployment() -> None:
    spec = ReleaseSpec.model_validate(release_spec(version="2.0.0", image=f"{IMAGE}:2.0.0", cluster="c",
                                                   service="s"))
    def shown(status: str, target: float | None, source: float | None) -> str:
        obs = Observation(service=native_service(documented(status, target, source)))
        return summary(backend_serving(spec, ReleaseStatus(), obs))

    assert shown("IN_PROGRESS", 0.0, 100.0) == "1.0.0=100%"
    assert shown("IN_PROGRESS", 20.0, 80.0) == "1.0.0=80%,2.0.0=20%"
    assert shown("IN_PROGRESS", None, None) == "1.0.0=100%"
    assert shown("SUCCESSFUL", 100.0, 0.0) == "2.0.0=100%"
    assert shown("ROLLBACK_SUCCESSFUL", 0.0, 100.0) == "1.0.0=100%"


# --------------------------------------------------------------------------- the observer, local ECS


def world(server: MotoServer) -> tuple[AwsClients, WorldIds]:
    server.reset()
    clients = AwsClients.for_endpoint(server.endpoint, REGION)
    ids = seed_world(clients, deployment_controller="ECS", with_frontend=False, image=f"{IMAGE}:1.0.0",
                     deployment_configuration={"strategy": "CANARY"})
    return clients, ids


def spec_for(ids: WorldIds, version: str) -> ReleaseSpec:
    raw = release_spec(version=version, image=f"{IMAGE}:{version}", cluster=ids.cluster, service=ids.service,
                       container_name=ids.container_name,
                       strategy={"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
                       rollback={"window": "1m"})
    raw["backend"]["ecs"]["mode"] = "Native"
    return ReleaseSpec.model_validate(raw)


def test_the_observer_weighs_the_source_and_target_revisions_of_a_running_canary(native_moto: MotoServer) -> None:
    clients, ids = world(native_moto)
    push_image(clients, f"{IMAGE}:2.0.0")
    spec = spec_for(ids, "2.0.0")
    plan = native_plan(spec, StrategyType.CANARY, has_test_listener=False)
    assert isinstance(plan, NativePlan)
    native = EcsNativeDeployments(clients.ecs)
    assert native.start(ids.cluster, ids.service, ids.container_name, f"{IMAGE}:2.0.0", plan) is not None
    observer = Observer(clients)

    def at_hook(weight: float) -> bool:
        d = native.observe(ids.cluster, ids.service)
        return d is not None and d.awaiting is not None and d.production_weight == weight

    def read() -> tuple[str | None, str]:
        obs = observer.observe(KEY, spec)
        return obs.backend_version_serving, summary(backend_serving(spec, ReleaseStatus(), obs))

    wait_until(lambda: at_hook(0.0), 15, "the hook before the first shift")
    service = clients.ecs.describe_services(cluster=ids.cluster, services=[ids.service])["services"][0]
    primary = next(d for d in service["deployments"] if d["status"] == "PRIMARY")
    assert primary["taskDefinition"].endswith(":2")  # ECS's PRIMARY is the target already
    assert read() == ("1.0.0", "1.0.0=100%")

    first = native.observe(ids.cluster, ids.service)
    assert first is not None and first.awaiting is not None
    native.answer(first.arn, first.awaiting.hook_id, "CONTINUE")
    wait_until(lambda: at_hook(20.0), 15, "the hook at 20%")
    clients.calls.reset()
    assert read() == ("1.0.0", "1.0.0=80%,2.0.0=20%")
    # Revisions are read once: the source and target were described before, not again.
    assert clients.calls.total("ecs:DescribeServiceRevisions") == 0

    d = native.observe(ids.cluster, ids.service)
    assert d is not None and d.awaiting is not None
    native.answer(d.arn, d.awaiting.hook_id, "CONTINUE")
    wait_until(lambda: (native.observe(ids.cluster, ids.service) or d).status == "SUCCESSFUL", 20, "SUCCESSFUL")
    assert read() == ("2.0.0", "2.0.0=100%")
