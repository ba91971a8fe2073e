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
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_serializer,
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


HTTP_URL_PATTERN = r"^https?://[^/?#]+"
"""Every URL the operator fetches or posts to: http or https with a host, refused otherwise at the
API server (no file paths, no other schemes)."""


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
        # A string under a field is its description in the CRD (`kubectl explain`, docs/reference.md).
        use_attribute_docstrings=True,
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


class EcsMode(StrEnum):
    """Who runs a Canary or BlueGreen: ECS itself (Native) or the controller's task sets (TaskSets)."""

    NATIVE = "Native"
    TASK_SETS = "TaskSets"


class EcsTarget(Model):
    """The ECS service the backend runs in (deployment controller EXTERNAL: the operator manages its task sets)."""

    cluster: str = Field(min_length=1, max_length=255)
    """Name or ARN of the ECS cluster."""
    service: str = Field(min_length=1, max_length=255)
    """Name or ARN of the ECS service (created with deploymentController EXTERNAL)."""
    container_name: str = Field(min_length=1, max_length=255)
    """The container in the task definition whose image the release changes."""
    mode: EcsMode | None = None
    """How a Canary or BlueGreen reaches the service. Native: ECS runs it (UpdateService with a CANARY,
    LINEAR or BLUE_GREEN deploymentConfiguration; the ECS deployment controller and ECS's routing in
    loadBalancers[].advancedConfiguration), paused at lifecycle hooks the controller answers after its
    analysis and gates. TaskSets: the controller's own task sets and listener weights (the EXTERNAL
    controller). Unset: what the service's deployment controller is (ECS with that routing: Native)."""


class Traffic(Model):
    """An ALB listener whose default action forwards to two target groups."""

    listener_arn: str = Field(min_length=1, max_length=2048)
    """ARN of the ALB listener whose default action forwards to the two target groups."""
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


SINGLE_SERVICE = "backend"  # the name of the one service of a single-service backend
MAX_SERVICES = 10
SERVICE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # a DNS label: it names claims and task sets


class BackendService(Model):
    """One ECS service of the backend tier (`backend.services[]`, issue many-services)."""

    name: str = Field(min_length=1, max_length=63, pattern=SERVICE_NAME_PATTERN,
                      description="The service's name in the tier (a DNS label): what `after` and the status name.")
    after: list[Annotated[str, Field(max_length=63)]] = Field(
        default_factory=list, max_length=MAX_SERVICES,
        description="Services this one follows: it takes each step once all of them have taken it.")
    image: str = Field(min_length=1, max_length=1024, json_schema_extra={"x-kubernetes-validations": [
        cel("!self.endsWith(':latest')", IMAGE_LATEST_HINT),
        {"rule": f"self.endsWith(':latest') || self.matches(r'{_IMAGE_DIGEST}') || self.matches(r'{_IMAGE_TAG}')",
         "messageExpression": f"\"'\" + self + \"' {IMAGE_TAG_HINT}\""},
    ]}, description="The image this service runs, normally ending in `:<version>` (the tier's).")
    ecs: EcsTarget = Field(description="Where this service runs on ECS.")
    traffic: Traffic | None = Field(
        default=None, description="Without traffic, the service is a worker: its canary is a share of its tasks.")

    @field_validator("image")
    @classmethod
    def _image_pinned(cls, value: str) -> str:
        return _check_image(value)


def service_waves(services: tuple[BackendService, ...]) -> tuple[tuple[str, ...], ...]:
    """The services in waves: a wave's services come after services of earlier waves only.

    Worked example, api, mcp after api, worker after api: `(("api",), ("mcp", "worker"))`. Within a
    wave, the order written. A cycle is refused (ValueError).
    """
    placed: dict[str, int] = {}
    waves: list[list[str]] = []
    remaining = list(services)
    while remaining:
        ready = [s for s in remaining if all(a in placed for a in s.after)]
        if not ready:
            cycle = ", ".join(s.name for s in remaining)
            raise ValueError(f"backend.services: {cycle} come after each other (a cycle in after)")
        for s in ready:
            wave = max((placed[a] + 1 for a in s.after), default=0)
            placed[s.name] = wave
            while len(waves) <= wave:
                waves.append([])
        for s in services:  # the order written, within each wave
            if s in ready:
                waves[placed[s.name]].append(s.name)
        remaining = [s for s in remaining if s not in ready]
    return tuple(tuple(w) for w in waves)


def check_services(services: tuple[BackendService, ...], version: str, image_tag_is_version: bool) -> None:
    """The refusals of an inconsistent tier, each saying what to write (ValueError): duplicate names,
    `after` naming itself or an unknown service, a cycle, an image tag that is not the version, two
    services on one ECS service, one listener or one target group."""
    names = [s.name for s in services]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"backend.services: the name {', '.join(duplicates)} is used twice")
    for s in services:
        if s.name in s.after:
            raise ValueError(f"backend.services[{s.name}].after names the service itself")
        unknown = [a for a in s.after if a not in names]
        if unknown:
            raise ValueError(f"backend.services[{s.name}].after names {', '.join(unknown)}, which is not a "
                             f"service of this Release (services: {', '.join(names)})")
    service_waves(services)  # raises on a cycle
    if image_tag_is_version:
        for s in services:
            if "@" not in s.image and re.search(_IMAGE_TAG, s.image) and not s.image.endswith(f":{version}"):
                raise ValueError(f"backend.services[{s.name}]: {image_tag_mismatch(s.image, version)}")
    _unshared("ECS service", {s.name: [f"{s.ecs.cluster}/{s.ecs.service}"] for s in services})
    _unshared("listener", {s.name: [s.traffic.listener_arn] for s in services if s.traffic},
              "each service's canary moves its listener's default action")
    _unshared("target group", {s.name: [s.traffic.stable_target_group_arn, s.traffic.canary_target_group_arn]
                               for s in services if s.traffic})


def _unshared(what: str, used: dict[str, list[str]], why: str = "") -> None:
    owner: dict[str, str] = {}
    for name, resources in used.items():
        for resource in resources:
            if resource in owner and owner[resource] != name:
                because = f": {why}" if why else ""
                raise ValueError(f"backend.services {owner[resource]} and {name} share the {what} {resource}{because}")
            owner[resource] = name


