"""kopf's session to the API server has a bounded connection pool (controller/operator/handlers.py).

Unbounded (kopf's default), kopf opened one TLS connection per Release it patched at once: adopting
1,000 new Releases opened hundreds, and each keeps a 256 KiB asyncio read buffer while it lives.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import kopf
import pytest

from controller.operator.handlers import API_CONNECTIONS, api_connection_limit, login

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: secret-token}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: team-a}}]
current-context: c
"""


def test_the_pool_leaves_room_for_every_watch_stream_and_is_unbounded_for_patterns() -> None:
    assert api_connection_limit(()) == API_CONNECTIONS + 2  # all namespaces: one watch, and peering
    assert api_connection_limit(("a", "b", "c")) == API_CONNECTIONS + 6
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
