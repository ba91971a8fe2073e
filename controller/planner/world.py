"""What the controller saw of AWS in one pass: immutable values the planner decides from.

Produced by `controller.aws.observe`, consumed by `controller.planner.decide`. Plain frozen
dataclasses: no boto3 types leak past the effector layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping


@dataclass(frozen=True)
class StoppedTask:
    """A task of a task set that ECS stopped: why, and its container's exit code."""

    arn: str
    reason: str  # stoppedReason, e.g. "Essential container in task exited"
    exit_code: int | None = None
    stop_code: str | None = None  # EssentialContainerExited | TaskFailedToStart | ...

    def describe(self) -> str:
        code = "" if self.exit_code is None else f" (exit code {self.exit_code})"
        return f"{self.reason}{code}"


@dataclass(frozen=True)
class TaskSet:
    """One ECS task set of an EXTERNAL-controller service.

    None in an optional figure means "not read": the predicate below does not hold it against the
    task set (the observer reads target health and stopped tasks only for task sets in motion).
    """

    id: str
    arn: str
    external_id: str | None
    task_definition: str
    image: str | None  # the image of the Release's container in that task definition
    scale_percent: float
    status: str  # PRIMARY | ACTIVE | DRAINING
    target_group_arn: str | None
    running_count: int = 0
    pending_count: int = 0
    stability: str = "STEADY_STATE"  # STEADY_STATE | STABILIZING
    computed_desired_count: int | None = None
    stability_at: float | None = None  # stabilityStatusAt, Unix seconds
    updated_at: float | None = None  # updatedAt: the last CreateTaskSet / UpdateTaskSet
    healthy_targets: int | None = None  # healthy targets in its target group
    stopped_tasks: tuple[StoppedTask, ...] = ()

    def ready_for_traffic(self) -> bool:
        """Whether weight may move onto this task set: what ECS reports shows the capacity runs.

        STEADY_STATE alone is not enough: ECS reports the old stability for a moment after a
        change, so the report must be newer than the last change; all computed tasks running, none
        pending, and (when read) as many healthy targets in its target group as tasks.
        """
        if self.stability != "STEADY_STATE" or self.pending_count > 0:
            return False
        if self.stability_at is not None and self.updated_at is not None and self.stability_at <= self.updated_at:
            return False
        wanted = self.computed_desired_count
        if wanted is not None:
            if self.scale_percent > 0 and wanted < 1:
                return False  # ECS has not computed the task count of the new scale yet
            if self.running_count < wanted:
                return False
            if self.healthy_targets is not None and self.healthy_targets < wanted:
                return False
        return True


@dataclass(frozen=True)
class Deployment:
    """One deployment of an ECS-controller service (UpdateService rollouts)."""

    id: str
    status: str  # PRIMARY | ACTIVE | INACTIVE
    task_definition: str
    image: str | None
    rollout_state: str | None  # IN_PROGRESS | COMPLETED | FAILED
    running_count: int = 0
    desired_count: int = 0


@dataclass(frozen=True)
class PauseHook:
    """A lifecycle hook of a native service deployment (API_DeploymentLifecycleHookDetail)."""

    hook_id: str
    status: str  # AWAITING_ACTION | SUCCEEDED | FAILED | TIMED_OUT
    expires_at: Any = None  # datetime, when ECS takes the hook's timeout action


def image_version(image: str | None) -> str | None:
    """The tag of an image reference, the version by convention (None for a digest or no tag).

    >>> image_version("123.dkr.ecr.eu-west-1.amazonaws.com:443/pratiko-backend:1.4.0")
    '1.4.0'
    >>> image_version("repo/app@sha256:abc") is None
    True
    """
    if not image or "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


@dataclass(frozen=True)
class RevisionShare:
    """A source revision of a native deployment (`sourceServiceRevisions`): the image of the
    Release's container in it and the percent of production traffic ECS reports on it."""

    image: str | None
    production_weight: float = 0.0


NATIVE_ACTIVE = frozenset({"PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"})
NATIVE_ROLLED_BACK = frozenset({"ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"})


