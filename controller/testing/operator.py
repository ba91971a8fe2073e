"""The operator as a separate process, started the way a Deployment starts it.

Tests, the demo and the benchmarks run `release-controller run` in a child process against the
local environment, so they exercise the real command line, kopf, and the real APIs; and they can
kill it (SIGKILL) mid-rollout to prove a restart converges.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from controller.testing.ports import free_port, wait_until


class ProcessExited(ProcessLookupError):
    pass


@dataclass
class OperatorProcess:
    env: Mapping[str, str]
    namespaces: Sequence[str] = ()
    resync: float = 30.0
    log_path: Path | None = None
    extra_args: Sequence[str] = ()
    # Tests that are not about tenancy run the operator open, as it was before ReleasePolicies; the
    # tenancy tests (tests/e2e/test_tenancy.py) run it strict, the default of `release-controller run`.
    tenancy: str = "open"
    liveness_port: int = 0
    metrics_port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def command(self) -> list[str]:
        scope = [arg for ns in self.namespaces for arg in ("--namespace", ns)] or ["--all-namespaces"]
        return [
            sys.executable, "-m", "controller.cli", "run", *scope,
            "--resync", str(self.resync),
            "--liveness-port", str(self.liveness_port),
            "--metrics-port", str(self.metrics_port),
            "--tenancy", self.tenancy,
            *self.extra_args,
        ]

    def start(self, timeout: float = 60) -> "OperatorProcess":
        self.liveness_port = self.liveness_port or free_port()
        self.metrics_port = self.metrics_port or free_port()
        self._log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command(),
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self.healthy, timeout, "operator /healthz")
        return self

    def _exited(self) -> str | None:
        if self.process is None or self.process.poll() is not None:
            code = self.process.returncode if self.process else None
            tail = self.log_path.read_text()[-2000:] if self.log_path and self.log_path.exists() else ""
            return f"operator exited with {code}:\n{tail}"
        return None

    def healthy(self) -> bool:
        if (why := self._exited()) is not None:
            raise ProcessExited(why)
        with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def kill(self) -> None:
        """SIGKILL, as an OOM kill or a node loss would: no cleanup runs."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close()

    def stop(self, timeout: float = 20) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> "OperatorProcess":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
