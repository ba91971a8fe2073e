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
    assert header == ["NAME", "PHASE", "BACKEND", "FRONTEND", "WEIGHT", "AGE"]
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

BAD_INPUTS = [
    ("unknown-strategy", _set("spec.strategy.type", "YOLO"), ["spec.strategy.type", "Unsupported value"]),
    ("weight-over-100", _set("spec.strategy.canary.steps.0.setWeight", 150), ["spec.strategy.canary.steps[0].setWeight", "100"]),
    ("weight-negative", _set("spec.strategy.canary.steps.0.setWeight", -1), ["spec.strategy.canary.steps[0].setWeight", "0"]),
    ("version-not-semver", _set("spec.backend.version", "1.4"), ["spec.backend.version"]),
    ("frontend-version-not-semver", _set("spec.frontend.version", "v2"), ["spec.frontend.version"]),
    ("step-of-unknown-kind", _set("spec.strategy.canary.steps.0", {"analysis": {}}),
     ['unknown field "spec.strategy.canary.steps[0].analysis"']),
    ("step-neither-weight-nor-pause", _set("spec.strategy.canary.steps.0", {}),
     ["spec.strategy.canary.steps[0]", "exactly one of setWeight or pause"]),
    ("step-both-weight-and-pause", _set("spec.strategy.canary.steps.0", {"setWeight": 5, "pause": {}}),
     ["spec.strategy.canary.steps[0]", "exactly one of setWeight or pause"]),
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
