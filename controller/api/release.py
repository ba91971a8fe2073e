"""The Release custom resource as pydantic models: the single source of `crds/release.yaml`.

Everything here is data. Validation that can be said in a schema is said here (it becomes the
OpenAPI schema and CEL rules the API server enforces); behaviour lives in `planner/`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

import json
import re

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from controller.api.reasons import CONDITION_REASONS_DOC
from controller.api.types import (
    DURATION_HINT,
    DURATION_PATTERN,
    Duration,
    SemVer,
    VersionRange,
    format_duration,
    parse_duration,
)

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


# An image reference ends in a tag (after the last ':', with no '/' after it) or a digest.
_IMAGE_TAG = r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
_IMAGE_DIGEST = r"@sha256:[a-f0-9]{64}$"
IMAGE_TAG_HINT = ("has no tag or digest: write the version as its tag (repo:1.4.0) "
                  "or pin a digest (repo@sha256:...)")
IMAGE_LATEST_HINT = ("write the version as the tag (repo:1.4.0), not :latest: "
                     ":latest changes under a running release, and a rollback cannot find the old image by it")


def image_tag_mismatch(image: str, version: str) -> str:
    """The refusal of an image whose tag is not backend.version; the CEL rule builds the same text."""
    tag = image[image.rindex(":") + 1:]
    return (f"image tag {tag} is not backend.version {version}: write the image as ...:{version}, "
            "or set backend.imageTagIsVersion: false if this tag does not name the version")


def _check_image(value: str) -> str:
    if value.endswith(":latest"):
        raise ValueError(IMAGE_LATEST_HINT)
    if not (re.search(_IMAGE_DIGEST, value) or re.search(_IMAGE_TAG, value)):
        raise ValueError(f"'{value}' {IMAGE_TAG_HINT}")
    return value


class Backend(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    # A version with a leading v has its own hint (on backend.version); one message is enough.
                    "rule": "(has(self.imageTagIsVersion) && !self.imageTagIsVersion) || self.image.contains('@')"
                            " || self.version.startsWith('v') || self.version.startsWith('V')"
                            f" || !self.image.matches(r'{_IMAGE_TAG}') || self.image.endsWith(':' + self.version)",
                    "messageExpression": "'image tag ' + self.image.substring(self.image.lastIndexOf(':') + 1)"
                                         " + ' is not backend.version ' + self.version + ': write the image as ...:'"
                                         " + self.version + ', or set backend.imageTagIsVersion: false if this tag"
                                         " does not name the version'",
                    "fieldPath": ".image",
                }
            ]
        }
    )

    version: SemVer
    image: str = Field(
        min_length=1, max_length=1024,
        json_schema_extra={"x-kubernetes-validations": [
            cel("!self.endsWith(':latest')", IMAGE_LATEST_HINT),
            {"rule": f"self.endsWith(':latest') || self.matches(r'{_IMAGE_DIGEST}') || self.matches(r'{_IMAGE_TAG}')",
             "messageExpression": f"\"'\" + self + \"' {IMAGE_TAG_HINT}\""},
        ]},
    )
    image_tag_is_version: bool = Field(
        default=True,
        description="The image tag is backend.version, and the API server checks that they agree. Set false "
        "for an image tagged otherwise (a commit hash, a build number): the tags are then not compared. The "
        "version the status reports as serving is read from the running image's tag, so frontend.requiresBackend "
        "cannot be judged then and is refused with it.",
    )
    ecs: EcsTarget
    traffic: Traffic | None = None

    @field_validator("image")
    @classmethod
    def _image_pinned(cls, value: str) -> str:
        return _check_image(value)

    @model_validator(mode="after")
    def _tag_is_version(self) -> Backend:
        if (self.image_tag_is_version and "@" not in self.image and re.search(_IMAGE_TAG, self.image)
                and not self.image.endswith(f":{self.version}")):
            raise ValueError(image_tag_mismatch(self.image, self.version))
        return self


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


CANARY_EMPTY_HINT = ("is empty: write at least one step, e.g. [{setWeight: 20}, {pause: {duration: 1m}}], "
                     "or leave steps out for the default plan (10%, pause 30s, 50%, pause 30s)")
FRONTEND_CANARY_EMPTY_HINT = ("is empty: write at least one step, e.g. [{setWeight: 5}, {pause: {duration: 5m}}], "
                              "or leave frontend.canary out for an atomic switch")
ROLLING_EMPTY_HINT = "is empty: write at least one percentage, e.g. [50, 100], or leave steps out for [25, 50, 75, 100]"


def _not_empty(hint: str) -> Any:
    """A field validator refusing an explicit empty list with `hint` (the CEL rule's message)."""

    def check(value: list[Any]) -> list[Any]:
        if not value:
            raise ValueError(f"steps {hint}")
        return value

    return check


def _steps_never_decrease(max_weight: int, empty_hint: str) -> dict[str, Any]:
    return {
        "maxItems": 50,
        "x-kubernetes-validations": [
            cel("self.size() > 0", f"steps {empty_hint}"),
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
    steps: list[CanaryStep] = Field(default_factory=list,
                                    json_schema_extra=_steps_never_decrease(100, CANARY_EMPTY_HINT))

    _steps_given = field_validator("steps")(_not_empty(CANARY_EMPTY_HINT))


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
            "x-kubernetes-validations": [cel("self.size() > 0", f"steps {ROLLING_EMPTY_HINT}"),
                                         cel("self.isSorted()", "rolling steps must not decrease")],
        },
    )

    _steps_given = field_validator("steps")(_not_empty(ROLLING_EMPTY_HINT))
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
    invalidate_paths: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=lambda: ["/index.html", "/", "/flags.json"], json_schema_extra={"maxItems": 50}
    )


