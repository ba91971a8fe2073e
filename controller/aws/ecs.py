"""ECS effectors: task definitions, task sets (EXTERNAL controller) and UpdateService (ECS controller).

Each function reads what it is about to change and changes only what differs, so applying an
action twice leaves ECS as applying it once, and a pass interrupted anywhere is finished by the
next one:

- A task set is found by its `externalId` before one is created. ECS's `clientToken` is sent too,
  but it is not enough: moto ignores it, and it only covers a retry of the same HTTP call.
- A task definition revision is reused when the latest ACTIVE revision of the family already runs
  the image in the container, so a crash between RegisterTaskDefinition and CreateTaskSet does not
  register a second revision on the next pass.

This module must not decide anything: which task set to create, scale or delete is the planner's.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from controller.aws.errors import AwsEffectError, AwsFailure, effect_error, error_code, is_not_found
from controller.aws.taskdefs import TaskDefinitionCache
from controller.aws.shapes import container_image
from controller.planner.actions import (
    DeleteTaskSet,
    EnsureTaskSet,
    ScaleTaskSet,
    SetPrimaryTaskSet,
    UpdateServiceImage,
)

SCALE_EPSILON = 0.01
# Fields DescribeTaskDefinition returns that RegisterTaskDefinition does not take.
_READ_ONLY = {"taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
              "registeredAt", "registeredBy", "deregisteredAt", "deleteRequestedAt"}


def describe_service(ecs: Any, cluster: str, service: str) -> Mapping[str, Any]:
    """The service as ECS describes it; ClusterNotFound / ServiceNotFound as AwsEffectError."""
    try:
        resp = ecs.describe_services(cluster=cluster, services=[service])
    except AwsFailure as exc:
        if is_not_found(exc, "ClusterNotFoundException"):
            raise AwsEffectError("ClusterNotFound", f"ECS cluster {cluster} does not exist", retryable=False) from exc
        raise effect_error(exc, f"ECS service {service} in {cluster}") from exc
    found: list[Mapping[str, Any]] = [s for s in resp.get("services", []) if s.get("status") != "INACTIVE"]
    if not found:
        message = f"ECS service {service} does not exist in cluster {cluster}"
        raise AwsEffectError("ServiceNotFound", message, retryable=False)
    return found[0]


def find_task_set(
    service: Mapping[str, Any], external_id: str | None, task_set_id: str | None = None
) -> Mapping[str, Any] | None:
    sets: list[Mapping[str, Any]] = service.get("taskSets", [])
    for ts in sets:
        if task_set_id and task_set_id in (ts.get("id"), ts.get("taskSetArn")):
            return ts
    if external_id:
        return next((ts for ts in sets if ts.get("externalId") == external_id), None)
    return None


def _current_task_set(service: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The task set new ones copy their network and launch settings from: PRIMARY, else any."""
    sets = service.get("taskSets", [])
    return next((ts for ts in sets if ts.get("status") == "PRIMARY"), sets[0] if sets else None)


def base_task_definition(service: Mapping[str, Any]) -> str | None:
    """The task definition a new version's revision is made from: the current task set's, else the service's."""
    return (_current_task_set(service) or {}).get("taskDefinition") or service.get("taskDefinition")


def new_revision(ecs: Any, cache: TaskDefinitionCache, service: Mapping[str, Any], service_name: str,
                 container: str, image: str) -> str:
    """The task definition revision running `image` in `container`, made (or found) from the
    service's base task definition: what a new task set and a hook's one-off task both run."""
    base_arn = base_task_definition(service)
    if not base_arn:
        raise AwsEffectError(
            "TaskDefinitionNotFound",
            f"ECS service {service_name} has no task set or task definition to copy for {image}",
            retryable=False,
        )
    td_arn, _ = task_definition_for(ecs, cache, base_arn, container, image)
    return td_arn


