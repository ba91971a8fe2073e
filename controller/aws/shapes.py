"""Pure parsers of AWS response shapes: what the observer and the effectors both read.

Kept apart from `observe.py` (which reads) and the effectors (which write) so that both can use
them without importing each other. No AWS calls here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from controller.planner.world import Listener, NativeDeployment, PauseHook, Service, TaskSet


def container_image(td: Mapping[str, Any] | None, container_name: str) -> str | None:
    if td is None:
        return None
    return next((c.get("image") for c in td.get("containerDefinitions", []) if c.get("name") == container_name), None)


def version_of(image: str | None) -> str | None:
    """The tag of an image reference, the version by convention.

    >>> version_of("123.dkr.ecr.eu-west-1.amazonaws.com:443/pratiko-backend:1.4.0")
    '1.4.0'
    >>> version_of("repo/app@sha256:abc") is None
    True
    """
    if not image or "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


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
    scale, then PRIMARY); without a listener, the PRIMARY task set. ECS controller: the PRIMARY
    deployment's image, else the service's.
    """
    if service is None:
        return None
    if service.task_sets:

        def rank(ts: TaskSet) -> tuple[int, float, bool]:
            weight = listener.weight(ts.target_group_arn) if listener and ts.target_group_arn else 0
            return weight, ts.scale_percent, ts.status == "PRIMARY"

        return version_of(max(service.task_sets, key=rank).image)
    primary = next((d for d in service.deployments if d.status == "PRIMARY"), None)
    return version_of(primary.image if primary and primary.image else service.image)


def parse_deployment(doc: Mapping[str, Any], target_task_definition: str | None,
                     target_image: str | None = None) -> NativeDeployment:
    """A DescribeServiceDeployments entry as the planner sees it; ECS's free text is left out."""
    target = doc.get("targetServiceRevision") or {}
    return NativeDeployment(
        arn=str(doc["serviceDeploymentArn"]), status=str(doc.get("status", "PENDING")),
        stage=doc.get("lifecycleStage"), target_task_definition=target_task_definition,
        production_weight=float(target.get("requestedProductionTrafficWeight") or 0.0),
        test_weight=float(target.get("requestedTestTrafficWeight") or 0.0),
        hooks=tuple(PauseHook(str(h["hookId"]), str(h.get("status", "")), h.get("expiresAt"))
                    for h in doc.get("lifecycleHookDetails") or [] if h.get("hookId")),
        target_image=target_image,
    )
