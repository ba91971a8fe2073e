"""AWS Signature Version 4 for Prometheus queries (Amazon Managed Service for Prometheus, service
`aps`): an httpx `Auth` that signs each request with botocore's signer, the way AWS's own SDKs and
the `awscurl` / SigV4 proxies do (docs.aws.amazon.com/prometheus/latest/userguide/AMP-secure-querying.html).

The credentials come from a callable asked at each request, so a role's refreshed credentials are
used as they rotate; they never leave this module except as the signature and, for temporary
credentials, the session token header AWS requires (X-Amz-Security-Token), which is useless without
the secret key.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import httpx
from botocore.auth import SigV4Auth as _BotocoreSigV4
from botocore.awsrequest import AWSRequest

SERVICE = "aps"


class NoCredentials(httpx.RequestError):
    """No AWS credentials to sign with: the request is not sent."""


class SigV4(httpx.Auth):
    def __init__(self, credentials: Callable[[], Any], region: str, service: str = SERVICE) -> None:
        self._credentials, self.region, self.service = credentials, region, service

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        found = self._credentials()
        if found is None:
            raise NoCredentials("no AWS credentials to sign the query with", request=request)
        frozen = found.get_frozen_credentials() if hasattr(found, "get_frozen_credentials") else found
        signed = AWSRequest(method=request.method, url=str(request.url), data=request.content,
                            headers={"Host": request.url.netloc.decode("ascii")})
        _BotocoreSigV4(frozen, self.service, self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request
