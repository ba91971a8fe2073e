"""Session-wide fixtures: one real local environment (etcd + kube-apiserver, moto, Prometheus).

Started once per test session on first use and stopped at the end; tests that need only part of
it take the narrower fixtures. Area-specific fixtures live in tests/<area>/conftest.py.

The first session on a machine builds etcd and kube-apiserver (minutes); `make test` builds them
beforehand with `python -m controller.testing.binaries` so no single test's timeout pays for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from controller.testing.env import LocalEnvironment
from controller.testing.moto import MotoServer


ROOT = Path(__file__).resolve().parents[1]

# Fixtures that start processes: a test using one (directly or through another fixture) is marked
# `e2e` (the whole local environment) or `servers` (a moto or Prometheus server of its own), wherever
# its file lives. `make test-fast` runs what has neither.
ENVIRONMENT_FIXTURES = frozenset({"local_env"})
SERVER_FIXTURES = frozenset({"moto_server", "prometheus", "exporter", "iam_moto", "native_moto"})

# Run first, so the slowest work starts first on the xdist workers and the short tests fill the end.
_FIRST = ("e2e", "servers")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects and before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Markers from the place and the fixtures of each test (see pyproject.toml for the list):

    - its folder under tests/ (`planner`, `aws`, `operator`, `lint`, `e2e`, ...); `doctest` for the doctests
      of controller/;
    - `e2e` when it needs the local environment, `servers` when it starts a server of its own;
    - the tests of a module with a module-scoped fixture share an `xdist_group`, so `--dist
      loadgroup` keeps them on one worker and the fixture is set up once.

    Then the environment and server tests go first (a stable sort: a file's order is kept).
    """
    for item in items:
        parts = item.path.resolve().relative_to(ROOT).parts
        if parts[0] == "tests" and len(parts) > 2:
            item.add_marker(parts[1])
        elif parts[0] == "controller":
            item.add_marker("doctest")
        names = set(getattr(item, "fixturenames", ()))
        if names & ENVIRONMENT_FIXTURES:
            item.add_marker("e2e")
        elif names & SERVER_FIXTURES:
            item.add_marker("servers")
        info = getattr(item, "_fixtureinfo", None)
        shared = info is not None and any(
            defs[-1].scope in ("module", "package", "class") for defs in info.name2fixturedefs.values() if defs
        )
        if shared:
            item.add_marker(pytest.mark.xdist_group(str(item.path.relative_to(ROOT))))
    items.sort(key=lambda item: next((i for i, mark in enumerate(_FIRST) if item.get_closest_marker(mark)),
                                     len(_FIRST)))


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


@pytest.fixture(scope="module")
def native_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto server of its own whose ECS minute (native deployments' bake and hook timeouts) lasts
    0.5 s (controller/testing/native_ecs.py), for the native-mode tests of tests/aws and tests/dataplane."""
    with MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto.log",
                    extra_env={"LOCAL_ECS_MINUTE_SECONDS": "0.5"}) as server:
        yield server
