"""Offline validation of Release manifests (`release-controller validate`): the CRD's structural
schema and its CEL rules, evaluated here as the API server would, plus the flags policy, so CI can
refuse a manifest before it is committed. Editing is in `controller.manifests.edit`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import yaml
from pydantic import ValidationError

from controller.api.crd import schema_of
from controller.api.release import (
    BACKEND_ECS_REQUIRED,
    BACKEND_FORM_HINT,
    BACKEND_IMAGE_REQUIRED,
    SERVICE_AFTER_HINT,
    SERVICE_ECS_HINT,
    SERVICE_LISTENER_HINT,
    SERVICE_NAMES_HINT,
    SERVICE_TAGS_HINT,
    _IMAGE_DIGEST as IMAGE_DIGEST,
    _IMAGE_TAG as IMAGE_TAG,
    CANARY_EMPTY_HINT,
    CANARY_STEP_KIND_HINT,
    CLOUDFRONT_HEADER_PREFIX,
    CLOUDFRONT_PREVIEW_HINT,
    FLAG_NAME_LIMIT,
    FLAG_NAME_TOO_LONG,
    FLAG_VALUE_HINT,
    FRONTEND_CANARY_EMPTY_HINT,
    FRONTEND_PREVIEW_HINT,
    GROUP,
    HOOK_KIND_HINT,
    IMAGE_LATEST_HINT,
    IMAGE_TAG_HINT,
    KIND,
    PREVIEW_BEFORE_WEIGHT_HINT,
    PROGRESS_DEADLINE_HINT,
    REQUIRES_TAG_HINT,
    ROLLING_EMPTY_HINT,
    SSM_ADVANCED_LIMIT,
    FlagRollout,
    ReleaseSpec,
    flags_document_size,
    flags_too_large,
    image_tag_mismatch,
)
from controller.api.types import (
    _RANGE_LEADING_V as RANGE_LEADING_V,
    DURATION_HINT,
    DURATION_PATTERN,
    RANGE_HINT,
    RANGE_PATTERN,
    RANGE_V_HINT,
    SEMVER_HINT,
    SEMVER_PATTERN,
    explain,
    leading_v_hint,
    parse_duration,
)



# --------------------------------------------------------------------------- validating

def release_bodies(text: str) -> Iterator[tuple[int, Any]]:
    """(document index, plain body) of every Release document in `text`."""
    for index, body in enumerate(yaml.safe_load_all(text)):
        if isinstance(body, dict) and body.get("kind") == KIND and str(body.get("apiVersion", "")).startswith(GROUP + "/"):
            yield index, body



def _path(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def _go(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else ("true" if value is True else "false" if value is False else str(value))


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def _structural(value: Any, schema: dict[str, Any], at: list[str | int], out: list[str]) -> None:
    """The OpenAPI checks the API server runs on a structural schema, with its messages."""
    where = _path(at)
    if schema.get("x-kubernetes-preserve-unknown-fields") and "type" not in schema:
        return
    kind = schema.get("type")
    if kind and not _TYPES[kind](value):
        out.append(f'{where}: Invalid value: "{type(value).__name__}": {where} in body must be of type {kind}: "{type(value).__name__}"')
        return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(_go(v) for v in schema["enum"])
        out.append(f"{where}: Unsupported value: {_go(value)}: supported values: {allowed}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f'{where}: Invalid value: {_go(value)}: {where} in body should match \'{schema["pattern"]}\'')
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(f"{where}: Invalid value: {_go(value)}: {where} in body should be at least {schema['minLength']} chars long")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"{where}: Too long: may not be more than {schema['maxLength']} bytes")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{where}: Invalid value: {value}: {where} in body should be greater than or equal to {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{where}: Invalid value: {value}: {where} in body should be less than or equal to {schema['maximum']}")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{where}: Too many: {len(value)}: must have at most {schema['maxItems']} items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(f"{where}: Invalid value: {len(value)}: {where} in body should have at least {schema['minItems']} items")
        for i, item in enumerate(value):
            _structural(item, schema.get("items", {}), [*at, i], out)
    if isinstance(value, dict):
        props = schema.get("properties")
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{_path([*at, key])}: Required value")
        if props is not None:
            for key, sub in value.items():
                if key in props:
                    _structural(sub, props[key], [*at, key], out)
                elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                    out.append(f'unknown field "{_path([*at, key])}"')
        elif isinstance(schema.get("additionalProperties"), dict):
            for key, sub in value.items():
                _structural(sub, schema["additionalProperties"], [*at, key], out)


# Each CEL rule of the CRD, said in Python and keyed by its message, or by its messageExpression for a
# rule whose message is built from the value (tests check none is missing). The constants and helpers
# are the models' own, so the words are the ones controller/api builds its rules and refusals from.
@dataclass(frozen=True)
class CelCheck:
    """One CEL rule offline: whether it holds for a value and, for a messageExpression, what it says."""

    holds: Callable[[Any], bool]
    says: Callable[[Any], str] | None = None


def _matches(pattern: str, value: str) -> bool:
    """CEL's `matches`: an RE2 search, where `$` is the end of the text and `\\d` an ASCII digit."""
    if pattern.endswith("$"):
        pattern = pattern[:-1] + r"\Z"
    return re.search(pattern, value, re.ASCII) is not None