def _first_service_fields(data: Any) -> Any:
    """`backend: {version, services}` as the planner reads it before everything reads `services`:
    `image`, `ecs` and `traffic` are the first service's (written order), so a reader of one service
    sees the head of the tier. Both forms at once are refused, saying what to write."""
    if not isinstance(data, dict) or data.get("services") is None:
        return data
    given = [f for f in ("image", "ecs", "traffic") if data.get(f) is not None]
    if given:
        raise ValueError(f"backend.services names each service's image, ecs and traffic: leave "
                         f"backend.{', backend.'.join(given)} out, or write one service without services")
    services = data["services"]
    if not isinstance(services, (list, tuple)) or not services:
        raise ValueError("backend.services needs at least one service")
    first = services[0]
    fields = ("image", "ecs", "traffic")
    if isinstance(first, BaseModel):
        return {**data, **{f: getattr(first, f) for f in fields}}
    if not isinstance(first, dict):
        return data  # pydantic says what is wrong with it
    return {**data, **{f: first.get(f) for f in fields}}


BACKEND_FORM_HINT = ("backend names one service (image and ecs, optional traffic) or several (services), "
                     "not both: move image, ecs and traffic into services[], or remove services")
BACKEND_IMAGE_REQUIRED = "Required value: backend.image (one service), or backend.services (several)"
BACKEND_ECS_REQUIRED = "Required value: backend.ecs (one service), or backend.services (several)"
SERVICE_NAMES_HINT = "backend.services: each service has a name of its own"
SERVICE_AFTER_HINT = "backend.services[].after names other services of this Release (not the service itself)"
SERVICE_TAGS_HINT = ("backend.services: each image's tag is backend.version: write the images as ...:<version>, "
                     "or set backend.imageTagIsVersion: false if the tags do not name the version")
SERVICE_ECS_HINT = "backend.services: two services name one ECS service: each service is released once"
SERVICE_LISTENER_HINT = ("backend.services: two services name one listener: each service's canary moves its "
                         "listener's default action, so each needs a listener of its own (another port of the ALB)")


# The image's tag is backend.version (one service). A version with a leading v has its own hint (on
# backend.version); one message is enough.
_TAG_RULE = {
    "rule": "!has(self.image) || (has(self.imageTagIsVersion) && !self.imageTagIsVersion)"
            " || self.image.contains('@') || self.version.startsWith('v') || self.version.startsWith('V')"
            f" || !self.image.matches(r'{_IMAGE_TAG}') || self.image.endsWith(':' + self.version)",
    "messageExpression": "'image tag ' + self.image.substring(self.image.lastIndexOf(':') + 1)"
                         " + ' is not backend.version ' + self.version + ': write the image as ...:'"
                         " + self.version + ', or set backend.imageTagIsVersion: false if this tag"
                         " does not name the version'",
    "fieldPath": ".image",
}


def _backend_schema(schema: dict[str, Any]) -> None:
    """The CRD's view of `Backend`: `image` and `ecs` are required unless `services` is given (the
    pydantic model fills them from the first service, `_first_service_fields`), and the rules of a
    tier of several that a schema can say; a cycle in `after` and shared target groups are refused
    by the model (the reconciler's InvalidSpec)."""
    schema["required"] = [r for r in schema.get("required", []) if r not in ("image", "ecs")]
    several = "!has(self.services) || "
    schema["x-kubernetes-validations"] = [dict(_TAG_RULE), *schema.get("x-kubernetes-validations", [])]
    schema["x-kubernetes-validations"].extend([
        cel("!has(self.services) || !has(self.image) && !has(self.ecs) && !has(self.traffic)", BACKEND_FORM_HINT),
        cel("has(self.services) || has(self.image)", BACKEND_IMAGE_REQUIRED, fieldPath=".image"),
        cel("has(self.services) || has(self.ecs)", BACKEND_ECS_REQUIRED, fieldPath=".ecs"),
        cel(several + "self.services.all(s, self.services.exists_one(t, t.name == s.name))", SERVICE_NAMES_HINT),
        cel(several + "self.services.all(s, !has(s.after) || s.after.all(a, a != s.name"
            " && self.services.exists(t, t.name == a)))", SERVICE_AFTER_HINT),
        cel(several + "(has(self.imageTagIsVersion) && !self.imageTagIsVersion) || self.version.startsWith('v')"
            " || self.version.startsWith('V') || self.services.all(s, s.image.contains('@')"
            f" || !s.image.matches(r'{_IMAGE_TAG}') || s.image.endsWith(':' + self.version))", SERVICE_TAGS_HINT),
        cel(several + "self.services.all(s, self.services.exists_one(t, t.ecs.cluster == s.ecs.cluster"
            " && t.ecs.service == s.ecs.service))", SERVICE_ECS_HINT),
        cel(several + "self.services.all(s, !has(s.traffic) || self.services.exists_one(t, has(t.traffic)"
            " && t.traffic.listenerArn == s.traffic.listenerArn))", SERVICE_LISTENER_HINT),
    ])


class Backend(Model):
    """The backend: one container image released on ECS behind an ALB, or several services
    released as one tier (`services`)."""

    model_config = ConfigDict(json_schema_extra=_backend_schema)

    version: SemVer
    """The backend version to release (semantic version, no leading v)."""
    image: str = Field(
        min_length=1, max_length=1024,
        json_schema_extra={"x-kubernetes-validations": [
            cel("!self.endsWith(':latest')", IMAGE_LATEST_HINT),
            {"rule": f"self.endsWith(':latest') || self.matches(r'{_IMAGE_DIGEST}') || self.matches(r'{_IMAGE_TAG}')",
             "messageExpression": f"\"'\" + self + \"' {IMAGE_TAG_HINT}\""},
        ]},
    )
    """The image to run, normally ending in `:<version>`."""
    image_tag_is_version: bool = Field(
        default=True,
        description="The image tag is backend.version, and the API server checks that they agree. Set false "
        "for an image tagged otherwise (a commit hash, a build number): the tags are then not compared. The "
        "version the status reports as serving is read from the running image's tag, so frontend.requiresBackend "
        "cannot be judged then and is refused with it.",
    )
    ecs: EcsTarget
    """Where the backend runs on ECS."""
    traffic: Traffic | None = None
    """The ALB listener and the two target groups the weights are shifted between. Without it the release has no traffic steps."""

    @field_validator("image")
    @classmethod
    def _image_pinned(cls, value: str) -> str:
        return _check_image(value)

    services: tuple[BackendService, ...] | None = Field(
        default=None, min_length=1, max_length=MAX_SERVICES,
        description="Several ECS services released as one tier, at backend.version (instead of image, ecs and "
        "traffic): each takes each step once the services it comes after (`after`) show it, all in lockstep, and a "
        "rollback takes them back the last first. A service without traffic (a worker) is canaried by the share "
        "of its tasks. A preview step previews every service behind the one header; a frontend goes live once every "
        "service serves the new version. Not yet with ecs.mode Native (refused with SeveralServicesUnsupported).")

    @model_validator(mode="before")
    @classmethod
    def _several(cls, data: Any) -> Any:
        return _first_service_fields(data)

    @model_validator(mode="after")
    def _tag_is_version(self) -> Backend:
        if (self.image_tag_is_version and "@" not in self.image and re.search(_IMAGE_TAG, self.image)
                and not self.image.endswith(f":{self.version}")):
            raise ValueError(image_tag_mismatch(self.image, self.version))
        if self.services is not None:
            check_services(self.services, self.version, self.image_tag_is_version)
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> Any:
        """A tier of several is written as it was given: `services`, without the first service's
        image, ecs and traffic the model reads it with (`_first_service_fields`), so what is dumped
        parses again (and the API server takes it)."""
        data = handler(self)
        if self.services is not None and isinstance(data, dict):
            for key in ("image", "ecs", "traffic"):
                data.pop(key, None)
        return data

    def service_list(self) -> tuple[BackendService, ...]:
        """The services, in the order written; a single-service backend is one service, `SINGLE_SERVICE`."""
        if self.services is not None:
            return self.services
        return (BackendService(name=SINGLE_SERVICE, image=self.image, ecs=self.ecs, traffic=self.traffic),)

    @property
    def several(self) -> bool:
        """Whether the tier names more than one service (`services` with two or more)."""
        return self.services is not None and len(self.services) > 1

    def waves(self) -> tuple[tuple[str, ...], ...]:
        """`service_waves` of the tier."""
        return service_waves(self.service_list())

    def rollback_order(self) -> tuple[str, ...]:
        """The order services go back in: the last wave first, each wave's services in reverse.

        Worked example, waves (api), (mcp, worker): worker, mcp, api; then the frontend as today.
        """
        return tuple(name for wave in reversed(self.waves()) for name in reversed(wave))


