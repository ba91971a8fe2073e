"""Fixtures for end-to-end tests against the real local kube-apiserver (see tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Kubectl:
    env: dict[str, str]

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["kubectl", *args], input=stdin, env=self.env, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc


@pytest.fixture(scope="session")
def env_vars(local_env) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {**os.environ, **local_env.env_vars()}


@pytest.fixture(scope="session")
def kubectl(env_vars: dict[str, str]) -> Kubectl:
    return Kubectl(env_vars)


@pytest.fixture(scope="session")
def crd_installed(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", str(ROOT / "crds" / "release.yaml"))
    kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/releases.delivery.pratiko.ai")


_counter = iter(range(1, 10_000))


@pytest.fixture()
def namespace(kubectl: Kubectl, crd_installed: None) -> Iterator[str]:
    name = f"test-{os.getpid()}-{next(_counter)}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)
