"""The Release custom resource as pydantic models: the single source of `crds/release.yaml`.

Everything here is data. Validation that can be said in a schema is said here (it becomes the
OpenAPI schema and CEL rules the API server enforces); behaviour lives in `planner/`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from pydantic.alias_generators import to_camel

from controller.api.reasons import CONDITION_REASONS_DOC
from controller.api.types import RANGE_PATTERN, Duration, SemVer

GROUP = "delivery.pratiko.ai"
VERSION = "v1alpha1"
KIND = "Release"
PLURAL = "releases"
SINGULAR = "release"
SHORT_NAMES = ["rel"]


def cel(rule: str, message: str, **extra: Any) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry."""
    return {"rule": rule, "message": message, **extra}


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python, immutable once parsed."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --------------------------------------------------------------------------- spec


class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class StrategyType(StrEnum):
    AUTO = "Auto"
    FAST = "Fast"
    ROLLING = "Rolling"
    CANARY = "Canary"
    BLUE_GREEN = "BlueGreen"


class ChangeClass(StrEnum):
    INFRASTRUCTURE = "infrastructure"
    API = "api"
    CORE = "core"
    MINOR = "minor"


class EcsTarget(Model):
    cluster: str = Field(min_length=1, max_length=255)
    service: str = Field(min_length=1, max_length=255)
    container_name: str = Field(min_length=1, max_length=255)


class Traffic(Model):
    """An ALB listener whose default action forwards to two target groups."""

    listener_arn: str = Field(min_length=1, max_length=2048)
    stable_target_group_arn: str = Field(min_length=1, max_length=2048, description='The "blue" target group.')
    canary_target_group_arn: str = Field(min_length=1, max_length=2048, description='The "green" target group.')


class Backend(Model):
    version: SemVer
    image: str = Field(min_length=1, max_length=1024)
    ecs: EcsTarget
    traffic: Traffic | None = None


class Pause(Model):
    duration: Duration | None = Field(
        default=None, description="How long to wait. Without it the rollout waits for `promote`."
    )


class CanaryStep(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.setWeight) != has(self.pause)",
                    "a canary step is exactly one of setWeight or pause",
                )
            ]
        }
    )

    set_weight: int | None = Field(default=None, ge=0, le=100)
    pause: Pause | None = None


def _steps_never_decrease(max_weight: int) -> dict[str, Any]:
    return {
        "maxItems": 50,
        "x-kubernetes-validations": [
            cel(
                "self.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()",
                "canary weights must not decrease from one setWeight step to the next",
            ),
            *(
                [cel(f"self.all(s, !has(s.setWeight) || s.setWeight <= {max_weight})",
                     f"a frontend canary weight is at most {max_weight} (CloudFront continuous deployment)")]
                if max_weight < 100
                else []
            ),
        ],
    }


class CanaryStrategy(Model):
    steps: list[CanaryStep] = Field(default_factory=list, json_schema_extra=_steps_never_decrease(100))


class BlueGreenStrategy(Model):
    preview_duration: Duration = Field(default=timedelta(seconds=60))
    scale_down_delay: Duration = Field(default=timedelta(minutes=5))


class RollingStrategy(Model):
    steps: list[int] = Field(
        default_factory=lambda: [25, 50, 75, 100],
        description="Percent of the service the new version runs at each step; traffic follows.",
        json_schema_extra={
            "maxItems": 20,
            "items": {"type": "integer", "minimum": 1, "maximum": 100},
            "x-kubernetes-validations": [cel("self.isSorted()", "rolling steps must not decrease")],
        },
    )
    interval: Duration = Field(default=timedelta(seconds=10), description="Health check wait between steps.")


class Strategy(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.type != 'Auto' || has(self.changeClass)", "strategy Auto needs changeClass",
                    fieldPath=".changeClass"),
            ]
        }
    )

    type: StrategyType = StrategyType.AUTO
    change_class: ChangeClass | None = None
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None
    rolling: RollingStrategy | None = None


class CloudFrontTarget(Model):
    distribution_id: str = Field(min_length=1, max_length=128)
    origin_id: str = Field(min_length=1, max_length=255)
    origin_path_template: str = Field(
        default="/releases/{version}", pattern=r"^/.*\{version\}.*$", max_length=1024
    )
    bucket: str | None = Field(default=None, max_length=255, description="S3 bucket behind the origin (flags.json).")
    invalidate_paths: list[str] = Field(
        default_factory=lambda: ["/index.html", "/", "/flags.json"], json_schema_extra={"maxItems": 50}
    )


class FrontendCanary(Model):
    steps: list[CanaryStep] = Field(default_factory=list, json_schema_extra=_steps_never_decrease(15))


