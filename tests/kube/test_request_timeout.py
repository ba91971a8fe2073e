"""Every request to the API server is bounded (controller/kube/client.py `bounded`).

The API server here is a loopback port that accepts connections and never answers (a stand-in for
one that hangs: a real kube-apiserver cannot be made to do that on demand).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import urllib3
from kubernetes import client

from controller.kube.client import REQUEST_TIMEOUT, ReleaseApi, bounded, load_api_client
from controller.testing.ports import silent_listener


def test_a_hanging_api_server_fails_a_request_within_its_timeout() -> None:
    with silent_listener() as (port, _):
        api = ReleaseApi(bounded(client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{port}")), 0.25))
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.HTTPError):
            api.list_all()
        with pytest.raises(urllib3.exceptions.HTTPError):
            api.get("team-a", "shop")
        assert time.monotonic() - started < 5


def test_a_call_that_names_its_own_timeout_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    api_client = client.ApiClient(client.Configuration(host="http://127.0.0.1:1"))
    monkeypatch.setattr(api_client.rest_client, "request",
                        lambda method, url, *a, _request_timeout=None, **kw: seen.append(_request_timeout))
    bounded(api_client)
    api_client.rest_client.GET("http://127.0.0.1:1/x")
    api_client.rest_client.GET("http://127.0.0.1:1/x", _request_timeout=2.0)
    assert seen == [REQUEST_TIMEOUT, 2.0]


def test_the_operator_and_the_cli_get_a_bounded_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with silent_listener() as (port, _):
        config = tmp_path / "kubeconfig"
        config.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
current-context: c
""")
        monkeypatch.setattr("controller.kube.client.REQUEST_TIMEOUT", (0.5, 0.25))
        api = ReleaseApi(load_api_client(str(config)))
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.HTTPError):
            api.list_all("team-a")
        assert time.monotonic() - started < 5
