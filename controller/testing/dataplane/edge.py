"""A local stand-in for a CloudFront edge: serves a distribution's S3 origin as its continuous
deployment policy routes each request, primary or staging.

moto stores distributions (and the local moto process, `controller.testing.local_cloudfront`, their
continuous deployment policies and staging copies), but nothing local serves a viewer by them. This
HTTP server on loopback does, for one primary distribution: for every request it reads the primary's
configuration and its ContinuousDeploymentPolicy from moto over HTTP (GetDistributionConfig,
GetContinuousDeploymentPolicy, ListDistributions to find the staging copy by its domain, as a client
of the AWS API would), picks the distribution that serves the request, and answers with the object
of that distribution's origin: the S3 bucket its default cache behaviour's origin names, at
`OriginPath` + the request path (`DefaultRootObject` for `/`), read from moto's S3.

Which distribution serves a request, as AWS documents it
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/continuous-deployment-policy.html
and the API reference's ContinuousDeploymentSingleHeaderConfig / ContinuousDeploymentSingleWeightConfig):

- no policy attached to the primary, or the policy not `Enabled`: the primary, always;
- `SingleHeader` {Header, Value}: "If the HTTP request contains a header and value that matches what
  you specify here, the request is sent to the staging distribution. Otherwise the request is sent to
  the primary distribution." The name is compared without case (HTTP field names are), the value
  exactly;
- `SingleWeight` {Weight}: that share of requests (0 to 0.15) goes to staging. Here the share is
  exact and deterministic (nginx's smooth weighted round-robin, as the local balancer's weights:
  with 10% every 100 consecutive requests hold exactly 10), where CloudFront's is statistical.

Not played: session stickiness (`SessionStickinessConfig`, CloudFront's `aws-cf-cd-*` cookies), the
edge cache (every request reads the origin, as after an invalidation; TTLs and invalidations do not
delay anything), deployment times (a change is served as soon as moto holds it), and any cache
behaviour but the default one. Every read here goes through moto's public API (over HTTP, with
boto3); the policy calls are answered by the local moto process (`local_cloudfront`), which is where
this leaves moto's own API.

The edge answers every request with the header `X-Local-Edge` naming the distribution that served
it (`primary` or `staging`), for a reader of the logs; a test should judge by the content, as a
viewer would.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from botocore.exceptions import ClientError

from controller.testing.dataplane.balancer import SmoothWeightedRoundRobin
from controller.testing.ports import free_port, serve_in_background, stop_serving

PRIMARY, STAGING = "primary", "staging"
EDGE_HEADER = "X-Local-Edge"
_BASIS = 10_000  # weights in basis points: CloudFront's weight has up to 4 decimals (0.0001 .. 0.15)


@dataclass(frozen=True)
class Routing:
    """What the primary's continuous deployment policy says, as read for one request."""

    primary: Mapping[str, Any]  # the primary's DistributionConfig
    staging: Mapping[str, Any] | None  # the staging copy's DistributionConfig, None when no policy routes
    policy_id: str = ""
    kind: str = ""  # SingleHeader | SingleWeight | "" (nothing routes to staging)
    header: tuple[str, str] | None = None
    weight: float = 0.0


def choose(routing: Routing, headers: Mapping[str, str], pick_weighted: Any) -> str:
    """PRIMARY or STAGING for a request with `headers` (names in any case), as the policy routes it.

    >>> r = Routing({}, {}, "p", "SingleHeader", ("aws-cf-cd-preview", "2.0.0"))
    >>> choose(r, {"AWS-CF-CD-Preview": "2.0.0"}, None), choose(r, {"aws-cf-cd-preview": "2.0.1"}, None)
    ('staging', 'primary')
    """
    if routing.staging is None:
        return PRIMARY
    if routing.kind == "SingleHeader" and routing.header is not None:
        name, value = routing.header
        sent = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
        return STAGING if sent == value else PRIMARY
    if routing.kind == "SingleWeight" and routing.weight > 0:
        return STAGING if pick_weighted(routing) == STAGING else PRIMARY
    return PRIMARY


