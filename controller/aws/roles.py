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

Must not: choose a role (the tenancy policy does), log or return credentials, or hold more than
`limit` Releases' clients (least recently used are dropped).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from typing import Any

from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

from controller.aws.clients import AwsClients

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
