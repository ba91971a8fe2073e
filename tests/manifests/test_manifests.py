"""`validate` and `set-version` on manifest files, offline.

`validate` must refuse each bad input the API server refuses (the cases of
tests/e2e/test_crd_validation.py) naming the same field, and accept every example; `set-version`
must leave a commented multi-document file byte-identical outside the values it changes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controller.cli import app
from controller.manifests import CEL_CHECKS, ManifestError, cel_messages, set_version, spec_schema, validate_text
from tests.e2e.test_crd_validation import ACCEPTED, BAD_INPUTS, EXAMPLE, HINTED

ROOT = Path(__file__).resolve().parents[2]


def _text(body: dict[str, Any]) -> str:
    body = copy.deepcopy(body)
    body["metadata"] = {"name": "pratiko", "namespace": "production"}
    return yaml.safe_dump(body)


@pytest.mark.parametrize(("case", "mutate", "expected"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_validate_refuses_what_the_api_server_refuses_naming_the_field(
    case: str, mutate: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    body = copy.deepcopy(EXAMPLE)
    mutate(body)
    problems = validate_text(_text(body))
    assert problems, f"{case} was accepted"
    for fragment in expected:
        assert any(fragment in p for p in problems), f"{case}: {fragment!r} not in {problems!r}"


@pytest.mark.parametrize(("case", "mutate", "field", "hints"), HINTED, ids=[c[0] for c in HINTED])
def test_validate_refuses_with_the_field_and_what_to_write(
    case: str, mutate: Callable[[dict[str, Any]], None], field: str, hints: list[str]
) -> None:
    body = copy.deepcopy(EXAMPLE)
    mutate(body)
    problems = validate_text(_text(body))
    assert any(p.startswith(field + ":") and all(h in p for h in hints) for p in problems), f"{case}: {problems!r}"
    assert not any("should match" in p for p in problems), f"{case}: refused with a regular expression: {problems!r}"


@pytest.mark.parametrize(("case", "mutate"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_validate_accepts_the_near_misses(case: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    body = copy.deepcopy(EXAMPLE)
    mutate(body)
    assert validate_text(_text(body)) == []


@pytest.mark.parametrize("path", sorted((ROOT / "manifests/examples").glob("*.yaml")), ids=lambda p: p.name)
def test_validate_accepts_every_example(path: Path) -> None:
    assert validate_text(path.read_text()) == []


def test_every_cel_rule_of_the_crd_has_an_offline_check() -> None:
    assert set(cel_messages(spec_schema())) <= set(CEL_CHECKS)


def test_validate_cli_prints_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text((ROOT / "manifests/examples/canary.yaml").read_text())
    body = copy.deepcopy(EXAMPLE)
    body["spec"]["backend"]["version"] = "1.4"
    del body["spec"]["environment"]
    bad.write_text(_text(body))
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(good)])
    assert ok.exit_code == 0, ok.output
    out = runner.invoke(app, ["validate", str(good), str(bad)])
    assert out.exit_code == 1
    lines = out.output.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{bad}: spec.") for line in lines)
    assert any("spec.backend.version" in line for line in lines)
    assert any("spec.environment: Required value" in line for line in lines)


MANIFEST = """\
# Releases of pratiko. CI edits the versions; people edit the rest.
apiVersion: v1
kind: ConfigMap
metadata: {name: notes, namespace: production}
data:
  version: 1.4.0   # not a Release: must not change
---
apiVersion: delivery.pratiko.ai/v1alpha1
kind: Release
metadata:
  name: pratiko        # one per environment
  namespace: production
spec:
  environment: production

  backend:
    version: '1.4.0'   # quoted on purpose
    image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:1.4.0
    ecs: {cluster: pratiko-production, service: pratiko-backend, containerName: api}
    traffic:
      listenerArn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/pratiko/1/2
      stableTargetGroupArn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/blue/1
      canaryTargetGroupArn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/2
  frontend:
    version: "2.1.0"
    cloudfront: {distributionId: E2ABC, originId: web}
  strategy:
    type: Auto   # the class decides
    changeClass: minor
