"""The API server itself refuses bad Releases, with a message that names the field.

Runs against the real kube-apiserver built from Go modules; `kubectl apply` is what a user types.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import Kubectl

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((ROOT / "manifests/examples/canary.yaml").read_text())


def _apply(kubectl: Kubectl, namespace: str, body: dict[str, Any]) -> Any:
    body = copy.deepcopy(body)
    body["metadata"] = {"name": "pratiko", "namespace": namespace}
    return kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body), check=False)


def test_valid_release_is_accepted_and_listed_with_columns(kubectl: Kubectl, namespace: str) -> None:
    proc = _apply(kubectl, namespace, EXAMPLE)
    assert proc.returncode == 0, proc.stderr
    table = kubectl("get", "rel", "-n", namespace).stdout
    header = table.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "BACKEND", "LIVE", "FRONTEND", "WEIGHT", "SERVING", "STEP", "AGE"]
    row = table.splitlines()[1].split()
    assert row[0] == "pratiko" and "1.4.0" in row and "2.1.0" in row


def test_every_example_is_accepted(kubectl: Kubectl, namespace: str) -> None:
    for path in sorted((ROOT / "manifests/examples").glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        body["metadata"] = {"name": path.stem, "namespace": namespace}
        proc = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body), check=False)
        assert proc.returncode == 0, f"{path.name}: {proc.stderr}"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        node: Any = body
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[leaf]
        elif leaf.isdigit():
            node[int(leaf)] = value
        else:
            node[leaf] = value

    return mutate


_DELETE = object()

TIER = yaml.safe_load((ROOT / "manifests/examples/many-services.yaml").read_text())["spec"]["backend"]


def _tier(change: Callable[[dict[str, Any]], None] | None = None) -> Callable[[dict[str, Any]], None]:
    """The example's backend replaced by the three services of many-services.yaml, then `change`d."""
    def mutate(body: dict[str, Any]) -> None:
        body["spec"]["backend"] = copy.deepcopy(TIER)
        body["spec"]["frontend"].pop("requiresBackend")  # (a tier's version is 2.0.0)
        if change is not None:
            change(body["spec"]["backend"])
    return mutate