class ApiOperation(Model):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    path: str = Field(min_length=1, max_length=1024)
    fields: list[str] = Field(default_factory=list, description="Response fields the frontend reads.",
                              json_schema_extra={"maxItems": 200})


class ApiContract(Model):
    operations: list[ApiOperation] = Field(default_factory=list, json_schema_extra={"maxItems": 500})
    config_map: str | None = Field(default=None, description="A ConfigMap whose `contract.yaml` holds operations.")
    openapi_url: str | None = Field(default=None, description="Where the backend serves its OpenAPI document.")


class Frontend(Model):
    version: SemVer
    cloudfront: CloudFrontTarget
    requires_backend: str | None = Field(default=None, pattern=RANGE_PATTERN, max_length=256)
    canary: FrontendCanary | None = None
    api_contract: ApiContract | None = None


class PrometheusQuery(Model):
    address: str = Field(min_length=1, max_length=2048)
    query: str = Field(min_length=1, max_length=8192)


class CloudWatchDimension(Model):
    name: str
    value: str


class CloudWatchMetric(Model):
    namespace: str
    metric_name: str
    dimensions: list[CloudWatchDimension] = Field(default_factory=list, json_schema_extra={"maxItems": 30})


class CloudWatchMetricStat(Model):
    metric: CloudWatchMetric
    period: int = Field(default=60, ge=1)
    stat: str = "Average"


class CloudWatchQuery(Model):
    id: str = Field(pattern=r"^[a-z][a-zA-Z0-9_]*$", max_length=255)
    expression: str | None = None
    metric_stat: CloudWatchMetricStat | None = None
    return_data: bool | None = None


class CloudWatchMetricSource(Model):
    metric_data_queries: list[CloudWatchQuery] = Field(min_length=1, json_schema_extra={"maxItems": 20})
    lookback: Duration = Field(default=timedelta(minutes=5))


class HttpCheck(Model):
    url: str = Field(min_length=1, max_length=2048)
    expect_status: int = Field(default=200, ge=100, le=599)
    json_path: str | None = Field(default=None, description="Dotted path into the JSON body, e.g. checks.database")
    expect_value: str | None = None
    timeout: Duration = Field(default=timedelta(seconds=2))


class Metric(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "[has(self.prometheus), has(self.cloudwatch), has(self.http)].filter(x, x).size() == 1",
                    "a metric has exactly one provider: prometheus, cloudwatch or http",
                )
            ]
        }
    )

    name: str = Field(min_length=1, max_length=63)
    prometheus: PrometheusQuery | None = None
    cloudwatch: CloudWatchMetricSource | None = None
    http: HttpCheck | None = None
    max: float | None = None
    min: float | None = None
    compare_with_stable: bool = False


class Analysis(Model):
    interval: Duration = Field(default=timedelta(seconds=10))
    failure_limit: int = Field(default=1, ge=0, le=100)
    min_samples: int = Field(default=3, ge=1, le=1000)
    consecutive_error_limit: int = Field(default=4, ge=1, le=100)
    metrics: list[Metric] = Field(default_factory=list, json_schema_extra={"maxItems": 20})


class DegradationAction(StrEnum):
    ROLLBACK = "Rollback"
    PAUSE = "Pause"


class DriftAction(StrEnum):
    REVERT = "Revert"
    REPORT = "Report"


class RollbackPolicy(Model):
    on_degradation: DegradationAction = DegradationAction.ROLLBACK
    on_drift: DriftAction = DriftAction.REVERT
    window: Duration = Field(default=timedelta(minutes=10))


class FlagRollout(Model):
    enabled: StrictBool
    rollout_percent: StrictInt = Field(default=100, ge=0, le=100)


# Strict: the API server cannot type these values, so 'yes' or 1 must not quietly become true here.
FlagValue = StrictBool | FlagRollout

# A flag is a boolean or an object: a union that a structural schema cannot type, and CEL cannot see
# into values it has no type for. The API server keeps the values as given; the controller validates
# them and reports a bad one with condition Ready=False, reason InvalidSpec, before any AWS change.
_FLAG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "maxProperties": 200,
    "description": "Flag name -> true/false, or {enabled: bool, rolloutPercent: 0..100}.",
    "additionalProperties": {"x-kubernetes-preserve-unknown-fields": True},
}


class ReleaseRef(Model):
    """Another Release, by namespace and name."""

    namespace: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")


class UpstreamRequirement(Model):
    """A Release that must have had this Release's versions Succeeded and live for `soak` first."""

    release: ReleaseRef
    soak: Duration = Field(
        default=timedelta(0),
        description="How long the upstream Release must have run the same backend (and frontend) version, "
        "Succeeded and live, before this Release starts rolling it out.",
    )