class FrontendCanary(Model):
    steps: list[CanaryStep] = Field(default_factory=list,
                                    json_schema_extra=_steps_never_decrease(15, FRONTEND_CANARY_EMPTY_HINT))

    _steps_given = field_validator("steps")(_not_empty(FRONTEND_CANARY_EMPTY_HINT))


class ApiOperation(Model):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    path: str = Field(min_length=1, max_length=1024)
    fields: list[Annotated[str, Field(max_length=255)]] = Field(
        default_factory=list, description="Response fields the frontend reads.", json_schema_extra={"maxItems": 200})


class ApiContract(Model):
    operations: list[ApiOperation] = Field(default_factory=list, json_schema_extra={"maxItems": 500})
    config_map: str | None = Field(default=None, max_length=253,
                                   description="A ConfigMap whose `contract.yaml` holds operations.")
    openapi_url: str | None = Field(default=None, max_length=2048,
                                    description="Where the backend serves its OpenAPI document.")


class Frontend(Model):
    version: SemVer
    cloudfront: CloudFrontTarget
    requires_backend: VersionRange | None = None
    canary: FrontendCanary | None = None
    api_contract: ApiContract | None = None


class PrometheusAuthType(StrEnum):
    BASIC = "Basic"
    BEARER = "Bearer"


class PrometheusSecretRef(Model):
    name: str = Field(min_length=1, max_length=253, description="A Secret in the Release's namespace.")


class PrometheusAuth(Model):
    """Credentials for Prometheus, from a Secret: never in the address, never logged."""

    type: PrometheusAuthType = Field(
        default=PrometheusAuthType.BASIC,
        description="Basic: the Secret's keys `username` and `password`; Bearer: its key `token` "
        "(Authorization: Bearer).")
    secret_ref: PrometheusSecretRef = Field(description="The Secret holding the credentials.")