class Pause(Model):
    """A pause in a rollout: for a duration, or until `promote`."""

    duration: Duration | None = Field(
        default=None, description="How long to wait. Without it the rollout waits for `promote`."
    )


# One header through the whole stack: CloudFront continuous deployment's SingleHeader policy only
# accepts header names starting with `aws-cf-cd-`, and an ALB http-header condition takes any name of
# at most 40 characters, so a name of this form works for both.
CLOUDFRONT_HEADER_PREFIX = "aws-cf-cd-"
DEFAULT_PREVIEW_HEADER = "aws-cf-cd-release-preview"
HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"  # an HTTP field name (RFC 9110 5.6.2 token)
MAX_HEADER_NAME = 40  # ALB HttpHeaderConfig.HttpHeaderName
MAX_HEADER_VALUE = 128  # ALB http-header value
# Visible ASCII without ALB's wildcards: CloudFront compares the value exactly, so the ALB rule must too.
HEADER_VALUE_PATTERN = r"^[\x21-\x29\x2b-\x3e\x40-\x7e]+$"


CLOUDFRONT_PREVIEW_HINT = (
    "with frontend.canary, the preview header also takes viewers to the new frontend through CloudFront "
    "continuous deployment's SingleHeader policy, which only routes by a name starting with aws-cf-cd-: "
    "leave header.name out (aws-cf-cd-release-preview) or name one like aws-cf-cd-preview")
_CF_NAME = "matches('^[aA][wW][sS]-[cC][fF]-[cC][dD]-')"  # CEL's RE2, the prefix without case


class PreviewHeader(Model):
    """The header that takes a request to the new version while it is previewed."""

    name: str = Field(
        default=DEFAULT_PREVIEW_HEADER, min_length=1, max_length=MAX_HEADER_NAME, pattern=HEADER_NAME_PATTERN,
        description="The header's name (an HTTP field name of at most 40 characters; ALB compares it without case). "
        "The default aws-cf-cd-release-preview suits CloudFront continuous deployment's SingleHeader policy, which "
        "only takes names starting with aws-cf-cd-, as well as an ALB http-header condition, which takes any.")
    value: str | None = Field(
        default=None, min_length=1, max_length=MAX_HEADER_VALUE, pattern=HEADER_VALUE_PATTERN,
        description="The value a request must carry (visible ASCII, no `*` or `?`: compared exactly, not as "
        "ALB's wildcards). Default: the backend version being released, so a client still sending an earlier "
        "preview's value reaches production.")

    def value_for(self, version: str) -> str:
        return self.value or version

    @property
    def reaches_cloudfront(self) -> bool:
        """Whether CloudFront continuous deployment can route by this header (its SingleHeader policy)."""
        return self.name.lower().startswith(CLOUDFRONT_HEADER_PREFIX)


class Preview(Model):
    """`{preview: {duration, header}}`: before any production weight, requests with the header reach
    the new version for `duration`, analysed, before the canary steps go on."""

    duration: Duration = Field(description="How long the preview lasts. The new version runs at full scale "
                               "with no production traffic; requests carrying the header reach it (an ALB "
                               "listener rule, removed after). With analysis, the step also waits for a "
                               "Passed verdict, as an analysed pause does.")
    header: PreviewHeader = Field(default_factory=PreviewHeader, description="The header a request carries to "
                                  "reach the new version during the preview.")

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("a preview lasts a positive duration, e.g. 5m")
        return value


CANARY_STEP_KIND_HINT = "a canary step is exactly one of setWeight, pause or preview"
PREVIEW_BEFORE_WEIGHT_HINT = ("a preview step comes before any setWeight above 0, and there is at most one: "
                              "the new version is previewed before users see it")


