"""Session-wide fixtures: one real local environment (etcd + kube-apiserver, moto, Prometheus).

Started once per test session on first use and stopped at the end; tests that need only part of
it take the narrower fixtures. Area-specific fixtures live in tests/<area>/conftest.py.

The first session on a machine builds etcd and kube-apiserver (minutes); `make test` builds them
beforehand with `python -m controller.testing.binaries` so no single test's timeout pays for it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from controller.testing.env import LocalEnvironment
from controller.testing.moto import MotoServer


@pytest.fixture(scope="session")
def local_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    env = LocalEnvironment(tmp_path_factory.mktemp("local-env"))
    env.up()
    try:
        yield env
    finally:
        env.down()


@pytest.fixture(scope="session")
def kube_api(local_env: LocalEnvironment) -> Iterator[k8s_client.ApiClient]:
    """An API client authenticated as the admin (system:masters) of the local API server."""
    api = k8s_config.new_client_from_config(config_file=str(local_env.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def aws_env(local_env: LocalEnvironment) -> dict[str, str]:
    """The environment variables that point AWS SDKs, kubectl and the operator at the local parts."""
    return local_env.env_vars()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A bare moto server for tests of the AWS tier that need no Kubernetes (tests reset it)."""
    server = MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