class PrometheusQuery(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("!has(self.auth) || !self.address.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*@')",
            "prometheus.address: put the credentials in the Secret of prometheus.auth, not in the address"),
    ]})

    address: str = Field(min_length=1, max_length=2048)
    auth: PrometheusAuth | None = Field(
        default=None, description="Credentials from a Secret (basic or bearer); credentials written in the "
        "address still work but are redacted from every message and log line.")
    query: str = Field(min_length=1, max_length=8192)
    traffic_query: str | None = Field(
        default=None, max_length=8192,
        description="A query giving the number of requests the version served in the window (e.g. "
        'sum(increase(http_requests_total{version="{{version}}"}[1m]))); with the metric\'s minRequests, the '
        "metric is judged only once the canary served that many. Asked of the same address.",
    )


class CloudWatchDimension(Model):
    # CloudWatch's own limits (255 and 1024 characters).
    name: str = Field(max_length=255)
    value: str = Field(max_length=1024)


class CloudWatchMetric(Model):
    namespace: str = Field(max_length=255)
    metric_name: str = Field(max_length=255)
    dimensions: list[CloudWatchDimension] = Field(default_factory=list, json_schema_extra={"maxItems": 30})


class CloudWatchMetricStat(Model):
    metric: CloudWatchMetric
    period: int = Field(default=60, ge=1)
    stat: str = Field(default="Average", max_length=64)


class CloudWatchQuery(Model):
    id: str = Field(pattern=r"^[a-z][a-zA-Z0-9_]*$", max_length=255)
    expression: str | None = Field(default=None, max_length=2048)  # GetMetricData's limit
    metric_stat: CloudWatchMetricStat | None = None
    return_data: bool | None = None


class CloudWatchMetricSource(Model):
    metric_data_queries: list[CloudWatchQuery] = Field(min_length=1, json_schema_extra={"maxItems": 20})
    lookback: Duration = Field(default=timedelta(minutes=5))


class HttpCheck(Model):
    url: str = Field(min_length=1, max_length=2048)
    expect_status: int = Field(default=200, ge=100, le=599)
    json_path: str | None = Field(default=None, max_length=256,
                                  description="Dotted path into the JSON body, e.g. checks.database")
    expect_value: str | None = Field(default=None, max_length=1024)
    timeout: Duration = Field(default=timedelta(seconds=2))


NO_DATA_LIMIT = 4
"""Default of `metric.noDataLimit`: with the default 10s interval and failureLimit 1, a canary that is
never measured is rolled back after about a minute (4 tolerated, then 2 failed measurements)."""


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
    no_data_limit: int = Field(
        default=NO_DATA_LIMIT, ge=0, le=100,
        description="Consecutive measurements without an answer about the canary tolerated before each further "
        "one counts as a failed measurement (towards analysis.failureLimit): no data while the canary receives "
        "traffic, or an http probe of the canary that timed out or was refused. As Argo Rollouts' "
        "consecutiveErrorLimit and Flagger's threshold: a canary that is not measured is not verified. "
        "No data while the canary gets no traffic (a blue-green preview) is not counted: it holds, "
        "bounded by progressDeadline.",
    )
    min_requests: int = Field(
        default=0, ge=0, le=1_000_000_000,
        description="Judge this metric only once the canary served this many requests in the window, as "
        "prometheus.trafficQuery counts them; below it the measurement is Inconclusive (too little traffic), "
        "which holds the rollout, bounded by progressDeadline. 0: no guard.",
    )
    dry_run: bool = Field(
        default=False,
        description="Measured and shown in status.analysis, never deciding: a dry-run metric neither fails, "
        "holds nor passes a rollout.",
    )


