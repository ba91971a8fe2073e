"""Pure parsers of AWS response shapes: what the observer and the effectors both read.

Kept apart from `observe.py` (which reads) and the effectors (which write) so that both can use
them without importing each other. No AWS calls here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from controller.planner.world import (
    Deployment,
    Listener,
    NativeDeployment,
    PauseHook,
    RevisionShare,
    Service,
    StoppedTask,
    TaskSet,
    image_version,
)


def container_image(td: Mapping[str, Any] | None, container_name: str) -> str | None:
    if td is None:
        return None
    return next((c.get("image") for c in td.get("containerDefinitions", []) if c.get("name") == container_name), None)


version_of = image_version  # the tag of an image reference, the version by convention


def forward_weights(listener: Mapping[str, Any]) -> dict[str, int]:
    """Target group ARN -> weight of the listener's default forward action ({} if it does not forward).

    A forward to a single target group (no ForwardConfig) sends it everything: weight 100.
    """
    for action in listener.get("DefaultActions", []):
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if groups:
            return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
        if action.get("TargetGroupArn"):
            return {action["TargetGroupArn"]: 100}
    return {}


def origin_path_of(config: Mapping[str, Any], origin_id: str) -> str | None:
    """The OriginPath of `origin_id` ("" when the origin has none), None when there is no such origin."""
    for origin in (config.get("Origins") or {}).get("Items", []) or []:
        if origin.get("Id") == origin_id:
            return str(origin.get("OriginPath") or "")
    return None


def parse_flags(value: str | None) -> Mapping[str, Any] | None:
    """The published flags document; None (as if absent, so it is published again) when unreadable."""
    if value is None:
        return None
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def serving_version(service: Service | None, listener: Listener | None) -> str | None:
    """The version (image tag) of what takes the most traffic.

    EXTERNAL: the task set whose target group has the highest listener weight (ties: the larger
    scale, then PRIMARY); without a listener, the PRIMARY task set. A native deployment (ECS's
    BLUE_GREEN, CANARY, LINEAR): not its PRIMARY deployment, which is the target revision from the
    start at 0% of production, but `NativeDeployment.settled_image` (the target once SUCCESSFUL
    with all production traffic, the source until then). Other ECS-controller services: the
    PRIMARY deployment's image, else the service's.
    """
    if service is None:
        return None
    if service.native is not None:
        return version_of(service.native.settled_image())
    if service.task_sets:

        def rank(ts: TaskSet) -> tuple[int, float, bool]:
            weight = listener.weight(ts.target_group_arn) if listener and ts.target_group_arn else 0
            return weight, ts.scale_percent, ts.status == "PRIMARY"

        return version_of(max(service.task_sets, key=rank).image)
    primary = next((d for d in service.deployments if d.status == "PRIMARY"), None)
    return version_of(primary.image if primary and primary.image else service.image)


def parse_deployment(doc: Mapping[str, Any], target_task_definition: str | None,
                     target_image: str | None = None,
                     images: Mapping[str, str | None] | None = None) -> NativeDeployment:
    """A DescribeServiceDeployments entry as the planner sees it; ECS's free text is left out.

    `images`: service revision ARN -> the image of the Release's container in it, for the source
    revisions (`sourceServiceRevisions`, each a ServiceRevisionSummary with its own
    `requestedProductionTrafficWeight`, 0.0 to 100.0, API reference); one not found is None.
    """
    target = doc.get("targetServiceRevision") or {}
    images = images or {}
    return NativeDeployment(
        arn=str(doc["serviceDeploymentArn"]), status=str(doc.get("status", "PENDING")),
        stage=doc.get("lifecycleStage"), target_task_definition=target_task_definition,
        production_weight=float(target.get("requestedProductionTrafficWeight") or 0.0),
        test_weight=float(target.get("requestedTestTrafficWeight") or 0.0),
        hooks=tuple(PauseHook(str(h["hookId"]), str(h.get("status", "")), h.get("expiresAt"))
                    for h in doc.get("lifecycleHookDetails") or [] if h.get("hookId")),
        target_image=target_image,
        sources=tuple(RevisionShare(images.get(str(src.get("arn"))),
                                    float(src.get("requestedProductionTrafficWeight") or 0.0))
                      for src in doc.get("sourceServiceRevisions") or []),
    )


def parse_service(raw: Mapping[str, Any], container_name: str,
                  task_definition: Callable[[str], Mapping[str, Any] | None]) -> Service:
    """A DescribeServices entry; `task_definition` finds a task definition already described (or None)."""
    task_sets = tuple(
        TaskSet(
            id=ts["id"],
            arn=ts["taskSetArn"],
            external_id=ts.get("externalId") or None,  # ECS says "" for none
            task_definition=ts.get("taskDefinition", ""),
            image=container_image(task_definition(ts.get("taskDefinition", "")), container_name),
            scale_percent=float((ts.get("scale") or {}).get("value", 0.0)),
            status=ts.get("status", ""),
            target_group_arn=next((lb.get("targetGroupArn") for lb in ts.get("loadBalancers", [])), None),
            running_count=int(ts.get("runningCount", 0)),
            pending_count=int(ts.get("pendingCount", 0)),
            stability=ts.get("stabilityStatus", "STEADY_STATE"),
            computed_desired_count=(int(ts["computedDesiredCount"]) if ts.get("computedDesiredCount") is not None
                                    else None),
            stability_at=seconds(ts.get("stabilityStatusAt")),
            updated_at=seconds(ts.get("updatedAt")),
        )
        for ts in raw.get("taskSets", [])
    )
    deployments = tuple(
        Deployment(
            id=d["id"],
            status=d.get("status", ""),
            task_definition=d.get("taskDefinition", ""),
            image=container_image(task_definition(d.get("taskDefinition", "")), container_name),
            rollout_state=d.get("rolloutState"),
            running_count=int(d.get("runningCount", 0)),
            desired_count=int(d.get("desiredCount", 0)),
        )
        for d in raw.get("deployments", [])
    )
    controller = (raw.get("deploymentController") or {}).get("type", "ECS")
    td = raw.get("taskDefinition")
    advanced = ((raw.get("loadBalancers") or [{}])[0].get("advancedConfiguration") or {})
    return Service(
        arn=raw["serviceArn"],
        cluster=raw.get("clusterArn", ""),
        name=raw["serviceName"],
        deployment_controller=controller,
        desired_count=int(raw.get("desiredCount", 0)),
        status=raw.get("status", "ACTIVE"),
        task_definition=td,
        image=container_image(task_definition(td), container_name) if td else None,
        task_sets=task_sets,
        deployments=deployments,
        strategy=(raw.get("deploymentConfiguration") or {}).get("strategy"),
        native_routing=bool(advanced.get("alternateTargetGroupArn") and advanced.get("productionListenerRule")),
        test_listener=bool(advanced.get("testListenerRule")),
    )


def seconds(value: Any) -> float | None:
    """A timestamp botocore parsed (datetime, or a float with the fast parser) as Unix seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    stamp = getattr(value, "timestamp", None)
    return float(stamp()) if stamp is not None else None