class Promotion(Model):
    requires: list[UpstreamRequirement] = Field(
        default_factory=list,
        description="Verified-upstream promotion: a rollout of a new backend (or frontend) version waits "
        "(Ready=False, reason AwaitingUpstream) until each named Release has had that version Succeeded "
        "and live for its soak. The operator needs get on Releases in those namespaces.",
        json_schema_extra={"maxItems": 10},
    )


class Moment(StrEnum):
    """What a notification is about (`spec.notifications[].on`)."""

    STARTED = "Started"
    STEP_COMPLETED = "StepCompleted"
    PAUSED = "Paused"
    AWAITING_APPROVAL = "AwaitingApproval"
    PROMOTED = "Promoted"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    STALLED = "Stalled"
    HOOK_FAILED = "HookFailed"
    DRIFT_REVERTED = "DriftReverted"


class SecretKeyRef(Model):
    """A key of a Secret in the Release's namespace."""

    name: str = Field(min_length=1, max_length=253)
    key: str = Field(min_length=1, max_length=253)


class WebhookSink(Model):
    url_secret_ref: SecretKeyRef = Field(description="The URL is a secret: it is read from this Secret key, never given here.")
    format: Literal["json", "slack", "teams"] = "json"


class EventBridgeSink(Model):
    event_bus_name: str = Field(default="default", min_length=1, max_length=1600)


class Notification(Model):
    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [
            cel("has(self.webhook) != has(self.eventBridge)", "a notification has exactly one of webhook or eventBridge"),
        ]}
    )

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    on: list[Moment] = Field(min_length=1, json_schema_extra={"maxItems": 10})
    webhook: WebhookSink | None = None
    event_bridge: EventBridgeSink | None = None


class HookFailure(StrEnum):
    ROLLBACK = "Rollback"
    PAUSE = "Pause"


class WebhookHook(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("has(self.url) != has(self.urlSecretRef)", "a webhook hook has exactly one of url or urlSecretRef"),
    ]})

    url: str | None = Field(default=None, pattern=r"^https?://", max_length=2048)
    url_secret_ref: SecretKeyRef | None = None
    timeout: Duration = Field(default=timedelta(minutes=5), description="Asked again with back-off until then; then the hook fails.")


class Hook(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("has(self.webhook)", "only webhook hooks are supported by this controller version (ecsTask is not yet)"),
    ]})

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    webhook: WebhookHook | None = None
    ecs_task: dict[str, Any] | None = Field(
        default=None, description="Not supported yet: a Release naming one is refused by the API server.",
        json_schema_extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    irreversible: bool = False
    on_failure: HookFailure = HookFailure.ROLLBACK


class Hooks(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("!has(self.preRollout) && !has(self.postPromotion) && !has(self.onRollback)",
            "only prePromotion hooks are supported by this controller version"),
    ]})

    pre_rollout: list[Hook] | None = None
    pre_promotion: list[Hook] = Field(default_factory=list, json_schema_extra={"maxItems": 10})
    post_promotion: list[Hook] | None = None
    on_rollback: list[Hook] | None = None


class ReleaseSpec(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(self.strategy.type in ['Canary', 'BlueGreen'] || (self.strategy.type == 'Auto'"
                    " && has(self.strategy.changeClass) && self.strategy.changeClass in ['api', 'infrastructure']))"
                    " || has(self.backend.traffic)",
                    "Canary and BlueGreen need backend.traffic (an ALB listener with two target groups)",
                    fieldPath=".backend.traffic",
                )
            ]
        }
    )

    environment: Environment
    backend: Backend
    frontend: Frontend | None = None
    strategy: Strategy = Field(default_factory=Strategy)
    analysis: Analysis = Field(default_factory=Analysis)
    feature_flags: dict[str, FlagValue] = Field(default_factory=dict, json_schema_extra=_FLAG_SCHEMA)
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy)
    paused: bool = False
    progress_deadline: Duration = Field(default=timedelta(minutes=10))
    promotion: Promotion = Field(default_factory=Promotion)
    notifications: list[Notification] = Field(default_factory=list, json_schema_extra={"maxItems": 10})
    hooks: Hooks = Field(default_factory=Hooks)


# --------------------------------------------------------------------------- status


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


class ConditionType(StrEnum):
    READY = "Ready"
    PROGRESSING = "Progressing"
    HEALTHY = "Healthy"
    COMPATIBLE = "Compatible"
    DRIFTED = "Drifted"


class Condition(Model):
    type: ConditionType
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: datetime