class Analysis(Model):
    interval: Duration = Field(default=timedelta(seconds=10))
    failure_limit: int = Field(default=1, ge=0, le=100)
    min_samples: int = Field(default=3, ge=1, le=1000)
    consecutive_error_limit: int = Field(
        default=4, ge=1, le=100,
        description="Consecutive runs in which a metric's provider could not be asked (Prometheus or CloudWatch "
        "down) before the analysis is held as 'provider down' (a Warning Event names the metric). A hold never "
        "passes a step; it ends when the provider answers, or at progressDeadline from the last progress: "
        "rolled back, or paused for a person with rollback.onDegradation: Pause.",
    )
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
    # No other keys, and only the wire name: the API server keeps flag values as given (its policy
    # refuses any other key too), and a misspelt `rolloutPercnt: 10` must not quietly mean 100%.
    model_config = ConfigDict(extra="forbid", populate_by_name=False)  # merged with Model's

    enabled: StrictBool
    rollout_percent: StrictInt = Field(default=100, ge=0, le=100)


# Strict: the API server cannot type these values, so 'yes' or 1 must not quietly become true here.
FlagValue = StrictBool | FlagRollout

# A flag is a boolean or an object: a union that a structural schema cannot type, and CEL cannot see
# into values it has no type for. The CRD keeps the values as given; a ValidatingAdmissionPolicy
# (manifests/admission/release-flags-policy.yaml, shipped by every overlay and the chart) refuses at
# the API server what the models refuse here, with the same words and byte count; where it is not
# installed the controller reports a bad spec with Ready=False, reason InvalidSpec, before any AWS change.
_FLAG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "maxProperties": 200,
    "description": "Flag name -> true/false, or {enabled: bool, rolloutPercent: 0..100}.",
    "additionalProperties": {"x-kubernetes-preserve-unknown-fields": True},
}
# The flags' values are free-form to the schema (a bool or an object): CEL cannot type them, neither
# on the map nor from the spec (the field is left out of the spec's CEL type), so the CRD bounds only
# their number; names, values and the document's size are the policy's (and the models') to bound.


PROGRESS_DEADLINE_HINT = ("must be more than 0s: write how long a rollout may go without progress "
                          "before it fails, e.g. 10m")
# progressDeadline's own schema: no `pattern` (whose message is the expression), CEL rules instead.
DeadlineDuration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "maxLength": 64, "x-kubernetes-validations": [
        {"rule": f"self.startsWith('-') || self.matches(r'{DURATION_PATTERN}')",
         "messageExpression": f"\"'\" + self + \"' {DURATION_HINT}\""},
        cel(f"!self.startsWith('-') && (!self.matches(r'{DURATION_PATTERN}') || duration(self) > duration('0s'))",
            PROGRESS_DEADLINE_HINT),
    ]}),
]
REQUIRES_TAG_HINT = ("is judged on the version the running image's tag names: with backend.imageTagIsVersion: false "
                     "there is none; tag the image with the version, or leave requiresBackend out")
# SSM's parameter value limits; controller/aws/flags.py publishes over 4 KB in the Advanced tier.
SSM_STANDARD_LIMIT = 4096
SSM_ADVANCED_LIMIT = 8192


FLAG_NAME_LIMIT = 128  # characters; manifests/admission/release-flags-policy.yaml says the same
FLAG_NAME_TOO_LONG = f"a feature flag name has at most {FLAG_NAME_LIMIT} characters"
FLAG_VALUE_HINT = "a flag is true, false or {enabled: true|false, rolloutPercent: 0..100}, with no other keys"


