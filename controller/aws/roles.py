"""Per-namespace AWS roles: the clients that a Release's AWS calls are made with.

A `ReleasePolicy` may name a `roleArn` for its namespaces. Every AWS call for a Release of those
namespaces is then made with that role's credentials, so AWS's own IAM refuses what the role does
not grant, even should the operator's checks be wrong. Without a `roleArn` the operator's own
credentials serve (its IRSA or task role), as before.

The role is assumed with the operator's own credentials (STS AssumeRole). Its session name names the
namespace and the Release (`rc.<namespace>.<name>`), so CloudTrail shows which Release made each
call. The credentials are botocore's own refreshable kind, which renews them before they expire:
`AssumeRoleCredentialFetcher` behind `DeferredRefreshableCredentials`, the classes botocore itself
uses for a profile's `role_arn`. Nothing is assumed before a Release's first AWS call.

How a pass's calls reach those clients: the effectors, the observer, the traffic check, the ECS
task hooks and the CloudWatch provider are built once, over `routed(base)`: clients whose every call
goes to the clients of the pass in progress (`controller.aws.acting`). The reconciler enters
`ReleaseRoles.acting_for(namespace, name)` around each pass of a Release (and around each resync
read of a Release with a role), so every AWS call of that pass, whichever effector makes it, signs
with the Release's role; the notification worker enters it around a Release's EventBridge
deliveries. Outside any scope (the CLI, tooling) the operator's own credentials serve.

Must not: choose a role (the tenancy policy does: `ReleaseRoles` asks it), log or return
credentials, fall back to the operator's own credentials when a Release's role cannot be told, or
hold more than `limit` Releases' clients (least recently used are dropped).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

from controller.aws import acting
from controller.aws.acting import Acting, NoRole
from controller.aws.clients import SERVICES, AwsClients

log = logging.getLogger(__name__)

SESSION_NAME_LIMIT = 64  # STS RoleSessionName: 2-64 characters of [\w+=,.@-]
_UNSAFE = re.compile(r"[^\w+=,.@-]")


def session_name(namespace: str, name: str) -> str:
    """The STS session name of a Release's calls: readable, within STS's limits, unique per Release.

    >>> session_name("team-a", "shop")
    'rc.team-a.shop'
    >>> long = session_name("team-a", "x" * 80)
    >>> len(long), long[:20]
    (64, 'rc.team-a.xxxxxxxxxx')
    """
    full = _UNSAFE.sub("-", f"rc.{namespace}.{name}")
    if len(full) <= SESSION_NAME_LIMIT:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:10]
    return f"{full[:SESSION_NAME_LIMIT - 11]}.{digest}"


class RoleClients:
    """AwsClients per (role, namespace, Release): the base clients when a Release has no role."""

    def __init__(self, base: AwsClients, *, limit: int = 256, duration_seconds: int = 3600) -> None:
        self.base, self.limit, self.duration_seconds = base, limit, duration_seconds
        self._cache: OrderedDict[tuple[str, str, str], AwsClients] = OrderedDict()
        self._lock = threading.Lock()
        # Called with each new set of role clients (the operator registers its leadership fence on them).
        self.on_build: list[Callable[[AwsClients], None]] = []

    def clients_for(self, role_arn: str | None, namespace: str, name: str) -> AwsClients:
        if role_arn is None:
            return self.base
        key = (role_arn, namespace, name)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        clients = self.base.with_credentials(self._credentials(role_arn, session_name(namespace, name)))
        for hook in self.on_build:
            hook(clients)
        with self._lock:
            self._cache[key] = clients
            while len(self._cache) > self.limit:
                self._cache.popitem(last=False)
        return clients

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted Release's clients."""
        with self._lock:
            for key in [k for k in self._cache if k[1:] == (namespace, name)]:
                del self._cache[key]

    def _credentials(self, role_arn: str, session: str) -> Any:
        base = self.base.session
        assert base is not None, "clients built by from_env"
        env, _ = self.base.built_from or ({}, None)
        sts_endpoint = env.get("AWS_ENDPOINT_URL_STS") or self.base.endpoint_url

        def sts_client(service_name: str, **kwargs: Any) -> Any:
            # The operator's own Session, so the AssumeRole call signs with the operator's credentials.
            return base.client(service_name, region_name=self.base.region, endpoint_url=sts_endpoint, **kwargs)

        fetcher = AssumeRoleCredentialFetcher(
            client_creator=sts_client,
            source_credentials=base.get_credentials(),
            role_arn=role_arn,
            extra_args={"RoleSessionName": session, "DurationSeconds": self.duration_seconds},
        )
        return DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method="assume-role")


class _Routed:
    """One service's client that sends each call with the clients of the pass in progress
    (`controller.aws.acting`), the operator's own outside a pass; `reads`: their batched-read twin."""

    def __init__(self, base: AwsClients, service: str, reads: bool) -> None:
        self._base, self._service, self._reads = base, service, reads

    def _target(self) -> Any:
        state = acting.current()
        if state is None:
            clients = self._base
        elif state.clients is None:
            raise NoRole(why=state.why)
        else:
            clients = state.clients
        if self._reads:
            clients = clients.reads or clients
        return getattr(clients, self._service)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target(), attr)


def routed(base: AwsClients) -> AwsClients:
    """`base`'s clients (and their read twin), each call sent as the pass in progress acts."""

    def services(reads: bool) -> dict[str, Any]:
        return {name: _Routed(base, name, reads) if getattr(base, name) is not None else None for name in SERVICES}

    twin = replace(base.reads, **services(True)) if base.reads is not None else None
    return replace(base, **services(False), reads=twin)


class ReleaseRoles:
    """Which credentials a Release's passes use: `role_of(namespace)` (the tenancy gate's: the role
    of the ReleasePolicy covering the namespace, None for the operator's own; raises when it cannot be
    told), over `RoleClients`. The reconciler's `RoleScope`."""

    def __init__(self, clients: RoleClients, role_of: Callable[[str], str | None]) -> None:
        self.clients, self.role_of = clients, role_of

    def own(self, namespace: str) -> bool:
        """Do Releases of `namespace` act with the operator's own credentials (read in the batch)?"""
        try:
            return self.role_of(namespace) is None
        except Exception:  # noqa: BLE001 - read on its own, where the pass's scope refuses every call
            return False

    @contextmanager
    def acting_for(self, namespace: str, name: str) -> Iterator[None]:
        """Every AWS call made inside is made with the Release's credentials."""
        try:
            role = self.role_of(namespace)
            state = Acting(role, self.clients.clients_for(role, namespace, name))
        except Exception as exc:  # noqa: BLE001 - fail closed: no call is sent
            why = getattr(exc, "message", None) or f"{type(exc).__name__} {getattr(exc, 'status', '') or ''}".strip()
            log.warning("%s/%s: the IAM role cannot be told (%s); no AWS call is sent", namespace, name, why)
            state = Acting(None, None, why)
        with acting.scope(state):
            yield

    def forget(self, namespace: str, name: str) -> None:
        self.clients.forget(namespace, name)