def _tag_like(v: str) -> bool:
    return v[:1] in ("v", "V") and _matches(SEMVER_PATTERN, v[1:])


def _quoted(hint: str, sep: str = " ") -> str:
    """The messageExpression `"'" + self + "' <hint>"` the models write for a refused string."""
    return f"\"'\" + self + \"'{sep}{hint}\""


# The rule on backend that the image's tag is backend.version (controller.api.release.Backend).
_TAG_MISMATCH_EXPRESSION = (
    "'image tag ' + self.image.substring(self.image.lastIndexOf(':') + 1) + ' is not backend.version ' + self.version"
    " + ': write the image as ...:' + self.version + ', or set backend.imageTagIsVersion: false if this tag"
    " does not name the version'")


def _steps_sorted(v: Any) -> bool:
    weights = [s["setWeight"] for s in v if isinstance(s, dict) and "setWeight" in s]
    return weights == sorted(weights)


def _preview_before_weight(v: Any) -> bool:
    steps = [s for s in v if isinstance(s, dict)]
    previews = [i for i, s in enumerate(steps) if "preview" in s]
    weighted = [i for i, s in enumerate(steps) if isinstance(s.get("setWeight"), int) and s["setWeight"] > 0]
    return len(previews) <= 1 and (not previews or not weighted or previews[0] < weighted[0])


def _traffic_needed(v: Any) -> bool:
    strategy = v.get("strategy") or {}
    kind, change = strategy.get("type", "Auto"), strategy.get("changeClass")
    needs = kind in ("Canary", "BlueGreen") or (kind == "Auto" and change in ("api", "infrastructure"))
    backend = v.get("backend") or {}
    several = any(isinstance(s, dict) and "traffic" in s for s in backend.get("services") or [])
    return not needs or "traffic" in backend or several or (backend.get("ecs") or {}).get("mode") == "Native"


def _preview_reaches_cloudfront(v: Any) -> bool:
    frontend, strategy = v.get("frontend"), v.get("strategy")
    if not isinstance(frontend, dict) or "canary" not in frontend or not isinstance(strategy, dict):
        return True
    canary, blue_green = strategy.get("canary") or {}, strategy.get("blueGreen") or {}
    headers = [s["preview"].get("header") or {} for s in canary.get("steps") or []
               if isinstance(s, dict) and isinstance(s.get("preview"), dict)]
    if isinstance(blue_green.get("previewHeader"), dict):
        headers.append(blue_green["previewHeader"])
    return all(not isinstance(h, dict) or "name" not in h or str(h["name"]).lower().startswith(CLOUDFRONT_HEADER_PREFIX)
               for h in headers)


def _requires_backend_judged(v: Any) -> bool:
    frontend, backend = v.get("frontend") or {}, v.get("backend") or {}
    return "requiresBackend" not in frontend or backend.get("imageTagIsVersion", True) is not False