class Edge:
    """One primary distribution's edge on `127.0.0.1:port`, reading moto at `endpoint` per request."""

    def __init__(self, endpoint: str, distribution_id: str, region: str = "us-east-1", port: int = 0) -> None:
        self.endpoint, self.distribution_id = endpoint, distribution_id
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
        self._cloudfront: Any = session.client("cloudfront", endpoint_url=endpoint)
        self._s3: Any = session.client("s3", endpoint_url=endpoint)
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._weighted: dict[tuple[str, int], SmoothWeightedRoundRobin] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ reads (moto's API, over HTTP)

    def routing(self) -> Routing:
        primary = self._cloudfront.get_distribution_config(Id=self.distribution_id)["DistributionConfig"]
        policy_id = primary.get("ContinuousDeploymentPolicyId") or ""
        if not policy_id:
            return Routing(primary, None)
        policy = self._cloudfront.get_continuous_deployment_policy(Id=policy_id)["ContinuousDeploymentPolicy"]
        config = policy["ContinuousDeploymentPolicyConfig"]
        if not config.get("Enabled"):
            return Routing(primary, None, policy_id)
        domains = (config.get("StagingDistributionDnsNames") or {}).get("Items") or []
        staging = self._by_domain(domains[0]) if domains else None
        if staging is None:
            return Routing(primary, None, policy_id)
        traffic = config.get("TrafficConfig") or {}
        kind = str(traffic.get("Type") or "")
        single = traffic.get("SingleHeaderConfig") or {}
        header = (str(single["Header"]), str(single["Value"])) if kind == "SingleHeader" and single else None
        weight = float((traffic.get("SingleWeightConfig") or {}).get("Weight", 0.0)) if kind == "SingleWeight" else 0.0
        return Routing(primary, staging, policy_id, kind, header, weight)

    def _by_domain(self, domain: str) -> Mapping[str, Any] | None:
        for page in self._cloudfront.get_paginator("list_distributions").paginate():
            for summary in page["DistributionList"].get("Items", []) or []:
                if summary.get("DomainName") == domain:
                    return self._cloudfront.get_distribution_config(Id=summary["Id"])[  # type: ignore[no-any-return]
                        "DistributionConfig"]
        return None

    def _pick_weighted(self, routing: Routing) -> str | None:
        share = round(routing.weight * _BASIS)
        with self._lock:
            rr = self._weighted.setdefault(
                (routing.policy_id, share), SmoothWeightedRoundRobin({STAGING: share, PRIMARY: _BASIS - share}))
            return rr.pick()

    def fetch(self, config: Mapping[str, Any], path: str) -> tuple[int, bytes, str]:
        """(status, body, content type) of `path` from the origin of `config`'s default cache behaviour."""
        target = (config.get("DefaultCacheBehavior") or {}).get("TargetOriginId")
        origin = next((o for o in (config.get("Origins") or {}).get("Items", []) if o.get("Id") == target), None)
        if origin is None:
            return 502, b"no origin for the default cache behaviour\n", "text/plain"
        bucket = str(origin["DomainName"]).split(".s3", 1)[0]
        path = path.split("?", 1)[0]
        if path == "/" and config.get("DefaultRootObject"):
            path = "/" + str(config["DefaultRootObject"])
        key = ((origin.get("OriginPath") or "") + path).lstrip("/")
        try:
            got = self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            return (404 if code in ("NoSuchKey", "404") else 502), f"{code}\n".encode(), "text/plain"
        return 200, got["Body"].read(), str(got.get("ContentType") or "application/octet-stream")

    def serve(self, path: str, headers: Mapping[str, str]) -> tuple[int, bytes, str, str]:
        """(status, body, content type, which distribution) for one viewer request."""
        routing = self.routing()
        which = choose(routing, headers, self._pick_weighted)
        config = routing.staging if which == STAGING and routing.staging is not None else routing.primary
        status, body, content_type = self.fetch(config, path)
        return status, body, content_type, which

    # ------------------------------------------------------------------ the server

    def start(self) -> str:
        edge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                try:
                    status, body, content_type, which = edge.serve(self.path, dict(self.headers.items()))
                except Exception as exc:  # noqa: BLE001 - an edge error is a 502, as CloudFront's
                    status, body, content_type, which = 502, f"{type(exc).__name__}\n".encode(), "text/plain", ""
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if which:
                    self.send_header(EDGE_HEADER, which)
                self.end_headers()
                self.wfile.write(body)

        self.port = self.port or free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = serve_in_background(self._server, "local-edge")
        return self.url

    def stop(self) -> None:
        stop_serving(self._server, self._thread, timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Edge:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