class CanaryStep(Model):
    """One step of a canary: exactly one of setWeight, pause or preview."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "[has(self.setWeight), has(self.pause), has(self.preview)].filter(x, x).size() == 1",
                    CANARY_STEP_KIND_HINT,
                )
            ]
        }
    )

    set_weight: int | None = Field(default=None, ge=0, le=100)
    """Percent of traffic sent to the new version at this step (0-100)."""
    pause: Pause | None = None
    """Wait before the next step: for a duration, or until `kubectl release promote`."""
    preview: Preview | None = Field(
        default=None,
        description="Before any production weight: the new version at full scale, reached only by requests carrying "
        "the header (an ALB listener rule forwarding to the canary target group, placed after the listener's other "
        "rules and removed when the step ends), analysed for its duration. With frontend.canary and a new frontend "
        "version, the same header (its name must start with aws-cf-cd-) also reaches the new frontend: CloudFront's "
        "staging distribution serves it by a SingleHeader continuous deployment policy during the preview, set back "
        "to SingleWeight 0%, disabled, when the step ends; viewers without the header get the old frontend.")


def preview_before_weight(steps: list[CanaryStep]) -> bool:
    """Whether `steps` preview at most once, before any setWeight above 0 (the CEL rule's twin).

    >>> d = timedelta(minutes=1)
    >>> preview_before_weight([CanaryStep(preview=Preview(duration=d)), CanaryStep(set_weight=10)])
    True
    >>> preview_before_weight([CanaryStep(set_weight=10), CanaryStep(preview=Preview(duration=d))])
    False
    """
    previews = [i for i, s in enumerate(steps) if s.preview is not None]
    weighted = [i for i, s in enumerate(steps) if s.set_weight]
    return len(previews) <= 1 and (not previews or not weighted or previews[0] < weighted[0])


CANARY_EMPTY_HINT = ("is empty: write at least one step, e.g. [{setWeight: 20}, {pause: {duration: 1m}}], "
                     "or leave steps out for the default plan (10%, pause 30s, 50%, pause 30s)")
FRONTEND_CANARY_EMPTY_HINT = ("is empty: write at least one step, e.g. [{setWeight: 5}, {pause: {duration: 5m}}], "
                              "or leave frontend.canary out for an atomic switch")
FRONTEND_PREVIEW_HINT = ("a frontend canary has no preview step: write it in strategy.canary.steps, where the "
                         "header reaches the new backend")
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
                     f"a frontend canary weight is at most {max_weight} (CloudFront continuous deployment)"),
                 cel("self.all(s, !has(s.preview))", FRONTEND_PREVIEW_HINT)]
                if max_weight < 100
                else [cel("self.filter(s, has(s.preview)).size() <= 1 && (!self.exists(s, has(s.preview)) || "
                          "!self.exists(s, has(s.setWeight) && s.setWeight > 0) || "
                          "self.map(s, has(s.preview)).indexOf(true) < "
                          "self.map(s, has(s.setWeight) && s.setWeight > 0).indexOf(true))",
                          PREVIEW_BEFORE_WEIGHT_HINT)]
            ),
        ],
    }


class CanaryStrategy(Model):
    """Canary: the new version takes traffic in steps, analysed at each."""

    steps: list[CanaryStep] = Field(default_factory=list,
                                    json_schema_extra=_steps_never_decrease(100, CANARY_EMPTY_HINT))
    """The steps in order; the last step's weight is followed by full promotion."""

    _steps_given = field_validator("steps")(_not_empty(CANARY_EMPTY_HINT))

    @field_validator("steps")
    @classmethod
    def _preview_first(cls, value: list[CanaryStep]) -> list[CanaryStep]:
        if not preview_before_weight(value):
            raise ValueError(PREVIEW_BEFORE_WEIGHT_HINT)
        return value


class BlueGreenStrategy(Model):
    """Blue-green: the new version starts beside the old, is previewed, then takes all traffic at once."""

    preview_duration: Duration = Field(default=timedelta(seconds=60))
    """How long the new version runs without production traffic (analysed) before the switch."""
    preview_header: PreviewHeader | None = Field(
        default=None,
        description="During the preview, requests carrying this header reach the new version (an ALB listener rule "
        "forwarding to its target group, after the listener's other rules, removed after), so an analysis or a "
        "smoke test of the preview has traffic; with frontend.canary, the new frontend too (CloudFront's staging "
        "distribution by a SingleHeader policy; the name must start with aws-cf-cd-). Unset: no rule, and the "
        "preview gets no traffic.")
    scale_down_delay: Duration = Field(default=timedelta(minutes=5))
    """How long the old version keeps running after the switch, for a fast way back."""


class RollingStrategy(Model):
    """Rolling: the new version's share grows by the listed steps, with a health check between them."""

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
    """How the new version takes traffic."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.type != 'Auto' || has(self.changeClass)", "strategy Auto needs changeClass",
                    fieldPath=".changeClass"),
            ]
        }
    )

    type: StrategyType = StrategyType.AUTO
    """Auto (chosen from changeClass), Fast, Rolling, Canary or BlueGreen."""
    change_class: ChangeClass | None = None
    """For Auto: what kind of change this is (infrastructure, api, core, minor), as `release-controller classify` says; it picks the strategy."""
    canary: CanaryStrategy | None = None
    """Settings of the Canary strategy."""
    blue_green: BlueGreenStrategy | None = None
    """Settings of the BlueGreen strategy."""
    rolling: RollingStrategy | None = None
    """Settings of the Rolling strategy."""

    def preview_headers(self) -> list[PreviewHeader]:
        """Every preview header the strategy names (canary preview steps, the blue-green previewHeader)."""
        steps = self.canary.steps if self.canary is not None else []
        out = [s.preview.header for s in steps if s.preview is not None]
        if self.blue_green is not None and self.blue_green.preview_header is not None:
            out.append(self.blue_green.preview_header)
        return out


class CloudFrontTarget(Model):
    """The CloudFront distribution that serves the frontend from S3."""

    distribution_id: str = Field(min_length=1, max_length=128)
    """ID of the CloudFront distribution."""
    origin_id: str = Field(min_length=1, max_length=255)
    """ID of the distribution's S3 origin whose path selects the version."""
    origin_path_template: str = Field(
        default="/releases/{version}", pattern=r"^/.*\{version\}.*$", max_length=1024
    )
    """The origin path of a version; `{version}` is replaced by frontend.version."""
    bucket: str | None = Field(default=None, max_length=255, description="S3 bucket behind the origin (flags.json).")
    invalidate_paths: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=lambda: ["/index.html", "/", "/flags.json"], json_schema_extra={"maxItems": 50}
    )
    """Paths invalidated after a version becomes the one served."""


class FrontendCanary(Model):
    """A canary of the frontend through CloudFront's continuous deployment (staging distribution, at most 15%)."""

    steps: list[CanaryStep] = Field(default_factory=list,
                                    json_schema_extra=_steps_never_decrease(15, FRONTEND_CANARY_EMPTY_HINT))
    """The frontend's canary steps in order."""

    _steps_given = field_validator("steps")(_not_empty(FRONTEND_CANARY_EMPTY_HINT))

    @field_validator("steps")
    @classmethod
    def _no_preview(cls, value: list[CanaryStep]) -> list[CanaryStep]:
        if any(s.preview is not None for s in value):
            raise ValueError(FRONTEND_PREVIEW_HINT)
        return value


class ApiOperation(Model):
    """One API operation the frontend calls."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    """HTTP method of the operation."""
    path: str = Field(min_length=1, max_length=1024)
    """Path of the operation as the backend's OpenAPI document writes it."""
    fields: list[Annotated[str, Field(max_length=255)]] = Field(
        default_factory=list, description="Response fields the frontend reads.", json_schema_extra={"maxItems": 200})


class ApiContract(Model):
    """The API the frontend needs from the backend: checked against the live backend's OpenAPI document before the frontend moves."""

    operations: list[ApiOperation] = Field(default_factory=list, json_schema_extra={"maxItems": 500})
    """The operations the frontend calls."""
    config_map: str | None = Field(default=None, max_length=253,
                                   description="A ConfigMap whose `contract.yaml` holds operations.")
    openapi_url: str | None = Field(default=None, max_length=2048, pattern=HTTP_URL_PATTERN,
                                    description="Where the backend serves its OpenAPI document (http or https).")


