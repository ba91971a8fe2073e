"""The outbound HTTP guard: every client the operator uses for a Release-supplied URL goes through it.

What it enforces, whatever a ReleasePolicy says:

* only `http` and `https` (the CRD's patterns refuse other schemes at the API server already);
* never a link-local or instance-metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254, and
  their IPv4-mapped forms): checked on the address the name resolves to *at connect time*, and the
  connection is made to that very address, so a DNS answer that changes between a check and the
  connect (rebinding) does not help;
* redirects are not followed (a 3xx is an answer with its status code).

And what a caller may say about a failure: `describe(exc)` turns any exception of a request into a
fixed class (timeout, connection refused, TLS, DNS, forbidden address, ...) that carries nothing the
remote end or the resolver returned. Callers put that, or an HTTP status code, in status, Events,
notifications and logs, never a body, a header or an exception's text.

The resolver hook is httpcore's `NetworkBackend` (its public extension point for custom
transports); `guarded_client` builds an `httpx.Client` over it. The GitOps write-back's dulwich
speaks urllib3: `guarded_pool_manager` gives it connections that resolve, check and connect the
same way.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

import httpcore
import httpx
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

ALLOWED_SCHEMES = frozenset({"http", "https"})
FORBIDDEN_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local, EC2/ECS instance metadata (169.254.169.254, .170.2)
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # EC2 instance metadata over IPv6
)

Resolver = Callable[[str, int], Iterable[str]]


class Failure(StrEnum):
    """The fixed classes of a failed request: all a status, an Event or a log line may say of it."""

    TIMEOUT = "timeout"
    REFUSED = "connection refused"
    TLS = "TLS error"
    DNS = "DNS lookup failed"
    FORBIDDEN = "address not allowed (link-local or instance metadata)"
    SCHEME = "scheme not allowed (http or https only)"
    CONNECT = "connection failed"
    PROTOCOL = "protocol error"
    OTHER = "request failed"


class ForbiddenAddress(httpcore.ConnectError):
    """The name resolves to an address the operator never contacts."""


class DnsFailure(httpcore.ConnectError):
    """The name did not resolve."""


def forbidden(address: str) -> bool:
    """Is this resolved address one the operator must never contact?

    >>> forbidden("169.254.169.254"), forbidden("::ffff:169.254.169.254"), forbidden("fd00:ec2::254")
    (True, True, True)
    >>> forbidden("127.0.0.1"), forbidden("10.0.0.1")
    (False, False)
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in FORBIDDEN_NETWORKS)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (socket.getaddrinfo), in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend that resolves the name itself, refuses forbidden addresses, and
    connects to the checked address (TLS still verifies the original host name: httpcore passes it
    to `start_tls` as the server name)."""

    def __init__(self, resolver: Resolver = system_resolver, inner: httpcore.NetworkBackend | None = None) -> None:
        self._resolve = resolver
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        try:
            addresses = list(self._resolve(host, port))
        except (OSError, UnicodeError) as exc:
            raise DnsFailure(Failure.DNS.value) from exc
        if not addresses:
            raise DnsFailure(Failure.DNS.value)
        if any(forbidden(a) for a in addresses):
            raise ForbiddenAddress(Failure.FORBIDDEN.value)
        last: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise ForbiddenAddress(Failure.FORBIDDEN.value)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """An `httpx.HTTPTransport` whose connections go through `GuardedBackend`, and that refuses
    any scheme but http and https before a connection is opened."""

    def __init__(self, resolver: Resolver = system_resolver, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify), max_connections=100, max_keepalive_connections=20,
            keepalive_expiry=5.0, network_backend=GuardedBackend(resolver),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in ALLOWED_SCHEMES:
            raise httpx.UnsupportedProtocol(Failure.SCHEME.value, request=request)
        return super().handle_request(request)


def guarded_client(timeout: float = 5.0, resolver: Resolver = system_resolver,
                   verify: ssl.SSLContext | bool = True) -> httpx.Client:
    """The one way the operator builds an HTTP client for a Release-supplied URL: guarded
    connections, no redirects followed, no proxy or netrc taken from the environment (an
    environment proxy would connect on the operator's behalf, unchecked)."""
    return httpx.Client(transport=GuardedTransport(resolver, verify), timeout=timeout, follow_redirects=False,
                        trust_env=False)


class _GuardedConnection(HTTPConnection):
    """urllib3's connection, resolving and checking the address itself and connecting to it (the
    TLS server name stays the URL's host: urllib3 uses `host`, not `_dns_host`, for it)."""

    resolver: Resolver = staticmethod(system_resolver)

    def _new_conn(self) -> socket.socket:
        try:
            addresses = list(type(self).resolver(self.host, self.port))
        except (OSError, UnicodeError) as exc:
            raise NameResolutionError(self.host, self, socket.gaierror(Failure.DNS.value)) from exc
        if not addresses or any(forbidden(a) for a in addresses):
            raise NewConnectionError(self, Failure.FORBIDDEN.value) from ForbiddenAddress(Failure.FORBIDDEN.value)
        self._dns_host = addresses[0]
        return super()._new_conn()


class _GuardedHTTPSConnection(_GuardedConnection, HTTPSConnection):
    pass


class _GuardedPool(HTTPConnectionPool):
    ConnectionCls = _GuardedConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


def guarded_pool_manager(timeout: float = 30.0) -> urllib3.PoolManager:
    """A urllib3 PoolManager whose connections are guarded as `guarded_client`'s are (no proxy from
    the environment either: urllib3 takes none by itself)."""
    manager = urllib3.PoolManager(timeout=urllib3.Timeout(total=timeout), retries=urllib3.Retry(0, redirect=0))
    manager.pool_classes_by_scheme = {"http": _GuardedPool, "https": _GuardedHTTPSPool}
    manager.key_fn_by_scheme = dict(manager.key_fn_by_scheme)
    return manager


def describe(exc: BaseException) -> Failure:
    """The fixed class of a request's failure (never its text: that may quote the remote end).

    >>> describe(httpx.ConnectTimeout("whatever the socket said"))
    <Failure.TIMEOUT: 'timeout'>
    """
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain and len(chain) < 16:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for e in chain:
        if isinstance(e, ForbiddenAddress) or (isinstance(e, NewConnectionError)
                                               and Failure.FORBIDDEN.value in str(e)):
            return Failure.FORBIDDEN
        if isinstance(e, DnsFailure | socket.gaierror | NameResolutionError):
            return Failure.DNS
        if isinstance(e, httpx.UnsupportedProtocol):
            return Failure.SCHEME
    for e in chain:
        if isinstance(e, httpx.TimeoutException | httpcore.TimeoutException | TimeoutError | socket.timeout):
            return Failure.TIMEOUT
        if isinstance(e, ConnectionRefusedError):
            return Failure.REFUSED
        if isinstance(e, ssl.SSLError | ssl.CertificateError):
            return Failure.TLS
    if any(isinstance(e, httpx.ConnectError | httpcore.ConnectError | OSError) for e in chain):
        return Failure.CONNECT
    if any(isinstance(e, httpx.ProtocolError | httpx.DecodingError | httpx.TooManyRedirects) for e in chain):
        return Failure.PROTOCOL
    return Failure.OTHER