BAD_INPUTS = [
    ("services-and-image", _tier(lambda b: b.update(image=TIER["services"][0]["image"])),
     ["spec.backend", "or several (services), not both"]),
    ("services-name-twice", _tier(lambda b: b["services"][1].update(name="api")),
     ["spec.backend", "each service has a name of its own"]),
    ("services-after-unknown", _tier(lambda b: b["services"][1].update(after=["web"])),
     ["spec.backend", "after names other services of this Release"]),
    ("services-after-itself", _tier(lambda b: b["services"][1].update(after=["mcp"])),
     ["spec.backend", "after names other services of this Release"]),
    ("services-tag-not-version", _tier(lambda b: b["services"][2].update(image=b["services"][2]["image"].replace(
        "2.0.0", "1.9.0"))), ["spec.backend", "each image's tag is backend.version"]),
    ("services-one-ecs-service", _tier(lambda b: b["services"][2].update(ecs=b["services"][1]["ecs"])),
     ["spec.backend", "two services name one ECS service"]),
    ("services-one-listener", _tier(lambda b: b["services"][1]["traffic"].update(
        listenerArn=b["services"][0]["traffic"]["listenerArn"])), ["spec.backend", "two services name one listener"]),
    ("services-name-not-a-label", _tier(lambda b: b["services"][2].update(name="Worker_1")),
     ["spec.backend.services[2].name"]),
    ("services-image-latest", _tier(lambda b: b["services"][2].update(image="repo/worker:latest")),
     ["spec.backend.services[2].image", "not :latest"]),
    ("unknown-strategy", _set("spec.strategy.type", "YOLO"), ["spec.strategy.type", "Unsupported value"]),
    ("weight-over-100", _set("spec.strategy.canary.steps.0.setWeight", 150), ["spec.strategy.canary.steps[0].setWeight", "100"]),
    ("weight-negative", _set("spec.strategy.canary.steps.0.setWeight", -1), ["spec.strategy.canary.steps[0].setWeight", "0"]),
    ("version-not-semver", _set("spec.backend.version", "1.4"), ["spec.backend.version"]),
    ("frontend-version-not-semver", _set("spec.frontend.version", "v2"), ["spec.frontend.version"]),
    ("step-of-unknown-kind", _set("spec.strategy.canary.steps.0", {"analysis": {}}),
     ['unknown field "spec.strategy.canary.steps[0].analysis"']),
    ("step-neither-weight-nor-pause", _set("spec.strategy.canary.steps.0", {}),
     ["spec.strategy.canary.steps[0]", "exactly one of setWeight, pause or preview"]),
    ("step-both-weight-and-pause", _set("spec.strategy.canary.steps.0", {"setWeight": 5, "pause": {}}),
     ["spec.strategy.canary.steps[0]", "exactly one of setWeight, pause or preview"]),
    ("step-both-weight-and-preview", _set("spec.strategy.canary.steps.0", {"setWeight": 5, "preview": {"duration": "1m"}}),
     ["spec.strategy.canary.steps[0]", "exactly one of setWeight, pause or preview"]),
    ("preview-after-weight", _set("spec.strategy.canary.steps.1", {"preview": {"duration": "1m"}}),
     ["spec.strategy.canary.steps", "a preview step comes before any setWeight above 0"]),
    ("preview-header-wildcard", _set("spec.strategy.canary.steps.0", {"preview": {"duration": "1m", "header": {"value": "2.*"}}}),
     ["spec.strategy.canary.steps[0].preview.header.value"]),
    ("negative-duration", _set("spec.strategy.canary.steps.1.pause.duration", "-5s"),
     ["spec.strategy.canary.steps[1].pause.duration"]),
    ("bad-duration", _set("spec.analysis.interval", "10 seconds"), ["spec.analysis.interval"]),
    ("missing-image", _set("spec.backend.image", _DELETE), ["spec.backend.image", "Required value"]),
    ("missing-backend", _set("spec.backend", _DELETE), ["spec.backend", "Required value"]),
    ("missing-environment", _set("spec.environment", _DELETE), ["spec.environment", "Required value"]),
    ("weights-decrease", _set("spec.strategy.canary.steps.2.setWeight", 5),
     ["spec.strategy.canary.steps", "must not decrease"]),
    ("auto-without-change-class", _set("spec.strategy.type", "Auto"), ["spec.strategy", "changeClass"]),
    ("canary-without-traffic", _set("spec.backend.traffic", _DELETE), ["spec.backend.traffic", "Canary and BlueGreen"]),
    ("frontend-canary-over-15", _set("spec.frontend.canary", {"steps": [{"setWeight": 20}]}),
     ["spec.frontend.canary.steps", "at most 15"]),
    ("bad-requires-backend", _set("spec.frontend.requiresBackend", "newest"), ["spec.frontend.requiresBackend"]),
    ("metric-without-provider", _set("spec.analysis.metrics.0", {"name": "x", "max": 1}),
     ["spec.analysis.metrics[0]", "exactly one provider"]),
    ("cloudwatch-expression-too-long", _set("spec.analysis.metrics", [{
        "name": "p99", "max": 1, "cloudwatch": {"metricDataQueries": [{"id": "q", "expression": "x" * 5000}]}}]),
     ["spec.analysis.metrics[0].cloudwatch.metricDataQueries[0].expression", "2048"]),
]