class Frontend(Model):
    """The frontend: static files on S3 served by CloudFront, released after a compatible backend."""

    version: SemVer
    """The frontend version to release (semantic version)."""
    cloudfront: CloudFrontTarget
    """Where the frontend is served."""
    requires_backend: VersionRange | None = None
    """The backend versions this frontend works with (a semver range); the frontend waits until the live backend matches."""
    canary: FrontendCanary | None = None
    """Canary steps of the frontend; without them it switches at once."""
    api_contract: ApiContract | None = None
    """The API the frontend needs from the backend, checked before it moves."""


class PrometheusAuthType(StrEnum):
    BASIC = "Basic"
    BEARER = "Bearer"
    SIGV4 = "SigV4"


class PrometheusSecretRef(Model):
    name: str = Field(min_length=1, max_length=253, description="A Secret in the Release's namespace.")


class PrometheusAuth(Model):
    """Credentials for Prometheus: from a Secret, or the Release's own AWS credentials (SigV4); never
    in the address, never logged."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("self.type == 'SigV4' ? !has(self.secretRef) : has(self.secretRef)",
            "prometheus.auth: Basic and Bearer read a secretRef; SigV4 signs with the Release's AWS credentials "
            "and takes none"),
        cel("self.type == 'SigV4' || !has(self.region)",
            "prometheus.auth.region: only SigV4 signs for a region"),
    ]})

    type: PrometheusAuthType = Field(
        default=PrometheusAuthType.BASIC,
        description="Basic: the Secret's keys `username` and `password`; Bearer: its key `token` "
        "(Authorization: Bearer); SigV4: each query signed for Amazon Managed Service for Prometheus "
        "(service `aps`) with the credentials the Release's AWS calls use (its ReleasePolicy's role, "
        "else the operator's).")
    secret_ref: PrometheusSecretRef | None = Field(
        default=None, description="The Secret holding the credentials (Basic and Bearer).")
    region: str | None = Field(
        default=None, min_length=1, max_length=32, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
        description="SigV4 only: the workspace's region (default: the operator's AWS region).")

    @model_validator(mode="after")
    def _credentials_come_from_one_place(self) -> "PrometheusAuth":
        if (self.type == PrometheusAuthType.SIGV4) == (self.secret_ref is not None):
            raise ValueError("prometheus.auth: Basic and Bearer read a secretRef; SigV4 signs with the Release's "
                             "AWS credentials and takes none")
        if self.region is not None and self.type != PrometheusAuthType.SIGV4:
            raise ValueError("prometheus.auth.region: only SigV4 signs for a region")
        return self


class PrometheusQuery(Model):
    """A PromQL query answered by a Prometheus server."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("!has(self.auth) || !self.address.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*@')",
            "prometheus.address: put the credentials in the Secret of prometheus.auth, not in the address"),
    ]})

    address: str = Field(min_length=1, max_length=2048, pattern=HTTP_URL_PATTERN)
    """The Prometheus server's base URL (http or https)."""
    auth: PrometheusAuth | None = Field(
        default=None, description="Credentials from a Secret (basic or bearer) or AWS SigV4; credentials written in the "
        "address still work but are redacted from every message and log line.")
    query: str = Field(min_length=1, max_length=8192)
    """PromQL giving one number; `{{version}}` is replaced by the version measured."""
    traffic_query: str | None = Field(
        default=None, max_length=8192,
        description="A query giving the number of requests the version served in the window (e.g. "
        'sum(increase(http_requests_total{version="{{version}}"}[1m]))); with the metric\'s minRequests, the '
        "metric is judged only once the canary served that many. Asked of the same address.",
    )


class CloudWatchDimension(Model):
    # CloudWatch's own limits (255 and 1024 characters).
    """One dimension of a CloudWatch metric."""

    name: str = Field(max_length=255)
    """Dimension name."""
    value: str = Field(max_length=1024)
    """Dimension value."""


class CloudWatchMetric(Model):
    """A CloudWatch metric: namespace, name and dimensions."""

    namespace: str = Field(max_length=255)
    """CloudWatch namespace, e.g. AWS/ApplicationELB."""
    metric_name: str = Field(max_length=255)
    """Metric name, e.g. HTTPCode_Target_5XX_Count."""
    dimensions: list[CloudWatchDimension] = Field(default_factory=list, json_schema_extra={"maxItems": 30})
    """The metric's dimensions."""


class CloudWatchMetricStat(Model):
    """A metric with the period and statistic to read it with."""

    metric: CloudWatchMetric
    """The metric."""
    period: int = Field(default=60, ge=1)
    """Period in seconds."""
    stat: str = Field(default="Average", max_length=64)
    """Statistic: Average, Sum, Maximum, p99, ..."""


class CloudWatchQuery(Model):
    """One query of GetMetricData: a metric or a metric math expression."""

    id: str = Field(pattern=r"^[a-z][a-zA-Z0-9_]*$", max_length=255)
    """ID of the query (lower-case first letter), used by expressions."""
    expression: str | None = Field(default=None, max_length=2048)  # GetMetricData's limit
    """A metric math expression over other queries' IDs."""
    metric_stat: CloudWatchMetricStat | None = None
    """The metric to read."""
    return_data: bool | None = None
    """Whether this query's value is the result (exactly one query returns data)."""


class CloudWatchMetricSource(Model):
    """Metrics read from CloudWatch with GetMetricData."""

    metric_data_queries: list[CloudWatchQuery] = Field(min_length=1, json_schema_extra={"maxItems": 20})
    """The queries, as GetMetricData takes them."""
    lookback: Duration = Field(default=timedelta(minutes=5))
    """How far back the queries read."""


class HttpCheck(Model):
    """An HTTP GET whose status (and optionally a JSON value) is the measurement."""

    url: str = Field(min_length=1, max_length=2048, pattern=HTTP_URL_PATTERN)
    """URL to GET (http or https)."""
    expect_status: int = Field(default=200, ge=100, le=599)
    """The HTTP status that passes."""
    json_path: str | None = Field(default=None, max_length=256,
                                  description="Dotted path into the JSON body, e.g. checks.database")
    expect_value: str | None = Field(default=None, max_length=1024)
    """The value expected at jsonPath, compared as text."""
    timeout: Duration = Field(default=timedelta(seconds=2))
    """How long to wait for the answer."""


NO_DATA_LIMIT = 4
"""Default of `metric.noDataLimit`: with the default 10s interval and failureLimit 1, a canary that is
never measured is rolled back after about a minute (4 tolerated, then 2 failed measurements)."""


