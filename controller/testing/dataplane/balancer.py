"""A local stand-in for the ALB listener: routes each request by the listener's rules, then by weight.

The routing table (the listener's rules, its default action's weights and the ready workloads of
each target group) is pushed in by the supervisor, which reads it from moto; the balancer never
calls AWS itself, so routing a request costs no AWS round trip. Each request goes to the first rule
whose conditions hold, in ALB's order (lowest priority number first, the default action last; see
`rules` for the conditions and actions played and the AWS documentation they follow). A forward
picks its target group by smooth weighted round-robin (nginx's algorithm), one sequence per rule,
which is deterministic: with weights 90/10 every 100 consecutive requests of that rule hold exactly
90 and 10, interleaved rather than in bursts. Within a target group, workloads take turns.

Every request is logged as one JSON line (`time`, `rule`, `target_group`, `task_set`, `version`,
`status`, `latency_ms`, `method`, `path`), flushed at once: the rollback benchmark reads this log
to time the span from the first request routed to a bad canary to the last one.

Like an ALB, a target group with no ready target answers 503, and so does a forward with no weight.

Unlike an ALB, `/_version/<version>/<path>` goes to a ready workload of that version, whatever the
weights and rules, and is not logged: the stand-in for a per-version host name (a Kubernetes
Service, a Cloud Map name) that an http metric probes the canary by (`http: {url: .../_version/{{version}}/health}`).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from controller.testing.dataplane.rules import DEFAULT, FixedResponse, Request, Rule
from controller.testing.ports import free_port, serve_in_background, stop_serving

# Headers that describe one hop of the connection, not the message (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "content-length"}
)


VERSION_PREFIX = "/_version/"


@dataclass(frozen=True)
class Target:
    """One workload registered in a target group."""

    host: str
    port: int
    version: str
    task_set: str


class SmoothWeightedRoundRobin:
    """nginx's smooth weighted round-robin over keys, deterministic for given weights.

    Worked example, weights {a: 5, b: 1, c: 1}: the picks are a a b a c a a, then repeat; each pick
    adds every weight to its key's running score, takes the highest (ties: first key in sorted
    order), and subtracts the total from the winner.
    """

    def __init__(self, weights: Mapping[str, int]) -> None:
        self.weights = {k: w for k, w in sorted(weights.items()) if w > 0}
        self.total = sum(self.weights.values())
        self.current = dict.fromkeys(self.weights, 0)

    def pick(self) -> str | None:
        if not self.weights:
            return None
        best: str | None = None
        for key, weight in self.weights.items():
            self.current[key] += weight
            if best is None or self.current[key] > self.current[best]:
                best = key
        assert best is not None
        self.current[best] -= self.total
        return best


@dataclass(frozen=True)
class Route:
    target_group: str | None
    target: Target | None
    rule: str = DEFAULT  # the label of the rule that decided: its priority, or "default"
    fixed: FixedResponse | None = None  # a fixed-response action: answered by the balancer itself
    unsupported: str | None = None  # an action type the local balancer does not play (a redirect)


class Router:
    """The shared routing state: replaced whole by the supervisor, read per request by handlers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._weights: dict[str, int] = {}
        self._wrr = SmoothWeightedRoundRobin({})
        self._rules: tuple[Rule, ...] = ()
        self._rule_wrr: dict[str, tuple[dict[str, int], SmoothWeightedRoundRobin]] = {}
        self._targets: dict[str, tuple[Target, ...]] = {}
        self._turn: dict[str, int] = {}

    def update(self, weights: Mapping[str, int], targets: Mapping[str, Sequence[Target]],
               rules: Sequence[Rule] = ()) -> None:
        """`weights`: the default action's forward; `rules`: the listener's other rules (any order;
        a default rule among them is ignored, `weights` stands for it)."""
        with self._lock:
            new_weights = dict(weights)
            if new_weights != self._weights:
                # A new weight split restarts the sequence, so the next N requests match it exactly.
                self._weights = new_weights
                self._wrr = SmoothWeightedRoundRobin(new_weights)
            ordered = sorted((r for r in rules if r.priority is not None), key=lambda r: r.priority or 0)
            self._rules = tuple(ordered)
            kept: dict[str, tuple[dict[str, int], SmoothWeightedRoundRobin]] = {}
            for rule in ordered:
                key = rule.arn or rule.label
                old = self._rule_wrr.get(key)
                rule_weights = dict(rule.weights)
                kept[key] = old if old is not None and old[0] == rule_weights else (
                    rule_weights, SmoothWeightedRoundRobin(rule_weights))
            self._rule_wrr = kept
            self._targets = {tg: tuple(ts) for tg, ts in targets.items()}

    @property
    def weights(self) -> dict[str, int]:
        """The default action's weights."""
        with self._lock:
            return dict(self._weights)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The listener's rules other than the default, in evaluation order."""
        with self._lock:
            return self._rules

    def targets(self, target_group: str) -> tuple[Target, ...]:
        with self._lock:
            return self._targets.get(target_group, ())

    def of_version(self, version: str) -> Target | None:
        with self._lock:
            return next((t for pool in self._targets.values() for t in pool if t.version == version), None)

    def route(self, request: Request | None = None) -> Route:
        """Where `request` goes (without one: a `GET /` with no header)."""
        request = request or Request("GET", "/")
        with self._lock:
            rule = next((r for r in self._rules if r.matches(request)), None)
            if rule is None:
                label, wrr = DEFAULT, self._wrr
            elif rule.fixed is not None or rule.unsupported is not None:
                return Route(None, None, rule.label, rule.fixed, rule.unsupported)
            else:
                label, wrr = rule.label, self._rule_wrr[rule.arn or rule.label][1]
            tg = wrr.pick()
            if tg is None:
                return Route(None, None, label)
            pool = self._targets.get(tg, ())
            if not pool:
                return Route(tg, None, label)
            turn = self._turn.get(tg, 0)
            self._turn[tg] = turn + 1
            return Route(tg, pool[turn % len(pool)], label)