def launch_settings(service: Mapping[str, Any], source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Network configuration and launch type / capacity provider strategy, as `source` (a task set,
    by default the current one) or else the service has them: what CreateTaskSet and RunTask take."""
    source = source if source is not None else _current_task_set(service)
    settings = source or service
    out: dict[str, Any] = {}
    network = settings.get("networkConfiguration") or service.get("networkConfiguration")
    if network:
        out["networkConfiguration"] = network
    if settings.get("capacityProviderStrategy"):
        out["capacityProviderStrategy"] = settings["capacityProviderStrategy"]
    elif settings.get("launchType"):
        out["launchType"] = settings["launchType"]
        if settings["launchType"] == "FARGATE" and settings.get("platformVersion"):
            out["platformVersion"] = settings["platformVersion"]
    return out


def task_definition_for(
    ecs: Any, cache: TaskDefinitionCache, base_arn: str, container_name: str, image: str
) -> tuple[str, bool]:
    """(ARN, registered now) of a task definition like `base_arn` with `image` in `container_name`.

    Reuses `base_arn` itself or the latest ACTIVE revision of its family when it already runs the
    image; otherwise registers a new revision from `base_arn` (every field RegisterTaskDefinition
    accepts, and its tags) with the image replaced.
    """
    base = cache.fetch(ecs, base_arn)
    if container_image(base, container_name) is None:
        raise AwsEffectError(
            "ContainerNotFound",
            f"task definition {base_arn} has no container named {container_name!r}",
            retryable=False,
        )
    if container_image(base, container_name) == image:
        return base["taskDefinitionArn"], False
    latest = _latest_revision(ecs, base["family"])
    if latest is not None and latest != base["taskDefinitionArn"]:
        if container_image(cache.fetch(ecs, latest), container_name) == image:
            return latest, False
    described = ecs.describe_task_definition(taskDefinition=base_arn, include=["TAGS"])
    request = registration_request(described["taskDefinition"], container_name, image, ecs)
    if described.get("tags"):
        request["tags"] = described["tags"]
    registered = ecs.register_task_definition(**request)["taskDefinition"]
    cache.put(registered)
    return registered["taskDefinitionArn"], True


def registration_request(td: Mapping[str, Any], container_name: str, image: str, ecs: Any) -> dict[str, Any]:
    """RegisterTaskDefinition arguments copying `td` with `image` in `container_name`.

    The accepted fields come from the client's own API model, so a field AWS adds later is copied
    as soon as botocore knows it, and nothing read-only is sent.
    """
    accepted = set(ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape.members)
    request = {
        k: copy.deepcopy(v)
        for k, v in td.items()
        if k in accepted and k not in _READ_ONLY and v not in (None, [], {})
    }
    for container in request["containerDefinitions"]:
        if container.get("name") == container_name:
            container["image"] = image
    return request


def _latest_revision(ecs: Any, family: str) -> str | None:
    # AWS honours sort=DESC (the first page starts with the latest); moto ignores it and returns
    # ascending order in one page. Taking the highest revision seen works for both.
    arns = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE", sort="DESC").get("taskDefinitionArns", [])
    ours = [a for a in arns if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family]
    return max(ours, key=lambda a: int(a.rsplit(":", 1)[1]), default=None)


def _container_port(td: Mapping[str, Any], container_name: str) -> int | None:
    for c in td.get("containerDefinitions", []):
        if c.get("name") == container_name:
            ports = c.get("portMappings") or []
            return int(ports[0]["containerPort"]) if ports else None
    return None


def client_token(external_id: str) -> str:
    """A stable token of at most 36 characters (ECS's limit) for one external id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"release-controller:{external_id}"))


def ensure_task_set(ecs: Any, cache: TaskDefinitionCache, a: EnsureTaskSet) -> str | None:
    service = describe_service(ecs, a.cluster, a.service)
    if find_task_set(service, a.external_id) is not None:
        return None
    td_arn = new_revision(ecs, cache, service, a.service, a.container_name, a.image)
    request: dict[str, Any] = {
        "cluster": a.cluster,
        "service": a.service,
        "taskDefinition": td_arn,
        "externalId": a.external_id,
        "scale": {"unit": "PERCENT", "value": float(a.scale_percent)},
        "clientToken": client_token(a.external_id),
    }
    request.update(launch_settings(service))
    if a.target_group_arn:
        port = a.container_port or _container_port(cache.fetch(ecs, td_arn), a.container_name)
        if port is None:
            raise AwsEffectError(
                "ContainerPortUnknown",
                f"container {a.container_name} of {td_arn} maps no port to register in {a.target_group_arn}",
                retryable=False,
            )
        request["loadBalancers"] = [
            {"targetGroupArn": a.target_group_arn, "containerName": a.container_name, "containerPort": port}
        ]
    created = ecs.create_task_set(**request)["taskSet"]
    return f"created task set {created['id']} ({a.external_id}) with {a.image} at {a.scale_percent:g}%"


def _task_set(ecs: Any, cluster: str, service: str, external_id: str, task_set_id: str | None) -> Mapping[str, Any]:
    found = find_task_set(describe_service(ecs, cluster, service), external_id or None, task_set_id)
    if found is None:
        raise AwsEffectError(
            "TaskSetNotFound", f"no task set {task_set_id or external_id} in ECS service {service}", retryable=True
        )
    return found


def scale_task_set(ecs: Any, a: ScaleTaskSet) -> str | None:
    ts = _task_set(ecs, a.cluster, a.service, a.external_id, a.task_set_id)
    if abs(float((ts.get("scale") or {}).get("value", -1.0)) - a.scale_percent) < SCALE_EPSILON:
        return None
    ecs.update_task_set(
        cluster=a.cluster, service=a.service, taskSet=ts["taskSetArn"],
        scale={"unit": "PERCENT", "value": float(a.scale_percent)},
    )
    return f"scaled task set {ts['id']} to {a.scale_percent:g}%"


def set_primary_task_set(ecs: Any, a: SetPrimaryTaskSet) -> str | None:
    ts = _task_set(ecs, a.cluster, a.service, a.external_id, a.task_set_id)
    if ts.get("status") == "PRIMARY":
        return None
    ecs.update_service_primary_task_set(cluster=a.cluster, service=a.service, primaryTaskSet=ts["taskSetArn"])
    return f"made task set {ts['id']} primary"


def delete_task_set(ecs: Any, a: DeleteTaskSet) -> str | None:
    try:
        ecs.delete_task_set(cluster=a.cluster, service=a.service, taskSet=a.task_set_id, force=True)
    except AwsFailure as exc:
        if is_not_found(exc, "TaskSetNotFoundException") or _says_task_set_missing(exc):
            return None  # already gone: what we wanted
        raise
    return f"deleted task set {a.task_set_id}"


def _says_task_set_missing(exc: BaseException) -> bool:
    # ECS documents TaskSetNotFoundException; some endpoints (moto) say ClientException with this text.
    return error_code(exc) == "ClientException" and "task set does not exist" in str(exc)


def update_service_image(ecs: Any, cache: TaskDefinitionCache, a: UpdateServiceImage) -> str | None:
    service = describe_service(ecs, a.cluster, a.service)
    controller = (service.get("deploymentController") or {}).get("type", "ECS")
    if controller != "ECS":
        raise AwsEffectError(
            "DeploymentControllerMismatch",
            f"ECS service {a.service} uses the {controller} deployment controller, not ECS",
            retryable=False,
        )
    current = service.get("taskDefinition") or ""
    config = service.get("deploymentConfiguration")
    wanted_config = {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "minimumHealthyPercent": a.minimum_healthy_percent,
        "maximumPercent": a.maximum_percent,
    }
    if (config or {}).get("strategy") not in (None, "ROLLING"):
        # Left BLUE_GREEN/CANARY/LINEAR by a native rollout: Rolling and Fast roll, with no pause hook.
        wanted_config["strategy"] = "ROLLING"
    # moto reports no deploymentConfiguration at all; AWS always does. Absent counts as set.
    config_ok = config is None or all(config.get(k) == v for k, v in wanted_config.items())
    if current and container_image(cache.fetch(ecs, current), a.container_name) == a.image and config_ok:
        return None
    td_arn, _ = task_definition_for(ecs, cache, current, a.container_name, a.image)
    ecs.update_service(
        cluster=a.cluster, service=a.service, taskDefinition=td_arn, deploymentConfiguration=wanted_config
    )
    return f"updated service {a.service} to {td_arn} ({a.image}) with the circuit breaker on"