# Stopped tasks that count as failures (ECS's circuit breaker): the task never started, its
# essential container exited, or its load balancer failed it. A scale-down's stops do not count.
FAILED_STOP_CODES = frozenset({"TaskFailedToStart", "EssentialContainerExited"})


def is_failed_task(task: Mapping[str, Any]) -> bool:
    return task.get("stopCode") in FAILED_STOP_CODES or "health checks" in str(task.get("stoppedReason", ""))


def stopped_task(task: Mapping[str, Any]) -> StoppedTask:
    containers = task.get("containers") or [{}]
    exit_code = next((c.get("exitCode") for c in containers if c.get("exitCode") is not None), None)
    reason = str(task.get("stoppedReason") or "")
    container_reason = next((c.get("reason") for c in containers if c.get("reason")), None)
    if container_reason and container_reason not in reason:
        reason = f"{reason}: {container_reason}" if reason else str(container_reason)
    return StoppedTask(arn=str(task.get("taskArn", "")), reason=reason, exit_code=exit_code,
                       stop_code=task.get("stopCode"))


_ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^:@]+)(?::([^@]+))?(?:@(.+))?$")


def ecr_reference(image: str | None) -> tuple[str, dict[str, str]] | None:
    """(repository, imageId for DescribeImages) of an ECR image; None for any other registry.

    >>> ecr_reference("123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:1.4.0")
    ('pratiko-backend', {'imageTag': '1.4.0'})
    >>> ecr_reference("ghcr.io/pratiko/backend:1.4.0") is None
    True
    """
    match = _ECR_IMAGE.match(image or "")
    if not match:
        return None
    repository, tag, digest = match[3], match[4], match[5]
    return repository, ({"imageDigest": digest} if digest else {"imageTag": tag or "latest"})


def service_name(service: str) -> str:
    return service.rsplit("/", 1)[-1]  # a service ARN or a name


def chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])
