"""A load generator: requests at a steady rate against the balancer, until a duration or a count.

Request i is sent at `start + i / rate` (an open-loop schedule, as real users arrive regardless of
how slow the service is), by a small thread pool so a slow version does not lower the rate. If the
pool falls behind, requests go out late rather than being skipped, and `late` counts them.

It stops by itself (a duration or a count is required for `run`; `start` without either runs until
`stop`). Every request carries `headers` (a preview header, say). Stats are kept by status and by the version the backend reported (`X-Backend-Version`).
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LoadStats:
    sent: int
    by_status: dict[int, int]  # status 0: no response (connection error or timeout)
    by_version: dict[str, int]
    by_version_status: dict[str, dict[int, int]]
    late: int
    elapsed: float

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.by_status.items() if status == 0 or status >= 500)

    @property
    def error_rate(self) -> float:
        return self.errors / self.sent if self.sent else 0.0

    def version_error_rate(self, version: str) -> float:
        """The share of `version`'s responses that were 5xx."""
        statuses = self.by_version_status.get(version, {})
        total = sum(statuses.values())
        return sum(n for s, n in statuses.items() if s >= 500) / total if total else 0.0


@dataclass
class LoadGenerator:
    url: str
    rate: float = 50.0
    duration: float | None = None
    count: int | None = None
    path: str = "/"
    timeout: float = 5.0
    workers: int = 16
    headers: Mapping[str, str] = field(default_factory=dict)
    _status: Counter[int] = field(default_factory=Counter)
    _versions: Counter[str] = field(default_factory=Counter)
    _version_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    _sent: int = 0
    _late: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _halt: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0
    _finished: float | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        parsed = urllib.parse.urlsplit(self.url)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 80
        self._target = (parsed.path.rstrip("/") + self.path) or "/"

    def run(self) -> LoadStats:
        """Send the whole load in this thread; returns when done."""
        if self.duration is None and self.count is None:
            raise ValueError("run() needs a duration or a count; use start()/stop() for open-ended load")
        self._run()
        return self.stats()

    def start(self) -> "LoadGenerator":
        """Send in the background; `join()` waits for a bounded load, `stop()` ends it early."""
        self._thread = threading.Thread(target=self._run, name="dataplane-loadgen", daemon=True)
        self._thread.start()
        return self

    @property
    def finished(self) -> bool:
        """True once a started load has sent everything it was bounded to (or was stopped)."""
        return self._thread is not None and not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> LoadStats:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.stats()

    def stop(self) -> LoadStats:
        self._halt.set()
        return self.join(timeout=self.timeout + 5)

    def __enter__(self) -> "LoadGenerator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> LoadStats:
        with self._lock:
            end = self._finished if self._finished is not None else time.monotonic()
            return LoadStats(
                sent=self._sent,
                by_status=dict(self._status),
                by_version=dict(self._versions),
                by_version_status=_nest(self._version_status),
                late=self._late,
                elapsed=max(0.0, end - self._started) if self._started else 0.0,
            )

    def _run(self) -> None:
        self._started = time.monotonic()
        interval = 1.0 / self.rate
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="loadgen") as pool:
            i = 0
            while not self._halt.is_set():
                if self.count is not None and i >= self.count:
                    break
                due = self._started + i * interval
                if self.duration is not None and due - self._started >= self.duration:
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    if self._halt.wait(delay):
                        break
                elif delay < -interval:
                    with self._lock:
                        self._late += 1
                pool.submit(self._one)
                i += 1
        with self._lock:
            self._finished = time.monotonic()

    def _one(self) -> None:
        status, version = 0, None
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            conn.request("GET", self._target, headers=dict(self.headers))
            resp = conn.getresponse()
            resp.read()
            status, version = resp.status, resp.getheader("X-Backend-Version")
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        with self._lock:
            self._sent += 1
            self._status[status] += 1
            if version:
                self._versions[version] += 1
                self._version_status[(version, status)] += 1


def _nest(counts: Counter[tuple[str, int]]) -> dict[str, dict[int, int]]:
    out: dict[str, dict[int, int]] = {}
    for (version, status), n in counts.items():
        out.setdefault(version, {})[status] = n
    return out