---
# trailing document comment
"""


def test_set_version_changes_only_the_values(tmp_path: Path) -> None:
    file = tmp_path / "release.yaml"
    file.write_text(MANIFEST)
    result = CliRunner().invoke(app, [
        "set-version", str(file), "--backend", "1.5.0",
        "--image", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:1.5.0",
        "--frontend", "2.2.0", "--change-class", "api",
    ])
    assert result.exit_code == 0, result.output
    expected = (MANIFEST.replace("version: '1.4.0'", "version: '1.5.0'")
                .replace("pratiko-backend:1.4.0", "pratiko-backend:1.5.0")
                .replace('version: "2.1.0"', 'version: "2.2.0"')
                .replace("changeClass: minor", "changeClass: api"))
    assert file.read_text() == expected
    assert validate_text(file.read_text()) == []


def test_set_version_adds_a_missing_change_class_as_a_line_of_its_mapping() -> None:
    text = MANIFEST.replace("    changeClass: minor\n", "").replace("type: Auto", "type: Canary")
    out = set_version(text, change_class="api")
    assert out == text.replace("    type: Canary   # the class decides\n",
                               "    type: Canary   # the class decides\n    changeClass: api\n")


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"backend": "1.5"}, "spec.backend.version"),
    ({"change_class": "huge"}, "spec.strategy.changeClass: Unsupported value"),
    ({}, "nothing to set"),
])
def test_set_version_refuses_a_result_that_would_not_validate(kwargs: dict[str, str], fragment: str, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=None) as info:
        set_version(MANIFEST, **kwargs)
    assert fragment in str(info.value)
    file = tmp_path / "release.yaml"
    file.write_text(MANIFEST)
    args = [f"--{k.replace('_', '-')}={v}" for k, v in kwargs.items()]
    result = CliRunner().invoke(app, ["set-version", str(file), *args])
    assert result.exit_code == 1 and file.read_text() == MANIFEST


def test_set_version_finds_the_release_by_name_among_several() -> None:
    other = MANIFEST.split("---\n")[1].replace("name: pratiko ", "name: other   ")
    text = MANIFEST + "---\n" + other
    with pytest.raises(ManifestError, match="2 Releases match"):
        set_version(text, backend="1.5.0")
    # The image's tag is backend.version (a CEL rule), so the image moves with it, as CI sets both.
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:1.5.0"
    out = set_version(text, backend="1.5.0", image=image, name="other", namespace="production")
    assert out == MANIFEST + "---\n" + other.replace("'1.4.0'", "'1.5.0'").replace("pratiko-backend:1.4.0", "pratiko-backend:1.5.0")


def test_validate_warns_when_an_analysed_pause_is_shorter_than_min_samples_runs(tmp_path: Path) -> None:
    body = copy.deepcopy(EXAMPLE)
    body["spec"]["strategy"] = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "10s"}}]}}
    body["spec"]["analysis"] = {"interval": "10s", "minSamples": 3, "metrics": [
        {"name": "error-rate", "max": 0.05, "prometheus": {"address": "http://prometheus:9090", "query": "q"}}]}
    path = tmp_path / "short.yaml"
    path.write_text(_text(body))
    out = CliRunner().invoke(app, ["validate", str(path)])
    assert out.exit_code == 0, out.output  # a warning, not a problem
    assert out.output.strip() == (f"{path}: warning: step 2/2 (Pause 10s) is shorter than analysis.minSamples x "
                                  "analysis.interval (3 x 10s = 30s): it lasts at least 30s, waiting for the analysis")


def test_set_version_of_a_tier_retags_each_services_image_of_the_old_version() -> None:
    text = (ROOT / "manifests/examples/many-services.yaml").read_text()
    out = set_version(text, backend="2.1.0")
    assert out == text.replace("version: 2.0.0", "version: 2.1.0").replace(":2.0.0\n", ":2.1.0\n")
    assert out.count(":2.1.0\n") == 3 and validate_text(out) == []
    with pytest.raises(ManifestError, match="give --backend only"):
        set_version(text, backend="2.1.0", image="r/x:2.1.0")