class Metric(Model):
    """One metric of the analysis: exactly one provider (prometheus, cloudwatch or http) and its bounds."""

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
    """Name of the metric, as the status and events report it."""
    prometheus: PrometheusQuery | None = None
    """Measure with a Prometheus query."""
    cloudwatch: CloudWatchMetricSource | None = None
    """Measure with CloudWatch metrics."""
    http: HttpCheck | None = None
    """Measure with an HTTP check."""
    max: float | None = None
    """The highest value that passes."""
    min: float | None = None
    """The lowest value that passes."""
    compare_with_stable: bool = False
    """Also compare the new version's samples with the stable version's (Mann-Whitney); a significantly worse new version fails."""
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
    """How the new version is judged during a rollout."""

    interval: Duration = Field(default=timedelta(seconds=10))
    """Time between two measurements."""
    failure_limit: int = Field(default=1, ge=0, le=100)
    """Failed measurements tolerated before the rollout is judged failed."""
    min_samples: int = Field(default=3, ge=1, le=1000)
    """Measurements needed before a step may pass."""
    consecutive_error_limit: int = Field(
        default=4, ge=1, le=100,
        description="Consecutive runs in which a metric's provider could not be asked (Prometheus or CloudWatch "
        "down) before the analysis is held as 'provider down' (a Warning Event names the metric). A hold never "
        "passes a step; it ends when the provider answers, or at progressDeadline from the last progress: "
        "rolled back, or paused for a person with rollback.onDegradation: Pause.",
    )
    metrics: list[Metric] = Field(default_factory=list, json_schema_extra={"maxItems": 20})
    """The metrics measured; none means no analysis."""


class DegradationAction(StrEnum):
    ROLLBACK = "Rollback"
    PAUSE = "Pause"


class DriftAction(StrEnum):
    REVERT = "Revert"
    REPORT = "Report"


class RollbackPolicy(Model):
    """What the operator does when the new version degrades or AWS drifts from the spec."""

    on_degradation: DegradationAction = DegradationAction.ROLLBACK
    """Rollback (to the stable version) or Pause when the analysis fails."""
    on_drift: DriftAction = DriftAction.REVERT
    """Revert a change made to AWS outside the operator, or only Report it."""
    window: Duration = Field(default=timedelta(minutes=10))
    """How long after a success the previous version stays ready for an instant rollback."""


class FlagRollout(Model):
    # No other keys, and only the wire name: the API server keeps flag values as given (its policy
    # refuses any other key too), and a misspelt `rolloutPercnt: 10` must not quietly mean 100%.
    """A feature flag rolled out to a share of users."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)  # merged with Model's

    enabled: StrictBool
    """Whether the flag is on."""
    rollout_percent: StrictInt = Field(default=100, ge=0, le=100)
    """Percent of users who get the flag when enabled."""


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
    """A Secret in the Release's namespace, by name."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Secret."""


class GitOps(Model):
    """Where this Release comes from in Git, so that a rollback can be written back there."""

    repository: str = Field(
        min_length=1, max_length=2048, pattern=r"^(https?://|ssh://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:).+$",
        description="Clone URL: https://host/path.git, ssh://git@host/path.git or git@host:path.git.",
    )
    branch: str = Field(default="main", min_length=1, max_length=255, pattern=r"^[^\s~^:?*\[\\]+$")
    """The branch the write-back commits to."""
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
    """Namespace of the Release."""
    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
    """Name of the Release."""


class UpstreamRequirement(Model):
    """A Release that must have had this Release's versions Succeeded and live for `soak` first."""

    release: ReleaseRef
    """The upstream Release."""
    soak: Duration = Field(
        default=timedelta(0),
        description="How long the upstream Release must have run the same backend (and frontend) version, "
        "Succeeded and live, before this Release starts rolling it out.",
    )


class Promotion(Model):
    """Conditions on other Releases before this one may roll out."""

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
    """Name of the Secret in the Release's namespace."""
    key: str = Field(min_length=1, max_length=253)
    """Key in the Secret."""


class WebhookSink(Model):
    """Notifications POSTed to a URL kept in a Secret."""

    url_secret_ref: SecretKeyRef = Field(description="The URL is a secret: it is read from this Secret key, never given here.")
    format: Literal["json", "slack", "teams"] = "json"
    """Body format: json, slack or teams."""


class EventBridgeSink(Model):
    """Notifications put on an EventBridge event bus."""

    event_bus_name: str = Field(default="default", min_length=1, max_length=1600)
    """Name or ARN of the event bus."""


class Notification(Model):
    """One notification target and the moments it is told about."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [
            cel("has(self.webhook) != has(self.eventBridge)", "a notification has exactly one of webhook or eventBridge"),
        ]}
    )

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """Name of the notification, unique in the Release."""
    on: list[Moment] = Field(min_length=1, json_schema_extra={"maxItems": 10})
    """The moments that send it (Started, Paused, Succeeded, RolledBack, ...)."""
    webhook: WebhookSink | None = None
    """Send to a webhook."""
    event_bridge: EventBridgeSink | None = None
    """Send to EventBridge."""


class HookFailure(StrEnum):
    ROLLBACK = "Rollback"
    PAUSE = "Pause"


class WebhookHook(Model):
    """A hook answered by an HTTP endpoint: exactly one of url or urlSecretRef."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("has(self.url) != has(self.urlSecretRef)", "a webhook hook has exactly one of url or urlSecretRef"),
    ]})

    url: str | None = Field(default=None, pattern=HTTP_URL_PATTERN, max_length=2048)
    """URL of the hook (http or https)."""
    url_secret_ref: SecretKeyRef | None = None
    """The hook's URL, kept in a Secret."""
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
    """Environment variables of the task's container."""

    @field_validator("environment")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        if not all(_task_env_name_ok(k) for k in value):
            raise ValueError(TASK_ENV_NAME_HINT)
        return value


class Hook(Model):
    """A step run at a hook point: a webhook or a one-off ECS task."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("has(self.webhook) != has(self.ecsTask)", HOOK_KIND_HINT),
    ]})

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """Name of the hook, unique at its point."""
    webhook: WebhookHook | None = None
    """Run as a webhook call."""
    ecs_task: EcsTaskHook | None = None
    """Run as a one-off ECS task of the new image (e.g. a migration)."""
    irreversible: bool = False
    """The hook changes something a rollback cannot undo: after it ran, abort needs --force."""
    on_failure: HookFailure = HookFailure.ROLLBACK
    """Rollback or Pause when the hook fails."""

    @model_validator(mode="after")
    def _one_kind(self) -> "Hook":
        if (self.webhook is None) == (self.ecs_task is None):
            raise ValueError(HOOK_KIND_HINT)
        return self


_HOOK_LIST: dict[str, Any] = {"maxItems": 10, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
"""Each point's hooks: at most 10, run in order, names unique within the point (the API server keeps them so)."""


