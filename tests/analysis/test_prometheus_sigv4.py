"""`prometheus.auth: {type: SigV4}`: every query to Amazon Managed Service for Prometheus signed with
the Release's AWS credentials, against the real Prometheus.

No AMP workspace can run here, so its front door is a stand-in on loopback: it checks each
request's SigV4 signature with botocore's own algorithm (it alone knows the secret key), answers
403 to an unsigned or wrongly signed request as AMP does, and forwards a signed one to the real
Prometheus (`prometheus` fixture), whose answer the provider judges.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from controller.analysis.base import MeasureContext
from controller.analysis.providers import measure_all
from controller.analysis.registry import build_providers
from controller.analysis.sigv4 import SigV4
from controller.api.release import MeasurementError, Metric, PrometheusAuth, Verdict
from controller.testing.ports import free_port, serving
from tests.analysis.conftest import Prometheus

REGION = "eu-west-1"
KEY, SECRET, TOKEN = "AKIAEXAMPLESIGV4", "s3cr3t-signing-key-never-shown", "session-token-xyz"


@dataclass
class FrontDoor:
    """AMP's front door as far as signing goes: SigV4 for service `aps` in REGION, then Prometheus."""

    upstream: str
    url: str = ""
    seen: list[str] = field(default_factory=list)  # per request: "signed" or why it was refused

    def verdict(self, method: str, path: str, headers: Any) -> str:
        auth = headers.get("Authorization") or ""
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return "unsigned"
        parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        key, day, region, service, _ = parts["Credential"].split("/")
        if (key, region, service) != (KEY, REGION, "aps"):
            return f"scope {key}/{region}/{service}"
        signed = parts["SignedHeaders"].split(";")
        request = AWSRequest(method=method, url=self.url + path,
                             headers={h: headers.get(h) for h in signed if headers.get(h) is not None})
        request.context["timestamp"] = headers.get("X-Amz-Date") or ""
        signer = SigV4Auth(Credentials(KEY, SECRET, TOKEN), "aps", REGION)
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        if expected != parts["Signature"] or headers.get("X-Amz-Security-Token") != TOKEN:
            return "bad signature"
        return "signed"


@pytest.fixture()
def front_door(prometheus: Prometheus) -> Iterator[FrontDoor]:
    door = FrontDoor(prometheus.address)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            verdict = door.verdict("GET", self.path, self.headers)
            door.seen.append(verdict)
            if verdict != "signed":
                self.send_response(403)
                self.end_headers()
                self.wfile.write(b'{"message":"The request signature we calculated does not match"}')
                return
            got = httpx.get(door.upstream + self.path, timeout=5.0)
            self.send_response(got.status_code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(got.content)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    door.url = f"http://127.0.0.1:{port}"
    with serving(server):
        yield door


def metric(address: str) -> Metric:
    return Metric.model_validate({"name": "up", "min": 1, "prometheus": {
        "address": address, "query": "vector(1)", "auth": {"type": "SigV4"}}})


def ctx(**signers: Any) -> MeasureContext:
    return MeasureContext("2.0.0", None, "production", datetime.now(timezone.utc), signers=signers)


def test_signed_queries_reach_prometheus_and_unsigned_ones_are_refused(front_door: FrontDoor) -> None:
    providers = build_providers(httpx.Client())
    m = metric(front_door.url)

    (unsigned,) = measure_all([m], ctx(), providers)
    assert unsigned.error == MeasurementError.QUERY and "refused the credentials" in unsigned.message

    good = SigV4(lambda: Credentials(KEY, SECRET, TOKEN), REGION)
    (ok,) = measure_all([m], ctx(up=good), providers)
    assert ok.verdict == Verdict.PASSED and ok.value == 1.0, ok
    assert front_door.seen == ["unsigned", "signed"]

    wrong = SigV4(lambda: Credentials(KEY, "another-secret", TOKEN), REGION)
    (refused,) = measure_all([m], ctx(up=wrong), providers)
    assert refused.error == MeasurementError.QUERY and "aps:QueryMetrics" in refused.message
    assert front_door.seen[-1] == "bad signature"
    for seen in (unsigned, ok, refused):  # nothing of the credentials in what the author can read
        assert SECRET not in seen.model_dump_json() and TOKEN not in seen.model_dump_json()

    nothing = SigV4(lambda: None, REGION)
    (unsent,) = measure_all([m], ctx(up=nothing), providers)
    assert unsent.error == MeasurementError.QUERY and "no AWS credentials" in unsent.message
    assert len(front_door.seen) == 3  # not sent


def test_the_signer_takes_fresh_credentials_at_each_request(front_door: FrontDoor) -> None:
    """A role's credentials rotate: each request asks for the current ones."""
    handed: list[int] = []

    def credentials() -> Credentials:
        handed.append(1)
        return Credentials(KEY, SECRET, TOKEN)

    m = metric(front_door.url)
    providers = build_providers(httpx.Client())
    for _ in range(2):
        (ok,) = measure_all([m], ctx(up=SigV4(credentials, REGION)), providers)
        assert ok.verdict == Verdict.PASSED
    assert len(handed) == 2 and front_door.seen == ["signed", "signed"]


@pytest.mark.parametrize(("auth", "error"), [
    ({"type": "SigV4", "secretRef": {"name": "prom"}}, "SigV4 signs with the Release's AWS credentials"),
    ({"type": "Basic"}, "Basic and Bearer read a secretRef"),
    ({"type": "Basic", "secretRef": {"name": "prom"}, "region": "eu-west-1"}, "only SigV4 signs for a region"),
])
def test_credentials_come_from_one_place(auth: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        PrometheusAuth.model_validate(auth)
    assert PrometheusAuth.model_validate({"type": "SigV4", "region": "us-east-1"}).region == "us-east-1"

