"""The flags ValidatingAdmissionPolicy (manifests/admission) says the models' limits in the models'
words. Whether the API server then draws the line at the same byte is tests/e2e/test_size.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from controller.api.release import (
    FLAG_NAME_LIMIT,
    FLAG_NAME_TOO_LONG,
    FLAG_VALUE_HINT,
    SSM_ADVANCED_LIMIT,
    flags_too_large,
)
from controller.manifests import validate_body

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "manifests" / "admission" / "release-flags-policy.yaml"


def _policy() -> dict[str, Any]:
    docs = {d["kind"]: d for d in yaml.safe_load_all(POLICY.read_text())}
    policy: dict[str, Any] = docs["ValidatingAdmissionPolicy"]
    assert docs["ValidatingAdmissionPolicyBinding"]["spec"]["policyName"] == policy["metadata"]["name"]
    return policy


def test_the_policy_bounds_names_and_the_document_at_the_models_limits() -> None:
    spec = _policy()["spec"]
    variables = {v["name"]: v["expression"] for v in spec["variables"]}
    assert f"k.size() > {FLAG_NAME_LIMIT}" in variables["longNames"]
    checks = {v["expression"]: v for v in spec["validations"]}
    size = checks[f"variables.documentBytes <= {SSM_ADVANCED_LIMIT}"]
    # The model's message around the byte count, word for word.
    before, after = flags_too_large(123456).split("123456")
    assert f"'spec.featureFlags: {before}' + string(variables.documentBytes)" in size["messageExpression"]
    assert f'"{after}"' in size["messageExpression"]
    names = checks["variables.longNames.size() == 0"]
    assert f"'spec.featureFlags: {FLAG_NAME_TOO_LONG} ('" in names["messageExpression"]
    values = checks["variables.badValues.size() == 0"]
    assert f"': {FLAG_VALUE_HINT}'" in values["messageExpression"]
    assert all(v["reason"] == "Invalid" for v in spec["validations"])


EXAMPLE = yaml.safe_load((ROOT / "manifests" / "examples" / "canary.yaml").read_text())


def _validate(flags: dict[str, Any]) -> list[str]:
    return validate_body({**EXAMPLE, "spec": {**EXAMPLE["spec"], "featureFlags": flags}})


def test_offline_validation_says_what_the_policy_says() -> None:
    """`release-controller validate` runs the policy's rules after the CRD's, one line each, the
    first failing rule only (as the API server reports it), before the models."""
    big = {f"f{i:03d}" + "x" * 120: True for i in range(80)}
    assert _validate(big) == [f"spec.featureFlags: {flags_too_large(10561)}"]
    assert _validate({"a": {"enabled": True, "rolloutPercnt": 5}}) == [f"spec.featureFlags.a: {FLAG_VALUE_HINT}"]
    assert _validate({"x" * 200: True, "a": "no"}) == [
        f"spec.featureFlags: {FLAG_NAME_TOO_LONG} (xxxxxxxxxxxxxxxxxxxx... has 200)"]
    assert _validate({"a": True, "b": {"enabled": False, "rolloutPercent": 5}}) == []


def test_the_policy_judges_creates_and_flag_changes_only() -> None:
    """An UPDATE that leaves the flags alone (the operator's finalizer patch) is not judged, so a
    Release stored before the policy can still be deleted."""
    spec = _policy()["spec"]
    assert spec["matchConstraints"]["resourceRules"][0]["resources"] == ["releases"]  # not releases/status
    (condition,) = spec["matchConditions"]
    assert "request.operation == 'CREATE'" in condition["expression"]
    assert "oldObject.spec.featureFlags" in condition["expression"]
