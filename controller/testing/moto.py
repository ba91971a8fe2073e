"""A moto server over HTTP on a loopback port: the AWS the controller talks to locally.

Started as a separate process, so the operator, the tests and the data plane all see one shared
AWS, exactly as they would see the real one. The process is `controller.testing.local_ecs`: moto's
own server plus the ECS behaviour moto lacks (tasks, stability, target health as the data plane
really runs them); see that module for where it leaves moto's public API.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from controller.testing.ports import free_port, wait_until


@dataclass
class MotoServer:
    log_path: Path | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)  # e.g. INITIAL_NO_AUTH_ACTION_COUNT=0: check credentials

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> str:
        self.port = self.port or free_port()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "controller.testing.local_ecs", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true", **self.extra_env},
        )

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2) as resp:
                return bool(resp.status == 200)

        wait_until(ready, timeout, "moto server")
        return self.endpoint

    def reset(self) -> None:
        """Forget every AWS resource (between tests)."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def __enter__(self) -> "MotoServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