def _tag_is_version(v: Any) -> bool:
    if "image" not in v:
        return True  # backend.services: each service's image is judged by `_service_tags`
    image, version = v["image"], v["version"]
    return (v.get("imageTagIsVersion", True) is False or "@" in image or version[:1] in ("v", "V")
            or not _matches(IMAGE_TAG, image) or image.endswith(":" + version))


def _one_form(v: Any) -> bool:
    return "services" not in v or not any(k in v for k in ("image", "ecs", "traffic"))


def _services(v: Any) -> list[dict[str, Any]]:
    return [s for s in v.get("services") or [] if isinstance(s, dict)]


def _unique(v: Any, key: Callable[[dict[str, Any]], Any], only: Callable[[dict[str, Any]], bool] = lambda s: True) -> bool:
    keys = [key(s) for s in _services(v) if only(s)]
    return len(keys) == len(set(keys))


def _after_known(v: Any) -> bool:
    names = {s.get("name") for s in _services(v)}
    return all(a != s.get("name") and a in names for s in _services(v) for a in s.get("after") or [])


def _service_tags(v: Any) -> bool:
    version = v["version"]
    if "services" not in v or v.get("imageTagIsVersion", True) is False or version[:1] in ("v", "V"):
        return True
    return all("@" in s["image"] or not _matches(IMAGE_TAG, s["image"]) or s["image"].endswith(":" + version)
               for s in _services(v))


def _deadline_positive(v: str) -> bool:
    return not v.startswith("-") and (not _matches(DURATION_PATTERN, v) or parse_duration(v) > timedelta(0))


