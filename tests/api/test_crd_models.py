"""The CRD file is generated from the models and must not drift from them."""

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from controller.api.crd import crd, render
from controller.api.release import Release, ReleaseSpec
from controller.api.types import format_duration, parse_duration, satisfies

ROOT = Path(__file__).resolve().parents[2]


def test_crd_file_matches_models() -> None:
    on_disk = (ROOT / "crds" / "release.yaml").read_text()
    assert on_disk == render(), "crds/release.yaml is stale: run `release-controller crds > crds/release.yaml`"


def test_crd_has_the_public_names() -> None:
    spec = crd()["spec"]
    assert spec["group"] == "delivery.pratiko.ai"
    assert spec["names"]["kind"] == "Release" and spec["names"]["plural"] == "releases"
    assert spec["names"]["shortNames"] == ["rel"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    fixed = ["Phase", "Backend", "Frontend", "Weight", "Age"]  # DESIGN.md: present, in this order
    assert [c for c in columns if c in fixed] == fixed
    assert columns == ["Phase", "Backend", "Live", "Frontend", "Weight", "Step", "Age", "Live-Frontend", "Reason"]


def _structural_problems(node: object, path: str = "") -> list[str]:
    """Every schema node must carry a type unless it preserves unknown fields (structural schema rule)."""
    problems: list[str] = []
    if isinstance(node, dict):
        if any(k in node for k in ("$ref", "anyOf", "oneOf", "allOf")):
            problems.append(f"{path}: non-structural keyword")
        if "properties" in node or "items" in node or "additionalProperties" in node:
            if "type" not in node:
                problems.append(f"{path}: no type")
        for key, sub in node.get("properties", {}).items():
            if "type" not in sub and not sub.get("x-kubernetes-preserve-unknown-fields"):
                problems.append(f"{path}.{key}: no type")
            problems += _structural_problems(sub, f"{path}.{key}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                problems += _structural_problems(node[key], f"{path}[{key}]")
    return problems


def test_schema_is_structural() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _structural_problems(schema) == []


@pytest.mark.parametrize("path", sorted((ROOT / "manifests" / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_parse(path: Path) -> None:
    release = Release.model_validate(yaml.safe_load(path.read_text()))
    assert release.spec.backend.version


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("1.5s", 1.5)]
)
def test_durations_round_trip(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


@pytest.mark.parametrize("bad", ["-5s", "5", "five minutes", "", "5d"])
def test_bad_durations_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_model_refuses_non_semver_version() -> None:
    spec = yaml.safe_load((ROOT / "manifests/examples/canary.yaml").read_text())["spec"]
    spec["backend"]["version"] = "1.4"
    with pytest.raises(ValidationError, match="semantic version"):
        ReleaseSpec.model_validate(spec)


@pytest.mark.parametrize(
    ("version", "requirement", "ok"),
    [("1.4.0", ">=1.4.0,<2.0.0", True), ("1.3.9", ">=1.4.0,<2.0.0", False), ("2.0.0", ">=1.4.0,<2.0.0", False),
     ("1.10.0", ">=1.9.0", True),
     # Partial versions, as npm reads them.
     ("1.4.0", ">=1.4", True), ("1.3.9", ">=1.4", False), ("1.4.9", "<=1.4", True), ("1.5.0", "<=1.4", False),
     ("1.4.9", ">1.4", False), ("1.5.0", ">1.4", True), ("1.9.9", "<2", True), ("2.0.0", "<2", False),
     ("1.4.2", "1.4", True), ("1.5.0", "==1.4", False), ("1.4.2", "!=1.4", False), ("1.5.0", "!=1.4", True),
     ("2.3.0", ">=1.4,<3", True), ("1.2.3", "=1.2.3", True)],
)
def test_semver_ranges(version: str, requirement: str, ok: bool) -> None:
    assert satisfies(version, requirement) is ok


def _unbounded(node: dict, path: str) -> list[str]:
    """Paths of the spec schema with no bound: a string without maxLength (or enum), a list without
    maxItems, a map without maxProperties."""
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return []  # featureFlags' values: bounded by the flags ValidatingAdmissionPolicy
    kind = node.get("type")
    if kind == "string":
        return [] if "maxLength" in node or "enum" in node else [path]
    if kind == "array":
        own = [] if "maxItems" in node else [path]
        return own + _unbounded(node.get("items", {}), f"{path}[]")
    if kind == "object":
        found = [p for key, sub in node.get("properties", {}).items() for p in _unbounded(sub, f"{path}.{key}")]
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            found += ([] if "maxProperties" in node else [f"{path}{{}}"]) + _unbounded(extra, f"{path}{{}}")
        return found
    return []


def test_every_spec_value_is_bounded_by_the_schema() -> None:
    """So the largest spec the API server accepts is known (benchmarks/spec_size.py prints it), and
    no field lets a spec grow without a limit."""
    version = yaml.safe_load((ROOT / "crds" / "release.yaml").read_text())["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert _unbounded(spec, "spec") == []
    assert _unbounded({"type": "object", "properties": {"d": {"type": "string"}}}, "x") == ["x.d"]


def test_a_duration_longer_than_the_schema_allows_is_refused_by_the_models() -> None:
    with pytest.raises(ValueError, match="at most 64 characters"):
        parse_duration("1s" * 33)
    assert parse_duration("1s" * 32).total_seconds() == 32