class Hooks(Model):
    """Hooks at the points of a rollout."""

    pre_rollout: list[Hook] = Field(
        default_factory=list, json_schema_extra=_HOOK_LIST,
        description="After the rollout starts, before the new version's first task set is created: a migration runs "
                    "before new code serves. A failure rolls back (the canary never gets weight) or pauses.")
    preview: list[Hook] = Field(
        default_factory=list, json_schema_extra=_HOOK_LIST,
        description="At a preview step (or a blue-green preview with previewHeader), once the preview route is "
                    "there: a smoke test of the new version through the header, which the hook is given (a webhook's "
                    "body `preview`, an ECS task's RELEASE_PREVIEW_HEADER and RELEASE_PREVIEW_VALUE). The preview "
                    "lasts its duration from when the last one passed. A failure rolls back or pauses. Without a "
                    "preview step, never run.")
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
    """What to release, and how."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(self.strategy.type in ['Canary', 'BlueGreen'] || (self.strategy.type == 'Auto'"
                    " && has(self.strategy.changeClass) && self.strategy.changeClass in ['api', 'infrastructure']))"
                    " || has(self.backend.traffic)"
                    " || (has(self.backend.services) && self.backend.services.exists(s, has(s.traffic)))"
                    " || (has(self.backend.ecs) && has(self.backend.ecs.mode) && self.backend.ecs.mode == 'Native')",
                    "Canary and BlueGreen need backend.traffic (an ALB listener with two target groups), "
                    "or backend.ecs.mode: Native (ECS shifts the traffic itself)",
                    fieldPath=".backend.traffic",
                ),
                cel("!has(self.frontend) || !has(self.frontend.requiresBackend) || !has(self.backend.imageTagIsVersion)"
                    " || self.backend.imageTagIsVersion", REQUIRES_TAG_HINT, fieldPath=".frontend.requiresBackend"),
                cel("!has(self.frontend) || !has(self.frontend.canary) || !has(self.strategy) || ("
                    "(!has(self.strategy.canary) || !has(self.strategy.canary.steps) || self.strategy.canary.steps.all("
                    f"s, !has(s.preview) || !has(s.preview.header) || !has(s.preview.header.name) || s.preview.header.name.{_CF_NAME}))"
                    " && (!has(self.strategy.blueGreen) || !has(self.strategy.blueGreen.previewHeader)"
                    " || !has(self.strategy.blueGreen.previewHeader.name)"
                    f" || self.strategy.blueGreen.previewHeader.name.{_CF_NAME}))",
                    CLOUDFRONT_PREVIEW_HINT, fieldPath=".strategy"),
            ]
        }
    )

    environment: Environment
    """The environment: development, staging or production (sets defaults and guards)."""
    backend: Backend
    """The backend on ECS."""
    frontend: Frontend | None = None
    """The frontend on CloudFront, released after a compatible backend."""
    strategy: Strategy = Field(default_factory=Strategy)
    """How the new version takes traffic."""
    analysis: Analysis = Field(default_factory=Analysis)
    """How the new version is judged."""
    feature_flags: dict[str, FlagValue] = Field(default_factory=dict, json_schema_extra=_FLAG_SCHEMA)
    """Feature flags published with the release: name -> true, false or {enabled, rolloutPercent}."""
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy)
    """What happens on degradation and drift."""
    paused: bool = False
    """Hold the rollout where it is."""
    progress_deadline: DeadlineDuration = Field(default=timedelta(minutes=10))
    """How long a step may take before the release fails."""
    gitops: GitOps | None = None
    """Write a rollback back to the Git repository the Release comes from."""
    promotion: Promotion = Field(default_factory=Promotion)
    """Conditions on other Releases before this one rolls out."""
    notifications: list[Notification] = Field(default_factory=list, json_schema_extra={"maxItems": 10})
    """Who is told about the release's moments."""
    hooks: Hooks = Field(default_factory=Hooks)
    """Steps run before, during and after the rollout."""

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

    @model_validator(mode="after")
    def _preview_reaches_cloudfront(self) -> ReleaseSpec:
        if self.frontend is not None and self.frontend.canary is not None and not all(
                h.reaches_cloudfront for h in self.strategy.preview_headers()):
            raise ValueError(f"strategy: {CLOUDFRONT_PREVIEW_HINT}")
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
    """A condition of the Release, as Kubernetes conventions write them."""

    type: ConditionType
    """Ready, Progressing, Healthy, Compatible, Drifted, Reconciling or Stalled."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    """Why, in one CamelCase word (controller/api/reasons.py lists them)."""
    message: str = Field(default="", max_length=32768)
    """Why, for a person."""
    last_transition_time: datetime
    """When the status last changed."""
    # The spec generation this condition was written for (kstatus, Kubernetes API conventions).
    observed_generation: int | None = Field(default=None, ge=0)
    """The generation of the spec the condition was set for."""


class ServingVersion(Model):
    """One version receiving traffic, as AWS reported it at the last observation."""

    version: str = Field(max_length=256, description="The version, read from the running image's tag.")
    weight: int = Field(ge=0, le=100, description="Percent of the traffic it receives (listener weights, split by "
                        "task set scale within a target group).")


class ServiceBackendStatus(Model):
    """One service of a backend tier of several (`status.backend.services[]`)."""

    name: str = Field(max_length=63)
    """The service's name in backend.services."""
    stable_image: str | None = None
    """The image this service goes back to."""
    stable_version: str | None = None
    """Its version, when it is not the tier's stableVersion (a tier that was half rolled out)."""
    canary_image: str | None = None
    """The image being rolled out on this service."""
    canary_weight: int = Field(default=0, ge=0, le=100)
    """Percent of this service's traffic on the new version (a worker: of its tasks), as observed."""
    stable_target_group_arn: str | None = None
    """The target group this service's stable version serves from (unset: its traffic's stable one)."""
    previous_image: str | None = None
    """The image this service ran before the last promotion: kept warm for the rollback window."""


class BackendStatus(Model):
    """The backend as it runs."""

    serving: list[ServingVersion] = Field(
        default_factory=list, json_schema_extra={"maxItems": 10},
        description="Every backend version receiving traffic and its weight, as AWS reported them at the last "
        "pass, whatever the spec or the rollout say (paused, superseded, rolled back included).",
    )
    traffic: str = Field(default="", max_length=1024,
                         description="The same in one word (`1.0.0=80%,2.0.0=20%`), for the printer column.")
    stable_version: str | None = None
    """The version serving (the way back)."""
    stable_image: str | None = None
    """The stable version's image."""
    canary_version: str | None = None
    """The version being rolled out."""
    canary_image: str | None = None
    """The rolled-out version's image."""
    canary_weight: int = Field(default=0, ge=0, le=100)
    """Percent of traffic on the new version."""
    stable_target_group_arn: str | None = Field(
        default=None,
        description="The target group the stable version serves from; roles alternate at each promotion. "
        "Unset means spec.backend.traffic.stableTargetGroupArn.",
    )
    services: list[ServiceBackendStatus] = Field(
        default_factory=list, json_schema_extra={"maxItems": 10},
        description="A tier of several services: each one's images, weight and stable target group. The fields "
        "above then speak for the tier (versions) and its first service (images, target group); canaryWeight is "
        "the least weight of the services with traffic. Empty for one service.",
    )