class BackendStatus(Model):
    stable_version: str | None = None
    stable_image: str | None = None
    canary_version: str | None = None
    canary_image: str | None = None
    canary_weight: int = Field(default=0, ge=0, le=100)
    stable_target_group_arn: str | None = Field(
        default=None,
        description="The target group the stable version serves from; roles alternate at each promotion. "
        "Unset means spec.backend.traffic.stableTargetGroupArn.",
    )


class FrontendStatus(Model):
    stable_version: str | None = None
    canary_version: str | None = None
    canary_weight: int = Field(default=0, ge=0, le=100)
    current_step: int | None = Field(
        default=None, ge=0,
        description="Step of the frontend canary (CloudFront continuous deployment) in progress; unset when none runs.",
    )
    step_started_at: datetime | None = Field(
        default=None,
        description="When the frontend canary's current (or last) step began; its pause timer. "
        "A status without it keeps that time in stepStartedAt.",
    )
    origin_requested: str | None = Field(
        default=None,
        description="Origin path a finished pass switched the distribution to (with its invalidation); unset once live.",
    )


class Verdict(StrEnum):
    PASSED = "Passed"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    NO_DATA = "NoData"


class Measurement(Model):
    metric: str
    value: float | None = None
    stable_value: float | None = None
    verdict: Verdict
    message: str = ""
    time: datetime


class AnalysisStatus(Model):
    verdict: Verdict | None = None
    message: str = ""
    started_at: datetime | None = None
    last_run_at: datetime | None = None
    failures: int = 0
    errors: int = 0
    samples: int = 0
    measurements: list[Measurement] = Field(default_factory=list, json_schema_extra={"maxItems": 100})


class HistoryEntry(Model):
    revision: int = Field(ge=1)
    backend_version: str
    backend_image: str | None = None
    frontend_version: str | None = None
    flags_hash: str | None = None
    strategy: str | None = None
    result: Literal["Succeeded", "RolledBack", "Failed", "Aborted", "Superseded"]
    message: str = ""
    started_at: datetime
    finished_at: datetime


class Acknowledged(Model):
    """The last user request (annotation value) of each kind that the controller acted on."""

    promote: str | None = None
    abort: str | None = None
    retry: str | None = None


class NotificationsStatus(Model):
    sent: list[str] = Field(
        default_factory=list,
        description="Keys (sink/revision/moment[/step]) of the notifications queued for this revision: each "
        "is sent once, also across an operator restart.",
        json_schema_extra={"maxItems": 200},
    )


class HookStatus(Model):
    point: str
    name: str
    revision: int
    started_at: datetime
    attempts: int = 0
    next_at: datetime | None = None
    passed_at: datetime | None = None
    message: str = ""


class ReleaseStatus(Model):
    phase: Phase = Phase.PENDING
    observed_generation: int | None = None
    message: str = ""
    revision: int = 0
    target_hash: str | None = Field(default=None, description="Hash of the spec the rollout in progress is for.")
    strategy: StrategyType | None = Field(default=None, description="The strategy resolved for this rollout.")
    current_step: int = 0
    step_count: int = 0
    step_started_at: datetime | None = None
    rollout_started_at: datetime | None = None
    promoted_at: datetime | None = None
    paused_at: datetime | None = Field(
        default=None, description="When spec.paused took hold; step timers resume from here on unpause."
    )
    backend: BackendStatus = Field(default_factory=BackendStatus)
    frontend: FrontendStatus = Field(default_factory=FrontendStatus)
    flags_hash: str | None = None
    rollback_flags: dict[str, Any] | None = Field(
        default=None,
        description="The flags document live before this rollout changed the flags: a rollback publishes it first.",
        json_schema_extra={"type": "object", "additionalProperties": {"x-kubernetes-preserve-unknown-fields": True}},
    )
    conditions: list[Condition] = Field(
        default_factory=list, description=CONDITION_REASONS_DOC, json_schema_extra={"maxItems": 10}
    )
    analysis: AnalysisStatus | None = None
    history: list[HistoryEntry] = Field(default_factory=list, json_schema_extra={"maxItems": 50})
    acknowledged: Acknowledged = Field(default_factory=Acknowledged)
    notifications: NotificationsStatus | None = None
    hooks: list[HookStatus] | None = Field(default=None, json_schema_extra={"maxItems": 20})

    @property
    def step_since(self) -> datetime | None:
        """When the step in progress began, whichever tier walks its steps (the later timer): the
        start of the window an analysis measures."""
        times = [t for t in (self.step_started_at, self.frontend.step_started_at) if t is not None]
        return max(times) if times else None


class Release(Model):
    """A whole object as read from the API server (metadata kept loosely typed)."""

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ReleaseSpec
    status: ReleaseStatus = Field(default_factory=ReleaseStatus)
