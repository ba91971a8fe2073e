"""The whole local environment in one directory: Kubernetes API, AWS (moto) and Prometheus.

`LocalEnvironment(DIR).up()` starts etcd + kube-apiserver, a moto server and Prometheus, each in
its own session so they outlive the process that started them (`release-controller dev up` exits
right after). It writes:

- `DIR/env.sh`, for a shell to source: KUBECONFIG, AWS_ENDPOINT_URL, AWS_REGION,
  AWS_DEFAULT_REGION, fake AWS credentials and PROMETHEUS_URL;
- `DIR/state.json`, the pids (with their start times) and endpoints, so that
  `LocalEnvironment(DIR).down()` in any later process can stop exactly those processes.

`down()` stops everything recorded, waits until no process of the environment is left, and removes
`env.sh` and `state.json`; the logs and data under DIR stay for a post-mortem. It is safe to call
twice. The pytest fixtures (tests/conftest.py) use the same two calls.

This module must not build binaries (binaries.py) nor know about Releases or the operator.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from controller.testing.binaries import Binaries, ensure_binaries
from controller.testing.kube import KubeApiServer
from controller.testing.moto import MotoServer
from controller.testing.ports import StartedProcess, process_alive, process_start_time
from controller.testing.prometheus import PrometheusServer

AWS_REGION = "eu-west-1"
FAKE_AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_STATE_VERSION = 1


class EnvironmentStateError(RuntimeError):
    """The environment is not in the state the call needs (not up, or already up)."""


@dataclass
class LocalEnvironment:
    directory: Path
    binaries: Binaries | None = None
    scrape_interval: str = "1s"
    kube: KubeApiServer | None = field(default=None, repr=False)
    moto: MotoServer | None = field(default=None, repr=False)
    prometheus: PrometheusServer | None = field(default=None, repr=False)
    # Wall time of the last up(), for reports and the README's numbers.
    startup_seconds: float | None = None

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).resolve()

    @property
    def state_path(self) -> Path:
        return self.directory / "state.json"

    @property
    def env_sh(self) -> Path:
        return self.directory / "env.sh"

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kube" / "kubeconfig"

    # --- lifecycle ---

    def up(self, timeout: float = 180) -> LocalEnvironment:
        """Start every server, write env.sh and state.json; return self once all are ready."""
        if self.state_path.exists():
            if any(p.pid and process_alive(p.pid, p.start_time) for p in self._recorded()):
                raise EnvironmentStateError(
                    f"an environment is already up in {self.directory}; run down first"
                )
            self.state_path.unlink()  # left by a crashed run whose processes are all gone
        self.directory.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        binaries = self.binaries or ensure_binaries()
        self.binaries = binaries
        self.kube = KubeApiServer(self.directory / "kube", binaries=binaries)
        self.moto = MotoServer(log_path=self.directory / "moto.log")
        self.prometheus = PrometheusServer(
            self.directory / "prometheus", scrape_interval=self.scrape_interval
        )
        kube, moto, prometheus = self.kube, self.moto, self.prometheus
        try:
            # The three are independent; starting them together saves the moto and Prometheus
            # start-up time, which is otherwise spent waiting on kube-apiserver's /readyz.
            with ThreadPoolExecutor(max_workers=3, thread_name_prefix="env-up") as pool:
                futures: list[Future[object]] = [
                    pool.submit(kube.start, timeout),
                    pool.submit(moto.start, timeout),
                    pool.submit(prometheus.start, timeout),
                ]
                for future in futures:
                    future.result()
            self._write_state()
            self._write_env_sh()
        except BaseException:
            self._stop_components()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def down(self, timeout: float = 20) -> None:
        """Stop every process of this environment (from any process) and wait until all are gone."""
        recorded = self._recorded()
        for process in reversed(recorded):
            process.stop(timeout)
        self._stop_components()
        left = [p for p in recorded if process_alive(p.pid, p.start_time)]
        if left:
            raise EnvironmentStateError(f"still running after down: {left}")
        self.state_path.unlink(missing_ok=True)
        self.env_sh.unlink(missing_ok=True)

    def __enter__(self) -> LocalEnvironment:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    # --- what users of the environment need ---

    def env_vars(self) -> dict[str, str]:
        """The variables env.sh exports; from state.json when this process did not start it."""
        if self.kube is not None and self.moto is not None and self.prometheus is not None:
            return {
                "KUBECONFIG": str(self.kube.kubeconfig),
                "AWS_ENDPOINT_URL": self.moto.endpoint,
                "AWS_REGION": AWS_REGION,
                "AWS_DEFAULT_REGION": AWS_REGION,
                **FAKE_AWS_CREDENTIALS,
                "PROMETHEUS_URL": self.prometheus.url,
            }
        state = self._read_state()
        if state is None:
            raise EnvironmentStateError(f"no environment is up in {self.directory}")
        env: dict[str, str] = state["env"]
        return env

    def kube_server(self) -> KubeApiServer:
        """The API server, also from a process that did not start it (e.g. after `dev up`).

        Enough to mint kubeconfigs for other identities (`kubeconfig_for`,
        `service_account_kubeconfig`); stopping stays with `down()`.
        """
        if self.kube is not None:
            return self.kube
        state = self._read_state()
        if state is None:
            raise EnvironmentStateError(f"no environment is up in {self.directory}")
        return KubeApiServer(Path(state["kube_workdir"]), secure_port=int(state["kube_secure_port"]))

    @property
    def processes(self) -> list[StartedProcess]:
        """The environment's processes in start order, as recorded in state.json."""
        return self._recorded()

    # --- internals ---

    def _started_processes(self) -> list[StartedProcess]:
        assert self.kube is not None and self.moto is not None and self.prometheus is not None
        moto_process = self.moto.process
        assert moto_process is not None
        moto = StartedProcess("moto", moto_process.pid, process_start_time(moto_process.pid))
        return [*self.kube.processes, moto, *self.prometheus.processes]

    def _write_state(self) -> None:
        assert self.kube is not None and self.prometheus is not None
        state: dict[str, Any] = {
            "version": _STATE_VERSION,
            "env": self.env_vars(),
            "processes": [vars(p) for p in self._started_processes()],
            "kube_workdir": str(self.kube.workdir),
            "kube_secure_port": self.kube.secure_port,
            "prometheus_targets_dir": str(self.prometheus.targets_dir),
        }
        _write_atomic(self.state_path, json.dumps(state, indent=2) + "\n")

    def _write_env_sh(self) -> None:
        lines = [
            "# Written by `release-controller dev up`. Load it with: . " + shlex.quote(str(self.env_sh)),
            *(f"export {k}={shlex.quote(v)}" for k, v in self.env_vars().items()),
        ]
        _write_atomic(self.env_sh, "\n".join(lines) + "\n")

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        return state

    def _recorded(self) -> list[StartedProcess]:
        state = self._read_state()
        if state is None:
            return []
        return [StartedProcess(**p) for p in state.get("processes", [])]

    def _stop_components(self) -> None:
        """Stop what this process started (and reap it); a no-op for components already gone."""
        for component in (self.prometheus, self.moto, self.kube):
            if component is not None:
                component.stop()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