class RequestLog:
    """JSON lines, one per request, flushed per line so a reader sees them while traffic flows."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, entry: Mapping[str, Any]) -> None:
        if self._file is None:
            return
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._lock:
            if self._file is not None:
                self._file.write(line)
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_log(path: Path) -> list[dict[str, Any]]:
    """The entries of a balancer log (skips a torn last line)."""
    out: list[dict[str, Any]] = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _make_handler(router: Router, log: RequestLog, timeout: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "dataplane-balancer"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # our own JSON log replaces the stdlib access log

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _probe(self) -> bool:
            """`/_version/<v>/<path>`: straight to a workload of that version (see the module docstring)."""
            if not self.path.startswith(VERSION_PREFIX):
                return False
            version, _, rest = self.path[len(VERSION_PREFIX):].partition("/")
            target = router.of_version(version)
            if target is None:
                # No workload of that version: as a name that resolves to nothing, no answer at all.
                self.close_connection = True
                return True
            try:
                conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
                try:
                    conn.request(self.command, "/" + rest)
                    resp = conn.getresponse()
                    data = resp.read()
                    headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
                    self._reply(resp.status, headers, data)
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException):
                self._reply(502, [("Content-Type", "application/json")], b'{"detail":"bad gateway"}')
            return True

        def _forward(self) -> None:
            if self._probe():
                return
            start = time.time()
            t0 = time.perf_counter()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, self.path, tuple(self.headers.items()), self.client_address[0])
            route = router.route(request)
            status: int
            if route.fixed is not None:
                status = route.fixed.status
                self._reply(status, [("Content-Type", route.fixed.content_type)], route.fixed.body.encode())
            elif route.unsupported is not None:
                status = 501
                detail = json.dumps({"detail": f"rule {route.rule}: action {route.unsupported} is not played locally"})
                self._reply(status, [("Content-Type", "application/json")], detail.encode())
            elif route.target is None:
                status = 503
                self._reply(status, [("Content-Type", "application/json")], b'{"detail":"no healthy target"}')
            else:
                target = route.target
                try:
                    conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
                    try:
                        fwd = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                        fwd["X-Forwarded-For"] = self.client_address[0]
                        conn.request(self.command, self.path, body=body or None, headers=fwd)
                        resp = conn.getresponse()
                        data = resp.read()
                        status = resp.status
                        headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
                    finally:
                        conn.close()
                except (OSError, http.client.HTTPException):
                    # The workload died or hung: an ALB answers 502 for a target that fails mid-request.
                    status = 502
                    headers = [("Content-Type", "application/json")]
                    data = b'{"detail":"bad gateway"}'
                self._reply(status, headers, data)
            log.write(
                {
                    "time": round(start, 6),
                    "rule": route.rule,
                    "target_group": route.target_group,
                    "task_set": route.target.task_set if route.target else None,
                    "version": route.target.version if route.target else None,
                    "status": status,
                    "latency_ms": round((time.perf_counter() - t0) * 1000.0, 3),
                    "method": self.command,
                    "path": self.path,
                }
            )

        do_GET = _forward  # noqa: N815 - http.server's naming
        do_POST = _forward  # noqa: N815
        do_PUT = _forward  # noqa: N815
        do_DELETE = _forward  # noqa: N815
        do_HEAD = _forward  # noqa: N815

    return Handler


class Balancer:
    """The HTTP front door on a loopback port; `start()` serves in a background thread."""

    def __init__(
        self,
        router: Router | None = None,
        log_path: Path | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        upstream_timeout: float = 10.0,
    ) -> None:
        self.router = router or Router()
        self.log = RequestLog(log_path)
        self.host = host
        self.port = port
        self.upstream_timeout = upstream_timeout
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        self.port = self.port or free_port()
        server = ThreadingHTTPServer((self.host, self.port), _make_handler(self.router, self.log, self.upstream_timeout))
        server.daemon_threads = True
        self._server = server
        self._thread = serve_in_background(server, "dataplane-balancer")
        return self.url

    def stop(self) -> None:
        stop_serving(self._server, self._thread, timeout=5)
        self._server = self._thread = None
        self.log.close()
