"""The effects a decision asks for. Each is a frozen value and each is idempotent when applied:
applying the same action twice leaves AWS as applying it once. `controller.aws.apply` executes
them in order; the planner never calls AWS.

Task sets are identified by `external_id`, which the planner derives from the Release and the
version (`external_id_for`), so that a retry after a crash finds the task set instead of
creating a second one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping, Union

from controller.planner.native import NativePlan


@dataclass(frozen=True)
class EnsureTaskSet:
    """A task set with this external id exists (created at `scale_percent` if missing).

    The task definition is the latest revision of the service's task definition family whose
    `container_name` runs `image`, registered from the current one when there is none.
    """

    cluster: str
    service: str
    external_id: str
    container_name: str
    image: str
    target_group_arn: str | None
    container_port: int | None
    scale_percent: float


@dataclass(frozen=True)
class ScaleTaskSet:
    cluster: str
    service: str
    external_id: str
    scale_percent: float
    # A task set made outside the controller (adopted) has no external id: then it is addressed by id.
    task_set_id: str | None = None


@dataclass(frozen=True)
class SetPrimaryTaskSet:
    cluster: str
    service: str
    external_id: str
    # As for ScaleTaskSet: set when known; the only handle of a task set without an external id.
    task_set_id: str | None = None


@dataclass(frozen=True)
class DeleteTaskSet:
    cluster: str
    service: str
    task_set_id: str


@dataclass(frozen=True)
class SetListenerWeights:
    listener_arn: str
    weights: Mapping[str, int]  # target group ARN -> weight, the whole default forward action


@dataclass(frozen=True)
class UpdateServiceImage:
    """ECS deployment controller: roll the service to `image` with the circuit breaker on."""

    cluster: str
    service: str
    container_name: str
    image: str
    minimum_healthy_percent: int = 100
    maximum_percent: int = 200


@dataclass(frozen=True)
class StartNativeDeployment:
    """ECS deployment controller, native mode: UpdateService to `image` with `plan`'s
    deploymentConfiguration; nothing when the current service deployment already targets it."""

    cluster: str
    service: str
    container_name: str
    image: str
    plan: NativePlan


@dataclass(frozen=True)
class AnswerNativeHook:
    """ContinueServiceDeployment `action` (CONTINUE | ROLLBACK) for one pause hook, by its id: once."""

    deployment_arn: str
    hook_id: str
    action: str


@dataclass(frozen=True)
class StopNativeDeployment:
    """StopServiceDeployment ROLLBACK, while the deployment is in progress."""

    deployment_arn: str


@dataclass(frozen=True)
class EnsurePreviewRoute:
    """Requests to `listener_arn` whose header `header_name` matches one of `header_values` go to
    `target_group_arn`: one listener rule tagged with `owner` (`<namespace>/<name>`), placed after
    every rule of the user's (`controller.aws.preview.ensure_preview_route`)."""

    listener_arn: str
    owner: str
    header_name: str
    header_values: tuple[str, ...]
    target_group_arn: str

    def conditions(self) -> list[dict[str, Any]]:
        return [{"Field": "http-header",
                 "HttpHeaderConfig": {"HttpHeaderName": self.header_name, "Values": list(self.header_values)}}]

    def actions(self) -> list[dict[str, Any]]:
        return [{"Type": "forward", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": self.target_group_arn, "Weight": 1}],
            "TargetGroupStickinessConfig": {"Enabled": False}}}]


@dataclass(frozen=True)
class RemovePreviewRoute:
    """The preview rule(s) tagged with `owner` on `listener_arn` are gone."""

    listener_arn: str
    owner: str


@dataclass(frozen=True)
class SetOriginPath:
    distribution_id: str
    origin_id: str
    origin_path: str
    invalidate_paths: tuple[str, ...] = ("/index.html", "/")


@dataclass(frozen=True)
class PublishFlags:
    """Feature flags for the backend (SSM parameter) and, if `bucket`, the frontend's flags.json."""

    parameter_name: str
    flags: Mapping[str, Any]
    bucket: str | None = None
    key: str = "flags.json"
    distribution_id: str | None = None


@dataclass(frozen=True)
class SetStagingWeight:
    """CloudFront continuous deployment: staging distribution at `origin_path`, policy at `weight`."""

    distribution_id: str
    origin_id: str
    origin_path: str
    weight_percent: int


@dataclass(frozen=True)
class SetStagingHeader:
    """CloudFront continuous deployment for a preview: staging distribution at `origin_path`, the policy
    `SingleHeader` (requests carrying `header_name: header_value` reach staging, no others), enabled."""

    distribution_id: str
    origin_id: str
    origin_path: str
    header_name: str
    header_value: str


@dataclass(frozen=True)
class ClearStagingHeader:
    """The primary's continuous deployment policy, if it routes by a header, back to `SingleWeight` at
    0% and disabled: what a frontend canary starts from (staging keeps its origin path)."""

    distribution_id: str


@dataclass(frozen=True)
class PromoteStaging:
    distribution_id: str


@dataclass(frozen=True)
class DisableStaging:
    distribution_id: str


Action = Union[
    EnsureTaskSet,
    ScaleTaskSet,
    SetPrimaryTaskSet,
    DeleteTaskSet,
    SetListenerWeights,
    EnsurePreviewRoute,
    RemovePreviewRoute,
    UpdateServiceImage,
    StartNativeDeployment,
    AnswerNativeHook,
    StopNativeDeployment,
    SetOriginPath,
    PublishFlags,
    SetStagingWeight,
    SetStagingHeader,
    ClearStagingHeader,
    PromoteStaging,
    DisableStaging,
]


def external_id_for(namespace: str, name: str, image: str) -> str:
    """The task set external id for one image of one Release.

    >>> external_id_for("production", "pratiko", "repo/backend:1.4.0")
    'rc.production.pratiko.5d359b3225'
    """
    digest = hashlib.sha256(image.encode()).hexdigest()[:10]
    return f"rc.{namespace}.{name}.{digest}"
