"""kopf's session to the API server has a bounded connection pool (controller/operator/handlers.py).

Unbounded (kopf's default), kopf opened one TLS connection per Release it patched at once: adopting
1,000 new Releases opened hundreds, and each keeps a 256 KiB asyncio read buffer while it lives.
The pool leaves room for every watch stream kopf holds open; kopf runs standalone (no peering
streams, no KopfPeering objects): tested with the real kopf on the real local kube-apiserver.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kopf
import pytest
import yaml

from controller.operator.handlers import API_CONNECTIONS, api_connection_limit, login, watch_streams
from controller.operator.main import kopf_options
from controller.operator.settings import OperatorSettings
from controller.testing.env import LocalEnvironment
from controller.testing.kubectl import install_crd, kubectl

ROOT = Path(__file__).resolve().parents[2]

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: secret-token}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: team-a}}]
current-context: c
"""


def test_the_pool_leaves_room_for_every_watch_stream_and_is_unbounded_for_patterns() -> None:
    # All namespaces: the Releases' watch and kopf's CRD observer.
    assert api_connection_limit(()) == API_CONNECTIONS + 2
    # Three namespaces: a Releases watch in each, the CRD observer and the namespace observer.
    assert api_connection_limit(("a", "b", "c")) == API_CONNECTIONS + 5
    # A pattern may match any number of namespaces, each with its own watch streams: a bounded
    # pool could be filled by watches alone, so kopf's unbounded default stays.
    assert api_connection_limit(("team-*",)) is None
    assert api_connection_limit(("a", "!b")) is None


def test_login_hands_kopf_a_session_with_the_bounded_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(config))
    logger = kopf.LocalObjectLogger(body=kopf.Body({}), settings=kopf.OperatorSettings())

    async def main() -> None:
        got = await login(memo=SimpleNamespace(api_connections=40), logger=logger, settings=kopf.OperatorSettings())
        assert isinstance(got, kopf.AiohttpSession)
        try:
            assert got.server == "https://127.0.0.1:6443"
            assert got.default_namespace == "team-a"
            assert got.aiohttp_session.connector is not None
            assert got.aiohttp_session.connector.limit == 40
            assert got.aiohttp_session.headers["Authorization"] == "Bearer secret-token"
        finally:
            await got.aiohttp_session.close()
        # Unbounded: kopf's own ConnectionInfo, as before.
        plain = await login(memo=SimpleNamespace(api_connections=None), logger=logger, settings=kopf.OperatorSettings())
        assert isinstance(plain, kopf.ConnectionInfo)

    asyncio.run(main())


def test_kopf_runs_without_peering_in_a_pool_of_exactly_its_watch_streams(
    local_env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real kopf, started with the options `run_operator` gives it (here for a process still
    started with the deprecated `--peering` and `--priority`), on a cluster without kopf's peering
    CRDs, in a pool of `watch_streams` connections (the operator's pool without its margin for
    patches): it sees the Releases of all three namespaces. A peering kopf (`peering_name` given)
    waits for its KopfPeering CRD and sees none: this test then fails after its 60 s."""
    env = local_env.env_vars()
    install_crd(env)
    assert "kopf.dev" not in kubectl(env, "get", "crd", "-o", "name")
    namespaces = tuple(f"conn-{os.getpid()}-{n}" for n in "abc")
    example = yaml.safe_load((ROOT / "manifests" / "examples" / "canary.yaml").read_text())
    for ns in namespaces:
        kubectl(env, "create", "namespace", ns)
        kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump({**example, "metadata": {"name": "app", "namespace": ns}}))
    monkeypatch.setenv("KUBECONFIG", env["KUBECONFIG"])
    settings = OperatorSettings(namespaces=namespaces, liveness_port=None, metrics_port=None,
                                peering="release-controller", priority=100)
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(login)
    seen: set[str] = set()
    stop = asyncio.Event()

    @kopf.on.startup(registry=registry)
    def quiet(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False  # kopf's Events would need a connection of their own

    @kopf.on.event("delivery.pratiko.ai", "releases", registry=registry)
    def noticed(namespace: str, **_: Any) -> None:
        seen.add(namespace)
        if seen == set(namespaces):
            stop.set()

    async def main() -> None:
        operator = asyncio.create_task(kopf.operator(
            registry=registry, memo=kopf.Memo(api_connections=watch_streams(namespaces)), stop_flag=stop,
            **kopf_options(settings)))
        try:
            await asyncio.wait_for(stop.wait(), 60)
        finally:
            stop.set()
            await asyncio.wait_for(operator, 30)

    try:
        asyncio.run(main())
    except TimeoutError:
        pytest.fail(f"kopf saw Releases in {sorted(seen)} only, of {list(namespaces)}")
    finally:
        for ns in namespaces:
            kubectl(env, "delete", "namespace", ns, "--wait=false")
