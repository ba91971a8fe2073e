"""A simulated backend: the process that stands in for one ECS task set of the FastAPI backend.

Run as `python -m controller.testing.dataplane.workload --version 1.4.0 --port P --behaviour-file F`.
It answers `GET /` and `GET /health` with JSON naming its version, `GET /openapi.json` with a small
FastAPI-like document chosen by version (for API contract checks), and `GET /metrics` in the
Prometheus text format:

- `http_requests_total{version, status}`: requests served on the traffic paths;
- `http_request_duration_seconds{version}`: their latency histogram.

`/metrics`, `/health` and `/openapi.json` are neither counted nor failed: they are probes, and an
ALB's health checks do not show in its request metrics either.

How a version misbehaves comes from a JSON control file, re-read whenever it changes so that a test
can degrade a version that is already serving:

    {"1.4.0": {"error_rate": 0.3, "latency_ms": 20}, "default": {"error_rate": 0, "latency_ms": 5}}

How a version starts, read once when the process starts (as a container's image decides it):
`start_seconds` (its health check fails until then: a slow start), `crash_on_start` (it exits at
once with code 3, before listening), `unhealthy_after_seconds` (its health check fails from then on).

Errors are deterministic, not random: with error rate r the n-th request (from 0) fails exactly when
floor((n+1)*r) > floor(n*r), so 0.3 fails 3 requests in every 10, evenly spread, and a test that
sends 100 requests sees exactly 30 errors. Changing the behaviour restarts that sequence.

This process must stay light (stdlib HTTP server, no framework) and must never outlive the process
that started it: it exits when its parent goes away.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

# Buckets fine enough below 100 ms to tell a 20 ms version from a 60 ms one, which is the range
# the simulated latencies live in, and coarse above where only "far too slow" matters.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

CRASH_EXIT_CODE = 3  # what a crash_on_start container exits with

PROBE_PATHS = frozenset({"/health", "/healthz", "/metrics", "/openapi.json"})


@dataclass(frozen=True)
class Behaviour:
    """How one version behaves. `healthy=False` makes `/health` answer 503 with a failing component."""

    error_rate: float = 0.0
    latency_ms: float = 0.0
    healthy: bool = True
    health_latency_ms: float = 0.0  # /health (not /healthz, the ALB's check) answers this late: a hanging probe
    openapi: Mapping[str, Any] | None = None  # served as is instead of the built-in document
    start_seconds: float = 0.0
    crash_on_start: bool = False
    unhealthy_after_seconds: float | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "Behaviour":
        rate = float(raw.get("error_rate", 0.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"error_rate must be within [0, 1], got {rate}")
        return cls(
            error_rate=rate,
            latency_ms=max(0.0, float(raw.get("latency_ms", 0.0))),
            healthy=bool(raw.get("healthy", True)),
            health_latency_ms=max(0.0, float(raw.get("health_latency_ms", 0.0))),
            openapi=raw.get("openapi"),
            start_seconds=max(0.0, float(raw.get("start_seconds", 0.0))),
            crash_on_start=bool(raw.get("crash_on_start", False)),
            unhealthy_after_seconds=(None if raw.get("unhealthy_after_seconds") is None
                                     else max(0.0, float(raw["unhealthy_after_seconds"]))),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error_rate": self.error_rate, "latency_ms": self.latency_ms, "healthy": self.healthy}
        if self.health_latency_ms:
            out["health_latency_ms"] = self.health_latency_ms
        if self.openapi is not None:
            out["openapi"] = dict(self.openapi)
        if self.start_seconds:
            out["start_seconds"] = self.start_seconds
        if self.crash_on_start:
            out["crash_on_start"] = True
        if self.unhealthy_after_seconds is not None:
            out["unhealthy_after_seconds"] = self.unhealthy_after_seconds
        return out

    def passes_health_check(self, age: float) -> bool:
        """Whether /health answers 200 `age` seconds after the process started."""
        if not self.healthy or age < self.start_seconds:
            return False
        return self.unhealthy_after_seconds is None or age < self.unhealthy_after_seconds


def behaviour_for(document: Mapping[str, Any], version: str) -> Behaviour:
    """The entry for `version`, else `default`, else a well-behaved version."""
    raw = document.get(version, document.get("default", {}))
    return Behaviour.from_json(raw if isinstance(raw, Mapping) else {})


def write_behaviour(path: Path, behaviours: Mapping[str, Behaviour | Mapping[str, Any]]) -> None:
    """Write the control file atomically, so a workload never reads half a document."""
    doc = {k: (v.to_json() if isinstance(v, Behaviour) else dict(v)) for k, v in behaviours.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True))
    tmp.replace(path)


def fails(n: int, error_rate: float) -> bool:
    """Whether request number `n` (from 0) fails at `error_rate`.

    Worked example, rate 0.3: floor(0.3 * (n+1)) for n = 0..9 is 0,0,0,1,1,1,2,2,2,3, so requests
    3, 6 and 9 fail: 3 in 10, and any window of 10 consecutive requests holds 3 failures (+-1).
    """
    if error_rate <= 0.0:
        return False
    if error_rate >= 1.0:
        return True
    return math.floor((n + 1) * error_rate) > math.floor(n * error_rate)


def openapi_document(version: str) -> dict[str, Any]:
    """A FastAPI-shaped OpenAPI document for `version`.

    Major version 1 serves `/api/v1/chat` taking `message`; from minor 5 it adds an optional
    `stream` field (backward compatible). Major version 2 renames the request field to `prompt`
    and moves to `/api/v2/chat` (a breaking change), so a contract check can tell them apart.
    """
    parts = [int(p) if p.isdigit() else 0 for p in version.split("-")[0].split(".")[:3]] + [0, 0, 0]
    major, minor = parts[0], parts[1]
    chat_props: dict[str, Any] = {"message": {"type": "string", "title": "Message"}}
    required = ["message"]
    path = "/api/v1/chat"
    if major >= 2:
        chat_props = {"prompt": {"type": "string", "title": "Prompt"}}
        required = ["prompt"]
        path = "/api/v2/chat"
    elif minor >= 5:
        chat_props["stream"] = {"type": "boolean", "title": "Stream", "default": False}
    return {
        "openapi": "3.1.0",
        "info": {"title": "PratikoAI API", "version": version},
        "paths": {
            "/health": {"get": {"operationId": "health", "responses": {"200": {"description": "OK"}}}},
            path: {
                "post": {
                    "operationId": "chat",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatRequest"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "Successful Response",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatResponse"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "ChatRequest": {"type": "object", "properties": chat_props, "required": required, "title": "ChatRequest"},
                "ChatResponse": {
                    "type": "object",
                    "properties": {"answer": {"type": "string", "title": "Answer"}},
                    "required": ["answer"],
                    "title": "ChatResponse",
                },
            }
        },
    }


@dataclass
class BehaviourSource:
    """The control file, re-read when its (mtime, size) changes; checked at most every 50 ms."""

    path: Path | None
    version: str
    _key: tuple[int, int] | None = None
    _checked: float = 0.0
    _current: Behaviour = field(default_factory=Behaviour)
    _generation: int = 0  # bumps when the behaviour changes, restarting the error sequence
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, now: float) -> tuple[Behaviour, int]:
        with self._lock:
            if self.path is not None and now - self._checked >= 0.05:
                self._checked = now
                self._reload()
            return self._current, self._generation

    def _reload(self) -> None:
        assert self.path is not None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            key = None
        else:
            key = (st.st_mtime_ns, st.st_size)
        if key == self._key:
            return
        self._key = key
        try:
            new = behaviour_for(json.loads(self.path.read_text()), self.version) if key else Behaviour()
        except (OSError, ValueError) as exc:
            # A half-edited file by hand: keep the last good behaviour rather than crash the task.
            print(f"workload {self.version}: ignoring bad behaviour file: {exc}", file=sys.stderr)
            return
        if new != self._current:
            self._current = new
            self._generation += 1


class Workload:
    """The state one workload process serves from: version, behaviour, metrics, request counter."""

    def __init__(self, version: str, behaviour_file: Path | None) -> None:
        self.version = version
        self.source = BehaviourSource(behaviour_file, version)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "HTTP requests served", ["version", "status"], registry=self.registry
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._seq = 0
        self._seq_generation = 0
        self.started = time.time()
        self.started_monotonic = time.monotonic()

    def next_fails(self, behaviour: Behaviour, generation: int) -> bool:
        with self._lock:
            if generation != self._seq_generation:
                self._seq_generation = generation
                self._seq = 0
            n = self._seq
            self._seq += 1
        return fails(n, behaviour.error_rate)


def make_handler(workload: Workload) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"pratiko-backend/{workload.version}"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # the balancer logs every request; a line per request here would only cost CPU

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Backend-Version", workload.version)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, doc: Any) -> None:
            self._send(status, json.dumps(doc).encode())

        def _serve(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            behaviour, generation = workload.source.get(time.monotonic())
            if path == "/metrics":
                self._send(200, generate_latest(workload.registry), CONTENT_TYPE_LATEST)
                return
            if path == "/openapi.json":
                self._json(200, dict(behaviour.openapi) if behaviour.openapi else openapi_document(workload.version))
                return
            if path in ("/health", "/healthz"):
                if behaviour.health_latency_ms > 0 and path == "/health":  # the deep check; /healthz stays quick
                    time.sleep(behaviour.health_latency_ms / 1000.0)
                age = time.monotonic() - workload.started_monotonic
                passing = behaviour.passes_health_check(age)
                status = "ok" if passing else ("starting" if age < behaviour.start_seconds else "failing")
                components = {"api": "ok", "database": status, "cache": "ok", "dependencies": "ok"}
                self._json(
                    200 if passing else 503,
                    {"status": status, "version": workload.version, "components": components},
                )
                return
            start = time.perf_counter()
            if behaviour.latency_ms > 0:
                time.sleep(behaviour.latency_ms / 1000.0)
            failed = workload.next_fails(behaviour, generation)
            code = 500 if failed else 200
            if failed:
                doc: dict[str, Any] = {"detail": "Internal Server Error", "version": workload.version}
            else:
                doc = {"status": "ok", "version": workload.version, "path": path}
            # Counted before the answer leaves: a client that reads /metrics right after its answer
            # (a scrape, a test) must find its request counted.
            workload.requests.labels(version=workload.version, status=str(code)).inc()
            workload.duration.labels(version=workload.version).observe(time.perf_counter() - start)
            self._json(code, doc)

        do_GET = _serve  # noqa: N815 - http.server's naming
        do_POST = _serve  # noqa: N815
        do_HEAD = _serve  # noqa: N815

    return Handler


def _exit_with_parent(parent: int) -> None:
    """Exit when the supervising process is gone, so a killed test leaves no workload behind."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.testing.dataplane.workload")
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--behaviour-file", type=Path)
    parser.add_argument("--parent-pid", type=int, help="exit when this process is no longer our parent"
                        " (default: the parent at start-up; pass it, since the parent may die before we start)")
    parser.add_argument("--no-parent-watch", action="store_true", help="keep running if the parent exits")
    args = parser.parse_args(argv)

    workload = Workload(args.version, args.behaviour_file)
    if workload.source.get(time.monotonic())[0].crash_on_start:
        print(f"workload {args.version}: crash_on_start: exiting with code {CRASH_EXIT_CODE}", file=sys.stderr)
        return CRASH_EXIT_CODE
    # Pre-create both label series so Prometheus sees a 0 for errors before the first error:
    # rate() over a series that appears mid-window would undercount the first errors.
    for status in ("200", "500"):
        workload.requests.labels(version=args.version, status=status)
    workload.duration.labels(version=args.version)

    server = ThreadingHTTPServer((args.host, args.port), make_handler(workload))
    server.daemon_threads = True
    if not args.no_parent_watch:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid or os.getppid(),), daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
