"""The outbound HTTP guard against loopback servers: forbidden addresses are never contacted, the
address checked is the address connected to, redirects are not followed, failures are fixed classes."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from controller.tenancy.guard import Failure, describe, guarded_client
from controller.testing.ports import silent_listener
from tests.tenancy.conftest import Loopback


def resolver_of(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known: secret-internal-detail")
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def failure_of(client: httpx.Client, url: str) -> Failure:
    with pytest.raises(httpx.HTTPError) as info:
        client.get(url)
    return describe(info.value)


def test_a_loopback_service_is_reached_at_the_address_checked(loopback: Loopback) -> None:
    loopback.routes["/health"] = (200, {}, b'{"ok": true}')
    client = guarded_client(resolver=resolver_of({"api.team-a.test": ["127.0.0.1"]}))
    resp = client.get(f"http://api.team-a.test:{loopback.port}/health")
    assert resp.status_code == 200
    assert loopback.seen[-1][2]["Host"] == f"api.team-a.test:{loopback.port}"


@pytest.mark.parametrize("answer", [
    ["169.254.169.254"], ["169.254.170.2"], ["fe80::1"], ["fd00:ec2::254"], ["::ffff:169.254.169.254"],
    ["127.0.0.1", "169.254.169.254"],  # one bad address among good ones refuses the name
])
def test_metadata_and_link_local_addresses_are_never_contacted(answer: list[str], loopback: Loopback) -> None:
    client = guarded_client(resolver=resolver_of({"innocent.test": answer}))
    assert failure_of(client, f"http://innocent.test:{loopback.port}/latest/meta-data/") == Failure.FORBIDDEN
    assert loopback.seen == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/",
                                 "http://[fd00:ec2::254]/", "http://[::ffff:a9fe:a9fe]/"])
def test_literal_metadata_addresses_are_refused(url: str) -> None:
    assert failure_of(guarded_client(), url) == Failure.FORBIDDEN


def test_a_name_that_rebinds_is_checked_at_every_connect(loopback: Loopback) -> None:
    loopback.routes["/"] = (200, {"Connection": "close"}, b"{}")
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    client = guarded_client(resolver=lambda host, port: next(answers))
    assert client.get(f"http://rebind.test:{loopback.port}/").status_code == 200
    assert failure_of(client, f"http://rebind.test:{loopback.port}/") == Failure.FORBIDDEN
    assert len(loopback.seen) == 1


def test_redirects_are_not_followed(loopback: Loopback) -> None:
    loopback.routes["/go"] = (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")
    resp = guarded_client().get(f"{loopback.url}/go")
    assert resp.status_code == 302 and len(loopback.seen) == 1


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.test/x"])
def test_only_http_and_https(url: str) -> None:
    assert failure_of(guarded_client(), url) == Failure.SCHEME


def test_dns_failure_is_a_class_not_the_resolver_text() -> None:
    client = guarded_client(resolver=resolver_of({}))
    with pytest.raises(httpx.HTTPError) as info:
        client.get("http://nowhere.test/")
    assert describe(info.value) == Failure.DNS
    assert "secret-internal-detail" not in Failure.DNS.value


def test_refused_and_timeout_and_tls(loopback: Loopback) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert failure_of(guarded_client(), f"http://127.0.0.1:{port}/") == Failure.REFUSED
    assert failure_of(guarded_client(), f"https://127.0.0.1:{loopback.port}/") in (Failure.TLS, Failure.PROTOCOL)


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with silent_listener(backlog=8) as (port, _):
        yield port


def test_timeout(silent_port: int) -> None:
    assert failure_of(guarded_client(timeout=0.3), f"http://127.0.0.1:{silent_port}/") == Failure.TIMEOUT


def test_the_git_clients_pool_is_guarded_too(loopback: Loopback) -> None:
    """The GitOps write-back's dulwich goes through urllib3: the same refusal, the same classes."""
    import urllib3

    from controller.tenancy.guard import guarded_pool_manager

    loopback.routes["/info/refs"] = (200, {}, b"ok")
    pool = guarded_pool_manager(timeout=2)
    assert pool.request("GET", f"{loopback.url}/info/refs").status == 200
    with pytest.raises(urllib3.exceptions.HTTPError) as info:
        pool.request("GET", "http://169.254.169.254/latest/meta-data/")
    assert describe(info.value) == Failure.FORBIDDEN
    redirect = guarded_pool_manager(timeout=2)
    loopback.routes["/go"] = (302, {"Location": "http://169.254.169.254/"}, b"")
    assert redirect.request("GET", f"{loopback.url}/go", redirect=False).status == 302