class FrontendStatus(Model):
    """The frontend as it is served."""

    stable_version: str | None = None
    """The version viewers get."""
    canary_version: str | None = None
    """The version being rolled out."""
    canary_weight: int = Field(default=0, ge=0, le=100)
    """Percent of viewers on the new version."""
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
    """One measurement of one metric."""

    metric: str
    """The metric's name."""
    value: float | None = None
    """The new version's value."""
    stable_value: float | None = None
    """The stable version's value, for comparison."""
    verdict: Verdict
    """Passed, Failed, Inconclusive or NoData."""
    message: str = ""
    """The verdict in words."""
    time: datetime
    """When it was measured."""
    error: MeasurementError | None = Field(
        default=None, description="Who did not answer, when the measurement has no judged value.")
    dry_run: bool | None = Field(default=None, description="True: a dryRun metric, shown but never deciding.")


class AnalysisStatus(Model):
    """The analysis of the current rollout."""

    verdict: Verdict | None = None
    """The verdict so far."""
    message: str = ""
    """The verdict in words."""
    started_at: datetime | None = None
    """When the analysis started."""
    last_run_at: datetime | None = None
    """When it last measured."""
    failures: int = 0
    """Failed measurements so far."""
    errors: int = 0
    """Provider errors in a row."""
    samples: int = 0
    """Measurements so far."""
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
    """The latest measurements."""


class HistoryEntry(Model):
    """One finished rollout."""

    revision: int = Field(ge=1)
    """Revision number (1 is the first)."""
    backend_version: str
    """Backend version of the revision."""
    backend_image: str | None = None
    """Backend image of the revision."""
    frontend_version: str | None = None
    """Frontend version of the revision."""
    flags_hash: str | None = None
    """Hash of the feature flags of the revision."""
    strategy: str | None = None
    """The strategy it rolled out with."""
    result: Literal["Succeeded", "RolledBack", "Failed", "Aborted", "Superseded"]
    """Succeeded, RolledBack, Failed, Aborted or Superseded."""
    message: str = ""
    """What happened, in words."""
    started_at: datetime
    """When the rollout started."""
    finished_at: datetime
    """When it finished."""
    revert_commit: str | None = Field(
        default=None,
        description="The commit that wrote this rollback back to Git (spec.gitops); empty when Git already named the live versions.",
    )


class Acknowledged(Model):
    """The last user request (annotation value) of each kind that the controller acted on."""

    promote: str | None = None
    """The last promote request the operator carried out."""
    abort: str | None = None
    """The last abort request the operator carried out."""
    retry: str | None = None
    """The last retry request the operator carried out."""


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
    """Notifications not yet delivered."""

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
    """A hook run of the current revision."""

    point: str
    """The hook point (preRollout, prePromotion, postPromotion, onRollback)."""
    name: str
    """The hook's name."""
    revision: int
    """The revision it ran for."""
    started_at: datetime
    """When it first ran."""
    attempts: int = 0
    """Attempts so far."""
    next_at: datetime | None = None
    """When it is tried again."""
    passed_at: datetime | None = None
    """When it passed."""
    failed_at: datetime | None = None
    """When it failed for good."""
    message: str = ""
    """What happened, in words."""


class ReleaseStatus(Model):
    """What the operator observed and did."""

    phase: Phase = Phase.PENDING
    """Pending, Progressing, Paused, Succeeded, RolledBack or Failed."""
    observed_generation: int | None = None
    """The generation of the spec this status is about."""
    message: str = ""
    """The state in words."""
    revision: int = 0
    """The current revision (see history)."""
    target_hash: str | None = Field(default=None, description="Hash of the spec the rollout in progress is for.")
    strategy: StrategyType | None = Field(default=None, description="The strategy resolved for this rollout.")
    current_step: int = 0
    """Steps of the rollout done."""
    step_count: int = 0
    """Steps of the rollout in all."""
    step_started_at: datetime | None = None
    """When the current step started."""
    rollout_started_at: datetime | None = None
    """When the current rollout started."""
    promoted_at: datetime | None = None
    """When the new version took all traffic."""
    paused_at: datetime | None = Field(
        default=None, description="When spec.paused took hold; step timers resume from here on unpause."
    )
    backend: BackendStatus = Field(default_factory=BackendStatus)
    """The backend as it runs."""
    frontend: FrontendStatus = Field(default_factory=FrontendStatus)
    """The frontend as it is served."""
    flags_hash: str | None = None
    """Hash of the feature flags published."""
    rollback_flags: dict[str, Any] | None = Field(
        default=None,
        description="The flags document live before this rollout changed the flags: a rollback publishes it first.",
        json_schema_extra={"type": "object", "additionalProperties": {"x-kubernetes-preserve-unknown-fields": True}},
    )
    conditions: list[Condition] = Field(
        default_factory=list, description=CONDITION_REASONS_DOC, json_schema_extra={"maxItems": 10}
    )
    analysis: AnalysisStatus | None = None
    """The analysis of the current rollout."""
    history: list[HistoryEntry] = Field(default_factory=list, json_schema_extra={"maxItems": 50})
    """Finished rollouts, newest last."""
    acknowledged: Acknowledged = Field(default_factory=Acknowledged)
    """The last requests (annotations) the operator carried out."""
    notifications: NotificationsStatus | None = None
    """Notifications not yet delivered."""
    hooks: list[HookStatus] | None = Field(default=None, json_schema_extra={"maxItems": 40})
    """Hook runs of the current revision."""

    @property
    def step_since(self) -> datetime | None:
        """When the step in progress began, whichever tier walks its steps (the later timer): the
        start of the window an analysis measures."""
        times = [t for t in (self.step_started_at, self.frontend.step_started_at) if t is not None]
        return max(times) if times else None


class Release(Model):
    """A whole object as read from the API server (metadata kept loosely typed)."""

    api_version: str = f"{GROUP}/{VERSION}"
    """delivery.pratiko.ai/v1alpha1."""
    kind: str = KIND
    """Release."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Standard object metadata."""
    spec: ReleaseSpec
    """What to release, and how."""
    status: ReleaseStatus = Field(default_factory=ReleaseStatus)
    """What the operator observed and did."""
