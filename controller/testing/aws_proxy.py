"""A loopback HTTP proxy in front of moto that records every AWS request it forwards (and can throttle).

Tests give each operator process its own proxy (AWS_ENDPOINT_URL pointing at it) to know which
process sent which AWS request, and when: the proof that two processes never both change AWS. It
reads the operation name as each AWS protocol carries it: the `X-Amz-Target` header (JSON
protocols: ECS), the `Action` form field (query protocols: ELBv2), else the method and path
(REST protocols: CloudFront, S3).

`throttle` (a fraction, 0..1) answers that share of the ECS and ELBv2 requests itself with the
error AWS returns when it throttles (HTTP 400 `ThrottlingException` for ECS's JSON protocol,
`Throttling` in the query protocol's XML error; https://docs.aws.amazon.com/AWSEC2/latest/APIReference/throttling.html,
https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/CommonErrors.html): moto never
throttles, so this leaves moto's public API on purpose.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from controller.testing.ports import SHUTDOWN_POLL

READS = ("Describe", "List", "Get", "Head")


@dataclass(frozen=True)
class Request:
    at: float  # time.monotonic() when the proxy received it
    service: str
    operation: str
    throttled: bool = False

    @property
    def mutating(self) -> bool:
        return not self.operation.startswith(READS)


def operation_of(method: str, path: str, headers: Any, body: bytes) -> tuple[str, str]:
    target = headers.get("X-Amz-Target")
    if target:
        prefix, _, op = target.partition(".")
        return ("ecs" if "EC2ContainerService" in prefix else prefix), op
    if body and headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        action = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
        if action:
            return "query", action
    verb = {"GET": "Get", "HEAD": "Head"}.get(method, method.capitalize())
    return "rest", f"{verb}{path.split('?')[0]}"


class AwsProxy:
    def __init__(self, upstream: str, throttle: float = 0.0, seed: int = 0) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.throttle = throttle
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                service, operation = operation_of(self.command, self.path, self.headers, body)
                throttled = proxy._throttled(service)
                with proxy._lock:
                    proxy.requests.append(Request(time.monotonic(), service, operation, throttled))
                if throttled:
                    self._throttle(service)
                    return
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
                    headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for k, v in resp.getheaders():
                        if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    conn.close()

            def _throttle(self, service: str) -> None:
                if service == "ecs":
                    data = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
                    ctype = "application/x-amz-json-1.1"
                else:
                    data = (b'<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>'
                            b'<Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>')
                    ctype = "text/xml"
                self.send_response(400)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                                        daemon=True)

    def _throttled(self, service: str) -> bool:
        if self.throttle <= 0 or service not in ("ecs", "query"):
            return False
        with self._lock:
            return self._random.random() < self.throttle

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "AwsProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def writes(self) -> list[Request]:
        """The mutating requests forwarded to moto (a throttled one changed nothing)."""
        with self._lock:
            return [r for r in self.requests if r.mutating and not r.throttled]

    def __enter__(self) -> "AwsProxy":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