@dataclass(frozen=True)
class NativeDeployment:
    """The current service deployment of a service ECS deploys itself (DescribeServiceDeployments).

    Nothing ECS says in free text (statusReason, the rollback reason) is kept: a Release's status
    must not echo a remote endpoint.
    """

    arn: str
    status: str  # PENDING | IN_PROGRESS | SUCCESSFUL | STOPPED | ROLLBACK_IN_PROGRESS | ROLLBACK_SUCCESSFUL ...
    stage: str | None  # lifecycleStage
    target_task_definition: str | None
    production_weight: float = 0.0  # percent of production traffic on the target revision
    test_weight: float = 0.0
    hooks: tuple[PauseHook, ...] = ()  # those of the current stage
    target_image: str | None = None  # the image of the Release's container in the target revision
    sources: tuple[RevisionShare, ...] = ()  # the revisions the deployment moves away from

    @property
    def active(self) -> bool:
        return self.status in NATIVE_ACTIVE

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESSFUL"

    @property
    def rolled_back(self) -> bool:
        return self.status in NATIVE_ROLLED_BACK

    @property
    def awaiting(self) -> PauseHook | None:
        """The hook ECS waits on now, if any."""
        return next((h for h in self.hooks if h.status == "AWAITING_ACTION"), None)

    def production_shares(self) -> tuple[tuple[str | None, float], ...]:
        """(image, percent of production traffic) of each revision, the target first.

        The PRIMARY deployment of a native service is the target from the start, at 0% of
        production; what serves is what ECS reports per revision (`requestedProductionTrafficWeight`,
        API_ServiceRevisionSummary). Where it reports no weight at all (the field is optional): a
        SUCCESSFUL deployment, or one with nothing to move from, has it all on the target;
        otherwise the sources keep it, so the new version is never shown serving before ECS says so.
        Weights that do not add up to 100 (snapshots of a moving deployment) count as parts of it.

        >>> d = NativeDeployment("arn:d", "IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", "td:2", production_weight=20.0,
        ...                      target_image="r/app:2.0.0", sources=(RevisionShare("r/app:1.0.0", 80.0),))
        >>> d.production_shares()
        (('r/app:2.0.0', 20.0), ('r/app:1.0.0', 80.0))
        >>> replace(d, production_weight=0.0, sources=(RevisionShare("r/app:1.0.0"),)).production_shares()
        (('r/app:1.0.0', 100.0),)
        """
        total = self.production_weight + sum(s.production_weight for s in self.sources)
        if total > 0:  # snapshots taken apart may not add up to 100: each is its part of the whole
            return ((self.target_image, 100.0 * self.production_weight / total),
                    *((s.image, 100.0 * s.production_weight / total) for s in self.sources))
        if self.succeeded or not self.sources:
            return ((self.target_image, 100.0),)
        return tuple((s.image, 100.0 / len(self.sources)) for s in self.sources)

    def settled_image(self) -> str | None:
        """The image a frontend may count on as the backend's: the target's only once ECS reports the
        deployment SUCCESSFUL with all production traffic on it; until then (and after a rollback or
        a stop) the source's with the most production traffic, whatever the split.

        >>> d = NativeDeployment("arn:d", "IN_PROGRESS", "BAKE_TIME", "td:2", production_weight=100.0,
        ...                      target_image="r/app:2.0.0", sources=(RevisionShare("r/app:1.0.0", 0.0),))
        >>> d.settled_image(), replace(d, status="SUCCESSFUL").settled_image()
        ('r/app:1.0.0', 'r/app:2.0.0')
        """
        if not self.sources:
            return self.target_image
        reported = self.production_weight + sum(s.production_weight for s in self.sources) > 0
        if self.succeeded and (self.production_weight >= 99.5 or not reported):
            return self.target_image
        return max(self.sources, key=lambda s: s.production_weight).image