@pytest.mark.parametrize(("case", "mutate", "expected"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_rejected_naming_the_field(
    kubectl: Kubectl, namespace: str, case: str, mutate: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    body = copy.deepcopy(EXAMPLE)
    mutate(body)
    proc = _apply(kubectl, namespace, body)
    assert proc.returncode != 0, f"{case} was accepted"
    for fragment in expected:
        assert fragment in proc.stderr, f"{case}: {fragment!r} not in {proc.stderr!r}"
    assert kubectl("get", "rel", "-n", namespace, "-o", "name").stdout.strip() == ""


# --------------------------------------------------------------------------- refusals with a hint
#
# Each input a new user gets wrong: the API server refuses it naming the field and saying what to
# write instead, and the pydantic models (what the controller and offline validation use) refuse it
# with the same words.

_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend"

HINTED = [
    ("empty-canary-steps", _set("spec.strategy.canary.steps", []),
     "spec.strategy.canary.steps", ["steps is empty", "write at least one step", "leave steps out"]),
    ("empty-frontend-canary-steps", _set("spec.frontend.canary", {"steps": []}),
     "spec.frontend.canary.steps", ["steps is empty", "leave frontend.canary out for an atomic switch"]),
    ("empty-rolling-steps", _set("spec.strategy", {"type": "Rolling", "rolling": {"steps": []}}),
     "spec.strategy.rolling.steps", ["steps is empty", "write at least one percentage"]),
    ("zero-progress-deadline", _set("spec.progressDeadline", "0s"),
     "spec.progressDeadline", ["must be more than 0s", "e.g. 10m"]),
    ("negative-progress-deadline", _set("spec.progressDeadline", "-5m"),
     "spec.progressDeadline", ["must be more than 0s", "e.g. 10m"]),
    ("progress-deadline-not-a-duration", _set("spec.progressDeadline", "ten minutes"),
     "spec.progressDeadline", ["'ten minutes' is not a duration like 30s, 5m, 1h30m or 250ms"]),
    ("image-without-tag", _set("spec.backend.image", _IMAGE),
     "spec.backend.image", ["has no tag or digest", "repo:1.4.0", "repo@sha256:"]),
    ("image-registry-port-but-no-tag", _set("spec.backend.image", "registry.local:5000/pratiko-backend"),
     "spec.backend.image", ["has no tag or digest"]),
    ("image-latest", _set("spec.backend.image", f"{_IMAGE}:latest"),
     "spec.backend.image", ["not :latest", "repo:1.4.0"]),
    ("image-tag-is-not-the-version", _set("spec.backend.image", f"{_IMAGE}:1.4.O"),
     "spec.backend.image", ["image tag 1.4.O is not backend.version 1.4.0", "...:1.4.0",
                            "backend.imageTagIsVersion: false"]),
    ("version-with-leading-v", _set("spec.backend.version", "v1.4.0"),
     "spec.backend.version", ["write 1.4.0, not v1.4.0"]),
    ("frontend-version-with-leading-v", _set("spec.frontend.version", "v2.1.0"),
     "spec.frontend.version", ["write 2.1.0, not v2.1.0"]),
    ("version-not-semver-hint", _set("spec.backend.version", "1.4"),
     "spec.backend.version", ["must be a semantic version MAJOR.MINOR.PATCH, like 1.4.0"]),
    ("v-but-not-a-version", _set("spec.frontend.version", "v2"),
     "spec.frontend.version", ["'v2' must be a semantic version MAJOR.MINOR.PATCH, like 1.4.0"]),
    ("requires-backend-leading-v", _set("spec.frontend.requiresBackend", ">=v1.4.0"),
     "spec.frontend.requiresBackend", ["without a leading v", ">=1.4.0, not >=v1.4.0"]),
    ("requires-backend-not-a-range", _set("spec.frontend.requiresBackend", "newest"),
     "spec.frontend.requiresBackend", ["write comparisons separated by commas, like >=1.4.0,<2.0.0"]),
    ("requires-backend-without-tag-version", lambda b: b["spec"]["backend"].update(
        image=f"{_IMAGE}:0a1b2c3", imageTagIsVersion=False),
     "spec.frontend.requiresBackend", ["backend.imageTagIsVersion: false", "leave requiresBackend out"]),
    ("preview-header-cloudfront-cannot-route", lambda b: _preview_with_frontend_canary(b, "X-Release-Preview"),
     "spec.strategy", ["with frontend.canary", "only routes by a name starting with aws-cf-cd-",
                       "leave header.name out"]),
    ("blue-green-preview-header-cloudfront-cannot-route", lambda b: (
        b["spec"]["frontend"].update(canary={"steps": [{"setWeight": 5}]}),
        b["spec"].update(strategy={"type": "BlueGreen", "blueGreen": {"previewHeader": {"name": "x-preview"}}})),
     "spec.strategy", ["only routes by a name starting with aws-cf-cd-"]),
]


def _preview_with_frontend_canary(body: dict[str, Any], name: str | None, canary: bool = True) -> None:
    """A preview step (its header named `name`, or the default) before the canary's steps; a frontend canary."""
    header = {"header": {"name": name}} if name else {}
    body["spec"]["strategy"]["canary"]["steps"].insert(0, {"preview": {"duration": "1m", **header}})
    if canary:
        body["spec"]["frontend"]["canary"] = {"steps": [{"setWeight": 5}, {"pause": {"duration": "1m"}}]}


@pytest.mark.parametrize(("case", "mutate", "field", "hints"), HINTED, ids=[c[0] for c in HINTED])
def test_refused_with_the_field_and_what_to_write(
    kubectl: Kubectl, namespace: str, case: str, mutate: Callable[[dict[str, Any]], None], field: str,
    hints: list[str],
) -> None:
    body = copy.deepcopy(EXAMPLE)
    mutate(body)
    proc = _apply(kubectl, namespace, body)
    assert proc.returncode != 0, f"{case} was accepted"
    assert field in proc.stderr, f"{case}: {field!r} not in {proc.stderr!r}"
    for hint in hints:
        assert hint in proc.stderr, f"{case}: {hint!r} not in {proc.stderr!r}"
    assert "should match" not in proc.stderr, f"{case}: refused with a regular expression: {proc.stderr}"
    assert kubectl("get", "rel", "-n", namespace, "-o", "name").stdout.strip() == ""


@pytest.mark.parametrize(("case", "mutate", "field", "hints"), HINTED, ids=[c[0] for c in HINTED])
def test_models_refuse_the_same_with_the_same_words(
    case: str, mutate: Callable[[dict[str, Any]], None], field: str, hints: list[str]
) -> None:
    from pydantic import ValidationError

    from controller.api.release import ReleaseSpec
    from controller.api.types import explain

    body = copy.deepcopy(EXAMPLE)
    mutate(body)
    with pytest.raises(ValidationError) as refused:
        ReleaseSpec.model_validate(body["spec"])
    message = explain(list(refused.value.errors()))
    for hint in hints:
        assert hint in message, f"{case}: {hint!r} not in {message!r}"


REFUSED = [(c[0], c[1]) for c in [*BAD_INPUTS, *HINTED]]


@pytest.mark.parametrize(("case", "mutate"), REFUSED, ids=[c[0] for c in REFUSED])
def test_offline_validate_says_what_the_api_server_says(
    kubectl: Kubectl, namespace: str, case: str, mutate: Callable[[dict[str, Any]], None],
) -> None:
    """`release-controller validate` (controller.manifests.edit) gives the API server's own lines: the
    same field path, value type and message, messageExpression rules included."""
    from controller.manifests import validate_body

    body = copy.deepcopy(EXAMPLE)
    mutate(body)
    proc = _apply(kubectl, namespace, body)
    assert proc.returncode != 0, f"{case} was accepted"
    offline = validate_body({**body, "metadata": {"name": "pratiko", "namespace": namespace}})
    assert offline, f"{case}: accepted offline"
    for line in offline:
        assert line in proc.stderr, f"{case}: {line!r} not in {proc.stderr!r}"


ACCEPTED = [
    ("three-services", _tier()),
    ("services-tags-opt-out", _tier(lambda b: (b.update(imageTagIsVersion=False), b["services"][2].update(
        image="repo/worker:0a1b2c3")))),
    ("partial-requires-backend", _set("spec.frontend.requiresBackend", ">=1.4,<2")),
    ("image-by-digest", _set("spec.backend.image", f"{_IMAGE}@sha256:{'a' * 64}")),
    ("image-tag-opt-out", lambda b: (b["spec"]["backend"].update(image=f"{_IMAGE}:0a1b2c3", imageTagIsVersion=False),
                                     b["spec"]["frontend"].pop("requiresBackend"))),
    ("registry-with-port", _set("spec.backend.image", "registry.local:5000/pratiko-backend:1.4.0")),
    ("canary-without-steps-takes-the-default", _set("spec.strategy.canary", {})),
    ("preview-default-header-with-frontend-canary", lambda b: _preview_with_frontend_canary(b, None)),
    ("preview-cloudfront-header-any-case", lambda b: _preview_with_frontend_canary(b, "AWS-CF-CD-QA")),
    ("preview-any-header-without-frontend-canary", lambda b: _preview_with_frontend_canary(b, "X-Preview", canary=False)),
]


@pytest.mark.parametrize(("case", "mutate"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_near_misses_are_accepted(kubectl: Kubectl, namespace: str, case: str,
                                  mutate: Callable[[dict[str, Any]], None]) -> None:
    from controller.api.release import ReleaseSpec

    body = copy.deepcopy(EXAMPLE)
    mutate(body)
    proc = _apply(kubectl, namespace, body)
    assert proc.returncode == 0, f"{case}: {proc.stderr}"
    ReleaseSpec.model_validate(body["spec"])


def test_flags_over_ssm_limit_are_refused_by_the_api_server_before_any_aws_change(
    operator: Any, kubectl: Kubectl, namespace: str, world: Any, aws: Any,
) -> None:
    """A flags document over SSM's 8 KB: no CRD schema can sum it (values are untyped), so the
    shipped ValidatingAdmissionPolicy (manifests/admission) refuses it with the models' words,
    naming the field, the size and the limit; SSM is untouched. (A Release stored before the policy
    gets Ready=False InvalidSpec from the controller: tests/e2e/test_size.py.)"""
    import json

    from controller.api.release import FlagRollout, flags_document_size, flags_too_large
    from controller.testing.releases import release_for

    flags = {f"flag_{i:03d}_{'x' * 40}": {"enabled": True, "rolloutPercent": 50} for i in range(150)}
    body = release_for(world, name="app", namespace=namespace, version="1.0.0", featureFlags=flags)
    proc = kubectl("apply", "-f", "-", stdin=json.dumps(body), check=False)
    assert proc.returncode != 0, "accepted"
    size = flags_document_size({k: FlagRollout.model_validate(v) for k, v in flags.items()})
    assert f"spec.featureFlags: {flags_too_large(size)}" in proc.stderr, proc.stderr
    assert "over SSM's limit of 8192 bytes" in proc.stderr and "fewer flags or shorter names" in proc.stderr
    assert kubectl("get", "rel", "-n", namespace, "-o", "name").stdout.strip() == ""
    params = aws.ssm.get_parameters(Names=[f"/release-controller/{namespace}/app/flags"])
    assert params["Parameters"] == []