def flags_document_size(flags: dict[str, Any]) -> int:
    """Bytes of the flags document as controller/aws/flags.py publishes it (sorted, no spaces)."""
    doc = {k: v if isinstance(v, bool) else v.model_dump(mode="json", by_alias=True) for k, v in flags.items()}
    return len(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def flags_too_large(size: int) -> str:
    return (f"the flags document is {size} bytes, over SSM's limit of {SSM_ADVANCED_LIMIT} bytes for a parameter "
            f"(Advanced tier; {SSM_STANDARD_LIMIT} in Standard): write fewer flags or shorter names")


class GitOpsOnRollback(StrEnum):
    COMMIT = "Commit"
    BRANCH = "Branch"
    NONE = "None"


class SecretRef(Model):
    name: str = Field(min_length=1, max_length=253)


class GitOps(Model):
    """Where this Release comes from in Git, so that a rollback can be written back there."""

    repository: str = Field(
        min_length=1, max_length=2048, pattern=r"^(https?://|ssh://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:).+$",
        description="Clone URL: https://host/path.git, ssh://git@host/path.git or git@host:path.git.",
    )
    branch: str = Field(default="main", min_length=1, max_length=255, pattern=r"^[^\s~^:?*\[\\]+$")
    path: str = Field(
        min_length=1, max_length=4096, pattern=r"^[^/].*$",
        description="The file in the repository that holds this Release, relative to its root.",
    )
    secret_ref: SecretRef | None = Field(
        default=None,
        description="A Secret in the Release's namespace with `username` + `password` (a token), or `identity` (an SSH key).",
    )
    on_rollback: GitOpsOnRollback = Field(
        default=GitOpsOnRollback.COMMIT,
        description="Commit: push the revert to the branch; Branch: push it to a new branch (for a pull request); None: write nothing.",
    )


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


# Bounds of an ecsTask hook's overrides. RunTask allows 8192 characters of overrides JSON in all:
# 20 x 200 (command) + 10 x (64 + 256) (environment) + the JSON around them stays under it.
TASK_COMMAND_ITEMS = 20
TASK_COMMAND_ITEM_CHARS = 200
TASK_ENV_ENTRIES = 10
TASK_ENV_NAME_CHARS = 64
TASK_ENV_VALUE_CHARS = 256
HOOK_KIND_HINT = "a hook has exactly one of webhook or ecsTask"
TASK_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
TASK_ENV_NAME_HINT = (f"environment names are letters, digits and _ (not starting with a digit), "
                      f"at most {TASK_ENV_NAME_CHARS} characters")


def _task_env_name_ok(name: str) -> bool:
    return 0 < len(name) <= TASK_ENV_NAME_CHARS and re.match(TASK_ENV_NAME, name) is not None


def _task_env_schema(schema: dict[str, Any]) -> None:
    # A structural schema has no patternProperties or propertyNames, and a CEL rule over the names
    # (strings of unbounded length, in four hook lists) costs more than the API server's budget: the
    # names are checked by the model (InvalidSpec, before any AWS change), the rest by the schema.
    schema.clear()
    schema.update({
        "type": "object", "maxProperties": TASK_ENV_ENTRIES,
        "additionalProperties": {"type": "string", "maxLength": TASK_ENV_VALUE_CHARS},
        "description": "Extra environment of the container (plain values: a secret belongs in the task "
                       f"definition's secrets, never in a Release); {TASK_ENV_NAME_HINT}.",
    })


class EcsTaskHook(Model):
    """A one-off ECS task (RunTask) of the rollout's new backend image, with this command."""

    command: list[Annotated[str, Field(min_length=1, max_length=TASK_COMMAND_ITEM_CHARS)]] = Field(
        min_length=1, max_length=TASK_COMMAND_ITEMS,
        description="The container's command override, e.g. [alembic, upgrade, head]. Exit code 0 passes.")
    container_name: str | None = Field(
        default=None, min_length=1, max_length=255,
        description="The container to run it in; by default backend.ecs.containerName.")
    timeout: Duration = Field(default=timedelta(minutes=10),
                              description="The task must have stopped with exit code 0 by then; else the hook fails.")
    environment: dict[str, Annotated[str, Field(max_length=TASK_ENV_VALUE_CHARS)]] = Field(
        default_factory=dict, max_length=TASK_ENV_ENTRIES, json_schema_extra=_task_env_schema)

    @field_validator("environment")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        if not all(_task_env_name_ok(k) for k in value):
            raise ValueError(TASK_ENV_NAME_HINT)
        return value


class Hook(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("has(self.webhook) != has(self.ecsTask)", HOOK_KIND_HINT),
    ]})

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    webhook: WebhookHook | None = None
    ecs_task: EcsTaskHook | None = None
    irreversible: bool = False
    on_failure: HookFailure = HookFailure.ROLLBACK

    @model_validator(mode="after")
    def _one_kind(self) -> "Hook":
        if (self.webhook is None) == (self.ecs_task is None):
            raise ValueError(HOOK_KIND_HINT)
        return self