@dataclass(frozen=True)
class Service:
    arn: str
    cluster: str
    name: str
    deployment_controller: str  # ECS | EXTERNAL | CODE_DEPLOY
    desired_count: int
    status: str = "ACTIVE"
    task_definition: str | None = None  # ECS controller: the service's current task definition
    image: str | None = None  # ECS controller: the image of the Release's container in it
    task_sets: tuple[TaskSet, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    # ECS controller, native deployments: the strategy set on the service, whether ECS's own routing
    # (loadBalancers[0].advancedConfiguration) is there, and the current service deployment.
    strategy: str | None = None
    native_routing: bool = False
    test_listener: bool = False
    native: NativeDeployment | None = None

    def task_set(self, external_id: str) -> TaskSet | None:
        return next((t for t in self.task_sets if t.external_id == external_id), None)

    @property
    def primary(self) -> TaskSet | None:
        return next((t for t in self.task_sets if t.status == "PRIMARY"), None)


@dataclass(frozen=True)
class PreviewRule:
    """A listener rule tagged as a Release's preview route (`controller.aws.preview`), as read back."""

    owner: str  # the tag's value: <namespace>/<name>
    priority: int
    header_name: str
    header_values: tuple[str, ...]
    target_group_arn: str | None  # the one target group it forwards to; None: something else

    def routes(self, header_name: str, header_value: str, target_group_arn: str | None) -> bool:
        """Whether this rule sends requests with the header (name without case, as ALB) to the group."""
        return (self.header_name.lower() == header_name.lower() and self.header_values == (header_value,)
                and self.target_group_arn == target_group_arn)


@dataclass(frozen=True)
class Listener:
    arn: str
    weights: Mapping[str, int]  # target group ARN -> weight of the default forward action
    # The preview rules on it (any owner's), read only for a spec that has a preview (`previews_read`).
    previews: tuple[PreviewRule, ...] = ()
    previews_read: bool = False

    def weight(self, target_group_arn: str) -> int:
        return self.weights.get(target_group_arn, 0)

    def preview_of(self, owner: str) -> tuple[PreviewRule, ...]:
        return tuple(r for r in self.previews if r.owner == owner)


@dataclass(frozen=True)
class StagingDistribution:
    """CloudFront continuous deployment: the staging copy and the policy's traffic config."""

    distribution_id: str
    origin_path: str | None
    policy_id: str | None
    policy_enabled: bool
    weight_percent: int  # 0..15; 0 unless the policy is SingleWeight
    traffic_type: str = "SingleWeight"  # the policy's TrafficConfig.Type: SingleWeight | SingleHeader
    header_name: str | None = None  # SingleHeader: the header (and value) whose requests reach staging
    header_value: str | None = None

    @property
    def header_routed(self) -> bool:
        """Whether the policy sends any request to staging by a header (an enabled SingleHeader policy)."""
        return self.policy_enabled and self.traffic_type == "SingleHeader"

    def routes_header(self, header_name: str, header_value: str, origin_path: str) -> bool:
        """Whether requests carrying exactly this header reach staging, which serves `origin_path`
        (the name without case, as HTTP; CloudFront compares the value exactly)."""
        return (self.header_routed and self.origin_path == origin_path and self.header_value == header_value
                and (self.header_name or "").lower() == header_name.lower())


@dataclass(frozen=True)
class Frontend:
    distribution_id: str
    origin_id: str
    origin_path: str | None  # None: the origin id is not in the distribution
    status: str = "Deployed"
    staging: StagingDistribution | None = None


@dataclass(frozen=True)
class ObservationError:
    """A part of the world that could not be read. `reason` becomes a condition reason."""

    reason: str  # ServiceNotFound | ClusterNotFound | ListenerNotFound | TargetGroupNotFound | DistributionNotFound | OriginNotFound | AwsError
    message: str
    retryable: bool = False


@dataclass(frozen=True)
class ServiceView:
    """One service of a backend tier of several as observed: its ECS service and its listener."""

    service: Service | None = None
    listener: Listener | None = None


SINGLE_SERVICE = "backend"  # `release.SINGLE_SERVICE`: the name of the one service of a single-service tier


@dataclass(frozen=True)
class Observation:
    # One service (the single-service form): `service` and `listener`. Several: `services` by name
    # (`service` and `listener` are then the first service's, for readers of one).
    service: Service | None = None
    listener: Listener | None = None
    services: Mapping[str, ServiceView] = field(default_factory=dict)
    frontend: Frontend | None = None
    flags: Mapping[str, Any] | None = None  # the published flags document, None when absent
    errors: tuple[ObservationError, ...] = ()
    backend_version_serving: str | None = None  # derived by the observer from image tags, when known
    extra: Mapping[str, Any] = field(default_factory=dict)

    def view(self, name: str) -> ServiceView:
        """The service called `name` and its listener: from `services`, else (one service) the
        single-service fields."""
        if name in self.services:
            return self.services[name]
        if not self.services:
            return ServiceView(self.service, self.listener)
        return ServiceView()

    def with_errors(self, *errors: ObservationError) -> "Observation":
        return replace(self, errors=self.errors + errors)