CEL_CHECKS: dict[str, CelCheck] = {
    # spec.notifications, spec.hooks
    "a notification has exactly one of webhook or eventBridge":
        CelCheck(lambda v: ("webhook" in v) != ("eventBridge" in v)),
    HOOK_KIND_HINT: CelCheck(lambda v: ("webhook" in v) != ("ecsTask" in v)),
    "a webhook hook has exactly one of url or urlSecretRef": CelCheck(lambda v: ("url" in v) != ("urlSecretRef" in v)),
    CANARY_STEP_KIND_HINT: CelCheck(lambda v: sum(k in v for k in ("setWeight", "pause", "preview")) == 1),
    PREVIEW_BEFORE_WEIGHT_HINT: CelCheck(_preview_before_weight),
    FRONTEND_PREVIEW_HINT: CelCheck(lambda v: all(not isinstance(s, dict) or "preview" not in s for s in v)),
    "canary weights must not decrease from one setWeight step to the next": CelCheck(_steps_sorted),
    "a frontend canary weight is at most 15 (CloudFront continuous deployment)":
        CelCheck(lambda v: all(not isinstance(s, dict) or s.get("setWeight", 0) <= 15 for s in v)),
    f"steps {CANARY_EMPTY_HINT}": CelCheck(lambda v: len(v) > 0),
    f"steps {FRONTEND_CANARY_EMPTY_HINT}": CelCheck(lambda v: len(v) > 0),
    f"steps {ROLLING_EMPTY_HINT}": CelCheck(lambda v: len(v) > 0),
    "rolling steps must not decrease": CelCheck(lambda v: list(v) == sorted(v)),
    "strategy Auto needs changeClass": CelCheck(lambda v: v.get("type", "Auto") != "Auto" or "changeClass" in v),
    "a metric has exactly one provider: prometheus, cloudwatch or http":
        CelCheck(lambda v: sum(k in v for k in ("prometheus", "cloudwatch", "http")) == 1),
    "prometheus.address: put the credentials in the Secret of prometheus.auth, not in the address":
        CelCheck(lambda v: "auth" not in v or not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*@", str(v.get("address", "")))),
    "prometheus.auth: Basic and Bearer read a secretRef; SigV4 signs with the Release's AWS credentials "
    "and takes none": CelCheck(lambda v: (v.get("type", "Basic") == "SigV4") != ("secretRef" in v)),
    "prometheus.auth.region: only SigV4 signs for a region":
        CelCheck(lambda v: v.get("type", "Basic") == "SigV4" or "region" not in v),
    "Canary and BlueGreen need backend.traffic (an ALB listener with two target groups), "
    "or backend.ecs.mode: Native (ECS shifts the traffic itself)": CelCheck(_traffic_needed),
    REQUIRES_TAG_HINT: CelCheck(_requires_backend_judged),
    CLOUDFRONT_PREVIEW_HINT: CelCheck(_preview_reaches_cloudfront),
    # backend: the image's tag is backend.version
    _TAG_MISMATCH_EXPRESSION:
        CelCheck(_tag_is_version, lambda v: image_tag_mismatch(v["image"], v["version"])),
    # backend: one service or several, and the rules of a tier of several
    BACKEND_FORM_HINT: CelCheck(_one_form),
    BACKEND_IMAGE_REQUIRED: CelCheck(lambda v: "services" in v or "image" in v),
    BACKEND_ECS_REQUIRED: CelCheck(lambda v: "services" in v or "ecs" in v),
    SERVICE_NAMES_HINT: CelCheck(lambda v: _unique(v, lambda s: s.get("name"))),
    SERVICE_AFTER_HINT: CelCheck(_after_known),
    SERVICE_TAGS_HINT: CelCheck(_service_tags),
    SERVICE_ECS_HINT: CelCheck(lambda v: _unique(v, lambda s: (s["ecs"]["cluster"], s["ecs"]["service"]))),
    SERVICE_LISTENER_HINT: CelCheck(lambda v: _unique(v, lambda s: s["traffic"]["listenerArn"], lambda s: "traffic" in s)),
    # backend.image
    IMAGE_LATEST_HINT: CelCheck(lambda v: not v.endswith(":latest")),
    _quoted(IMAGE_TAG_HINT): CelCheck(
        lambda v: v.endswith(":latest") or _matches(IMAGE_DIGEST, v) or _matches(IMAGE_TAG, v),
        lambda v: f"'{v}' {IMAGE_TAG_HINT}"),
    # backend.version, frontend.version
    "'write ' + self.substring(1) + ', not ' + self": CelCheck(lambda v: not _tag_like(v), leading_v_hint),
    _quoted(SEMVER_HINT): CelCheck(
        lambda v: _matches(SEMVER_PATTERN, v) or _tag_like(v), lambda v: f"'{v}' {SEMVER_HINT}"),
    # frontend.requiresBackend
    RANGE_V_HINT: CelCheck(lambda v: not _matches(RANGE_LEADING_V, v)),
    _quoted(RANGE_HINT, ": "): CelCheck(
        lambda v: _matches(RANGE_LEADING_V, v) or _matches(RANGE_PATTERN, v), lambda v: f"'{v}': {RANGE_HINT}"),
    # progressDeadline
    _quoted(DURATION_HINT): CelCheck(
        lambda v: v.startswith("-") or _matches(DURATION_PATTERN, v), lambda v: f"'{v}' {DURATION_HINT}"),
    PROGRESS_DEADLINE_HINT: CelCheck(_deadline_positive),
}


def _rule_key(rule: dict[str, Any]) -> str:
    return str(rule["message"] if "message" in rule else rule["messageExpression"])


def _cel(value: Any, schema: dict[str, Any], at: list[str | int], out: list[str]) -> bool:
    """The schema's `x-kubernetes-validations`, bottom up; whether this part of the object is sound.

    The API server runs no CEL rule once a field is missing, mistyped or out of an enum, and would
    report the rest only on the next try; offline, each rule runs where its part of the object is
    sound (structurally, and no rule below it refused it), so one run reports what it can and no
    rule speaks about a part already refused (a tag compared with a version that is not one)."""
    sound = True
    if isinstance(value, list):
        for i, item in enumerate(value):
            sound = _cel(item, schema.get("items", {}), [*at, i], out) and sound
    elif isinstance(value, dict):
        for key, sub in value.items():
            if key in schema.get("properties", {}):
                sound = _cel(sub, schema["properties"][key], [*at, key], out) and sound
    structural: list[str] = []
    _structural(value, schema, at, structural)
    if not sound or structural:
        return False
    for rule in schema.get("x-kubernetes-validations", []):
        check = CEL_CHECKS.get(_rule_key(rule))
        if check is None:
            raise AssertionError(f"no offline check for the CEL rule {_rule_key(rule)!r}")
        if not check.holds(value):
            message = check.says(value) if check.says else rule["message"]
            # The API server names the type of the value the rule is on, even with a fieldPath.
            out.append(f"{_path(at)}{rule.get('fieldPath', '')}: Invalid value: \"{schema.get('type', 'object')}\": {message}")
            sound = False
    return sound


def cel_messages(schema: dict[str, Any]) -> Iterator[str]:
    """Every CEL rule of a schema by its message, or its messageExpression (for the test that each
    has an offline check)."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield _rule_key(rule)
    for sub in schema.get("properties", {}).values():
        yield from cel_messages(sub)
    if isinstance(schema.get("items"), dict):
        yield from cel_messages(schema["items"])


def _flag_value_ok(value: Any) -> bool:
    """The policy's shape of a flag. A whole float counts as an int: kubectl sends 50.0 as 50."""
    if isinstance(value, bool):
        return True
    if not isinstance(value, dict) or not set(value) <= {"enabled", "rolloutPercent"}:
        return False
    percent = value.get("rolloutPercent", 100)
    whole = isinstance(percent, int) and not isinstance(percent, bool) or isinstance(percent, float) and percent.is_integer()
    return isinstance(value.get("enabled"), bool) and whole and 0 <= percent <= 100


def flags_policy(spec: Mapping[str, Any]) -> list[str]:
    """The flags ValidatingAdmissionPolicy (manifests/admission) offline: what the API server says
    of a spec its CRD schema accepted, the first failing rule only, as it does."""
    flags = spec.get("featureFlags") or {}
    if not isinstance(flags, dict):
        return []
    long = next((k for k in flags if len(k) > FLAG_NAME_LIMIT), None)
    if long is not None:
        return [f"spec.featureFlags: {FLAG_NAME_TOO_LONG} ({long[:20]}... has {len(long)})"]
    bad = next((k for k, v in flags.items() if not _flag_value_ok(v)), None)
    if bad is not None:
        return [f"spec.featureFlags.{bad}: {FLAG_VALUE_HINT}"]
    size = flags_document_size({k: v if isinstance(v, bool) else FlagRollout.model_validate({
        **v, "rolloutPercent": int(v.get("rolloutPercent", 100))}) for k, v in flags.items()})
    return [f"spec.featureFlags: {flags_too_large(size)}"] if size > SSM_ADVANCED_LIMIT else []


def spec_schema() -> dict[str, Any]:
    return schema_of(ReleaseSpec)


def validate_body(body: Any) -> list[str]:
    """Problems with one Release body, one line each; empty when the API server would accept it."""
    if not isinstance(body, dict):
        return ["a Release must be a mapping"]
    problems: list[str] = []
    meta = body.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        problems.append("metadata.name: Required value: name or generateName is required")
    if "spec" not in body:
        return [*problems, "spec: Required value"]
    schema = spec_schema()
    structural: list[str] = []
    _structural(body["spec"], schema, ["spec"], structural)
    problems += structural
    _cel(body["spec"], schema, ["spec"], problems)
    if not problems:  # the admission policy sees only what the CRD accepted
        problems += flags_policy(body["spec"])
    if not problems:
        try:
            ReleaseSpec.model_validate(body["spec"])
        except ValidationError as exc:
            problems += explain(exc.errors()).split("; ")
    return problems


def validate_text(text: str) -> list[str]:
    """Problems with every Release in a file, each line prefixed with its document number."""
    try:
        bodies = list(release_bodies(text))
    except yaml.YAMLError as exc:
        return [f"not YAML: {exc}".replace("\n", " ")]
    if not bodies:
        return ["no Release (apiVersion delivery.pratiko.ai/*, kind Release) in the file"]
    multi = len(list(yaml.safe_load_all(text))) > 1
    return [f"document {i}: {p}" if multi else p for i, body in bodies for p in validate_body(body)]