_HOOK_LIST: dict[str, Any] = {"maxItems": 10, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
"""Each point's hooks: at most 10, run in order, names unique within the point (the API server keeps them so)."""


class Hooks(Model):
    pre_rollout: list[Hook] = Field(
        default_factory=list, json_schema_extra=_HOOK_LIST,
        description="After the rollout starts, before the new version's first task set is created: a migration runs "
                    "before new code serves. A failure rolls back (the canary never gets weight) or pauses.")
    pre_promotion: list[Hook] = Field(
        default_factory=list, json_schema_extra=_HOOK_LIST,
        description="After the steps, before full traffic: approvals and external checks. A failure rolls back or pauses.")
    post_promotion: list[Hook] = Field(
        default_factory=list, json_schema_extra=_HOOK_LIST,
        description="After the backend is promoted and the rollout Succeeded. A failure is reported, nothing rolls back.")
    on_rollback: list[Hook] = Field(
        default_factory=list, json_schema_extra=_HOOK_LIST,
        description="After a rollback happened (analysis, abort, deadline, a failed hook). A failure is reported.")


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
                ),
                cel("!has(self.frontend) || !has(self.frontend.requiresBackend) || !has(self.backend.imageTagIsVersion)"
                    " || self.backend.imageTagIsVersion", REQUIRES_TAG_HINT, fieldPath=".frontend.requiresBackend"),
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
    progress_deadline: DeadlineDuration = Field(default=timedelta(minutes=10))
    gitops: GitOps | None = None
    promotion: Promotion = Field(default_factory=Promotion)
    notifications: list[Notification] = Field(default_factory=list, json_schema_extra={"maxItems": 10})
    hooks: Hooks = Field(default_factory=Hooks)

    @field_validator("progress_deadline")
    @classmethod
    def _deadline_positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(PROGRESS_DEADLINE_HINT)
        return value

    @model_validator(mode="after")
    def _requires_backend_needs_tag(self) -> ReleaseSpec:
        if self.frontend is not None and self.frontend.requires_backend and not self.backend.image_tag_is_version:
            raise ValueError(f"frontend.requiresBackend: {REQUIRES_TAG_HINT}")
        return self

    @field_validator("progress_deadline", mode="before")
    @classmethod
    def _deadline_not_negative(cls, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("-"):
            raise ValueError(PROGRESS_DEADLINE_HINT)
        return value

    @field_validator("feature_flags")
    @classmethod
    def _flags_fit_ssm(cls, value: dict[str, Any]) -> dict[str, Any]:
        long = next((k for k in value if len(k) > FLAG_NAME_LIMIT), None)
        if long is not None:
            raise ValueError(f"{FLAG_NAME_TOO_LONG} ({long[:20]}... has {len(long)})")
        size = flags_document_size(value)
        if size > SSM_ADVANCED_LIMIT:
            raise ValueError(flags_too_large(size))
        return value


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
    RECONCILING = "Reconciling"  # kstatus: True while the controller is still working towards the spec
    STALLED = "Stalled"  # kstatus: True when the spec will not be reached without a change


class Condition(Model):
    type: ConditionType
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: datetime
    # The spec generation this condition was written for (kstatus, Kubernetes API conventions).
    observed_generation: int | None = Field(default=None, ge=0)


class ServingVersion(Model):
    """One version receiving traffic, as AWS reported it at the last observation."""

    version: str = Field(max_length=256)
    weight: int = Field(ge=0, le=100, description="Percent of the traffic it receives (listener weights, split by "
                        "task set scale within a target group).")


class BackendStatus(Model):
    serving: list[ServingVersion] = Field(
        default_factory=list, json_schema_extra={"maxItems": 10},
        description="Every backend version receiving traffic and its weight, as AWS reported them at the last "
        "pass, whatever the spec or the rollout say (paused, superseded, rolled back included).",
    )
    traffic: str = Field(default="", max_length=1024,
                         description="The same in one word (`1.0.0=80%,2.0.0=20%`), for the printer column.")
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


class MeasurementError(StrEnum):
    """Why a measurement has no judged value: who did not answer."""

    PROVIDER = "Provider"  # the metric source (Prometheus, CloudWatch) could not be asked: monitoring's fault
    QUERY = "Query"  # the source answered that the query is wrong (parse error, several series): the spec's fault
    NO_ANSWER = "NoAnswer"  # a probe of the canary itself timed out or was refused: the canary's fault
    LOW_TRAFFIC = "LowTraffic"  # the canary served fewer requests than the metric's minRequests: not judged yet


class Measurement(Model):
    metric: str
    value: float | None = None
    stable_value: float | None = None
    verdict: Verdict
    message: str = ""
    time: datetime
    error: MeasurementError | None = Field(
        default=None, description="Who did not answer, when the measurement has no judged value.")
    dry_run: bool | None = Field(default=None, description="True: a dryRun metric, shown but never deciding.")


class AnalysisStatus(Model):
    verdict: Verdict | None = None
    message: str = ""
    started_at: datetime | None = None
    last_run_at: datetime | None = None
    failures: int = 0
    errors: int = 0
    samples: int = 0
    unanswered: dict[str, int] = Field(
        default_factory=dict,
        description="Per metric, consecutive measurements without an answer about the canary (see noDataLimit).",
        json_schema_extra={"maxProperties": 20},
    )
    last_sample_at: datetime | None = Field(
        default=None, description="The last run in which every deciding metric was judged: the analysis's last progress.")
    unjudged: int = Field(default=0, ge=0, description="Consecutive runs without every deciding metric judged.")
    held_since: datetime | None = Field(
        default=None, description="When the analysis stopped getting answers it can judge (provider down, no data "
        "without traffic, too little traffic); bounded by progressDeadline from the last progress.")
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
    revert_commit: str | None = Field(
        default=None,
        description="The commit that wrote this rollback back to Git (spec.gitops); empty when Git already named the live versions.",
    )


class Acknowledged(Model):
    """The last user request (annotation value) of each kind that the controller acted on."""

    promote: str | None = None
    abort: str | None = None
    retry: str | None = None


class PendingNotification(Model):
    """A notification a pass planned that no sink has accepted yet (kept until one does, or it expires)."""

    key: str = Field(min_length=1, max_length=300, description="sink/revision/moment[/step]")
    at: datetime = Field(description="When the pass that planned it decided.")
    document: dict[str, Any] = Field(
        default_factory=dict,
        description="The json document to send, as planned (its `id` is the receivers' dedupe key).",
        json_schema_extra={"type": "object", "additionalProperties": {"x-kubernetes-preserve-unknown-fields": True}},
    )


class NotificationsStatus(Model):
    sent: list[str] = Field(
        default_factory=list,
        description="Keys (sink/revision/moment[/step]) of the notifications a sink accepted (or that "
        "expired): none is planned again, also across an operator restart.",
        json_schema_extra={"maxItems": 200},
    )
    pending: list[PendingNotification] = Field(
        default_factory=list,
        description="Notifications planned and not yet accepted by their sink: queued again after an "
        "operator restart, dropped (Warning Event NotificationExpired) an hour after they were planned.",
        json_schema_extra={"maxItems": 50},
    )


class HookStatus(Model):
    point: str
    name: str
    revision: int
    started_at: datetime
    attempts: int = 0
    next_at: datetime | None = None
    passed_at: datetime | None = None
    failed_at: datetime | None = None
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
    hooks: list[HookStatus] | None = Field(default=None, json_schema_extra={"maxItems": 40})

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
