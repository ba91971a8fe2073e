"""checkov over terraform/, the rendered overlays, the Helm chart (defaults) and the Dockerfile: no
failed check, and every skipped check carries its reason in the file (`#checkov:skip=ID:reason` in Terraform,
`checkov.io/skipN: ID=reason` annotations in manifests).

The overlays are scanned as rendered by kustomize, i.e. exactly what `kubectl apply -k` sends.
checkov runs from its own virtualenv (tests/ship/checkov_env.py); one run takes about 10 s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ship.checkov_env import ATTEMPTS, INSTALL_TIMEOUT
from tests.ship.conftest import OVERLAYS, ROOT
from tests.ship.test_chart import helm, template  # noqa: F401  (helm: a fixture)

# The first test builds checkov's virtualenv with pip when it is not cached (about 35 s on a
# fast index): pip's own timeouts bound it, not pytest's default per-test timeout.
pytestmark = pytest.mark.timeout(ATTEMPTS * INSTALL_TIMEOUT + 300)


def _documents(text: str) -> list[dict[str, Any]]:
    """checkov prints one JSON value per scan group (a list or an object); read them all."""
    decoder = json.JSONDecoder()
    docs: list[dict[str, Any]] = []
    index = 0
    while index < len(text):
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            break
        value, index = decoder.raw_decode(text, index)
        docs.extend(value if isinstance(value, list) else [value])
    return docs


@pytest.fixture(scope="module")
def report(checkov: Path, rendered: dict[str, list[dict[str, Any]]], helm: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    scan = tmp_path_factory.mktemp("checkov-scan")
    for overlay in OVERLAYS:
        (scan / f"{overlay}.yaml").write_text(yaml.safe_dump_all(rendered[overlay]))
    # The Helm chart as `helm template` renders it with its defaults (the overlays' values render
    # what the overlays render: tests/ship/test_chart.py).
    (scan / "chart-defaults.yaml").write_text(yaml.safe_dump_all(template(helm)))
    shutil.copy(ROOT / "Dockerfile", scan / "Dockerfile")
    out = subprocess.run(
        [str(checkov), "-d", str(ROOT / "terraform"), "-d", str(scan),
         "--framework", "terraform", "kubernetes", "dockerfile",
         "-o", "json", "--quiet", "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )
    assert out.returncode in (0, 1), f"checkov crashed ({out.returncode}):\n{out.stderr[-3000:]}"
    by_type: dict[str, dict[str, Any]] = {}
    for doc in _documents(out.stdout):
        by_type[doc["check_type"]] = doc
    return by_type


def test_every_framework_was_scanned(report: dict[str, dict[str, Any]]) -> None:
    assert set(report) == {"terraform", "kubernetes", "dockerfile"}
    for check_type, doc in report.items():
        assert doc["summary"]["parsing_errors"] == 0, check_type
        assert doc["summary"]["resource_count"] > 0, check_type


@pytest.mark.parametrize("check_type", ["terraform", "kubernetes", "dockerfile"])
def test_no_failed_check(report: dict[str, dict[str, Any]], check_type: str) -> None:
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report[check_type]["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("check_type", ["terraform", "kubernetes", "dockerfile"])
def test_every_skip_has_a_reason(report: dict[str, dict[str, Any]], check_type: str) -> None:
    unexplained = [
        f"{c['check_id']} {c['resource']}"
        for c in report[check_type]["results"].get("skipped_checks", [])
        if len((c.get("suppress_comment") or "").strip()) < 20
    ]
    assert not unexplained, f"skips without a reason: {unexplained}"
