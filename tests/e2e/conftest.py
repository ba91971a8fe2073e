"""Fixtures for end-to-end tests against the real local kube-apiserver (see tests/conftest.py).

The helpers the tests call (readers of AWS, waiting, `Releases`, the CLI) are in `helpers.py`."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.kubectl import CRD_NAME, POLICY_CRD_NAME, install_flags_policy, wait_established
from controller.testing.operator import OperatorProcess
from tests.e2e.helpers import Kubectl, Releases, drop_namespace

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def env_vars(local_env) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {**os.environ, **local_env.env_vars()}


@pytest.fixture(scope="session")
def kubectl(env_vars: dict[str, str]) -> Kubectl:
    return Kubectl(env_vars)


@pytest.fixture(scope="session")
def crd_installed(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", str(ROOT / "crds" / "release.yaml"))
    kubectl("apply", "--server-side", "-f", str(ROOT / "crds" / "releasepolicy.yaml"))
    wait_established(kubectl.env, 30, (CRD_NAME, POLICY_CRD_NAME))
    install_flags_policy(kubectl.env)  # the shipped admission policy, as every install has it


_counter = iter(range(1, 10_000))

SESSION_NAMESPACES = "test-*"
"""The kopf namespace glob the session operator watches. A test that runs its own operator (say, to
kill it) uses `own_namespace`, outside the glob, so no two operators ever act on one Release."""


@pytest.fixture()
def namespace(kubectl: Kubectl, crd_installed: None) -> Iterator[str]:
    name = f"test-{os.getpid()}-{next(_counter)}"
    kubectl("create", "namespace", name)
    yield name
    drop_namespace(kubectl, name)


@pytest.fixture()
def own_namespace(kubectl: Kubectl, crd_installed: None) -> Iterator[str]:
    """A namespace the session operator never watches, for tests that start a dedicated operator."""
    name = f"own-{os.getpid()}-{next(_counter)}"
    kubectl("create", "namespace", name)
    yield name
    drop_namespace(kubectl, name)


# --------------------------------------------------------------------------- the operator and AWS

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


@pytest.fixture(scope="session")
def releases(kubectl: Kubectl) -> Releases:
    return Releases(kubectl)
