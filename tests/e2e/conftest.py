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

SESSION_NAMESPACES = "test-*"
"""The kopf namespace glob the session operator watches. A test that runs its own operator (say, to
kill it) uses `own_namespace`, outside the glob, so no two operators ever act on one Release."""


@pytest.fixture()
def namespace(kubectl: Kubectl, crd_installed: None) -> Iterator[str]:
    name = f"test-{os.getpid()}-{next(_counter)}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture()
def own_namespace(kubectl: Kubectl, crd_installed: None) -> Iterator[str]:
    """A namespace the session operator never watches, for tests that start a dedicated operator."""
    name = f"own-{os.getpid()}-{next(_counter)}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


# --------------------------------------------------------------------------- the operator and AWS

import itertools  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import yaml  # noqa: E402

from controller.aws.clients import AwsClients  # noqa: E402
from controller.testing.aws_world import WorldIds, seed_world  # noqa: E402
from controller.testing.operator import OperatorProcess  # noqa: E402

_worlds = itertools.count(1)


@pytest.fixture(scope="session")
def aws(local_env) -> AwsClients:  # type: ignore[no-untyped-def]
    return AwsClients.from_env(local_env.env_vars())


@pytest.fixture()
def world(aws: AwsClients) -> WorldIds:
    """A fresh ECS service + ALB + CloudFront world in the shared moto, running 1.0.0."""
    return seed_world(aws, name=f"w{os.getpid()}x{next(_worlds)}", image="repo/pratiko-backend:1.0.0")


@pytest.fixture(scope="session")
def operator(env_vars: dict[str, str], crd_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """One operator for the session, watching the `test-*` namespaces, resync every 3 s."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = OperatorProcess(env_vars, namespaces=(SESSION_NAMESPACES,), resync=3.0, log_path=log).start()
    try:
        yield proc
    finally:
        proc.stop()


@dataclass(frozen=True)
class Releases:
    kubectl: Kubectl

    def apply(self, body: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        out = self.kubectl("get", "release", name, "-n", namespace, "-o", "json").stdout
        obj: dict[str, Any] = json.loads(out)
        return obj

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        return self.get(namespace, name).get("status") or {}

    def wait(self, namespace: str, name: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60,
             what: str = "condition") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status(namespace, name)
            if predicate(status):
                return status
            time.sleep(0.5)
        raise AssertionError(f"{namespace}/{name}: {what} not reached in {timeout}s; status: {json.dumps(status, indent=1)}")

    def wait_phase(self, namespace: str, name: str, phase: str, timeout: float = 60, generation: int | None = None) -> dict[str, Any]:
        return self.wait(
            namespace, name,
            lambda s: s.get("phase") == phase and (generation is None or s.get("observedGeneration") == generation),
            timeout, f"phase {phase}",
        )

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        out = self.kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}",
                           "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items


@pytest.fixture(scope="session")
def releases(kubectl: Kubectl) -> Releases:
    return Releases(kubectl)


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})
