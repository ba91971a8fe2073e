"""A real Prometheus on loopback that scrapes whatever the local data plane registers.

`PrometheusServer(workdir).start()` writes `workdir/prometheus.yml` with a short scrape interval,
a job for Prometheus itself and a `file_sd` job that reads `workdir/targets/*.json`, then runs the
Debian package's `/usr/bin/prometheus` (not its systemd service) with storage in `workdir`.
A simulated workload becomes a scrape target by writing one file there (`register_target`); no
reload is needed, Prometheus watches the directory.

This module must not decide what to scrape or which queries mean "healthy": it only runs the server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.testing.ports import StartedProcess, exited_error, free_port, spawn, wait_until

PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
INSTALL_HINT = "apt-get install -y prometheus  (Debian's package; its systemd service is not needed)"


def find_prometheus() -> Path:
    """The Prometheus binary: /usr/bin/prometheus, else `prometheus` on PATH."""
    if os.access(PROMETHEUS_BINARY, os.X_OK):
        return PROMETHEUS_BINARY
    on_path = shutil.which("prometheus")
    if on_path:
        return Path(on_path)
    raise FileNotFoundError(f"Prometheus is not installed ({PROMETHEUS_BINARY} missing); run: {INSTALL_HINT}")


def register_target(
    targets_dir: Path, name: str, address: str, labels: Mapping[str, str] | None = None
) -> Path:
    """Make `address` (host:port serving /metrics) a scrape target, labelled with `labels`.

    Written to a temporary name and renamed, so Prometheus never reads half a file.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"target name {name!r} must be a plain file name")
    targets_dir.mkdir(parents=True, exist_ok=True)
    path = targets_dir / f"{name}.json"
    tmp = targets_dir / f".{name}.json.tmp"
    tmp.write_text(json.dumps([{"targets": [address], "labels": dict(labels or {})}]))
    os.replace(tmp, path)
    return path


def unregister_target(targets_dir: Path, name: str) -> None:
    (targets_dir / f"{name}.json").unlink(missing_ok=True)


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    if not match:
        raise ValueError(f"scrape interval {duration!r} is not like '1s', '500ms' or '1m'")
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match[2]]
    return float(match[1]) * factor


@dataclass
class PrometheusServer:
    workdir: Path
    scrape_interval: str = "1s"
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _started: StartedProcess | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _seconds(self.scrape_interval)  # reject a bad interval before anything is written

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets_dir(self) -> Path:
        return self.workdir / "targets"

    @property
    def config_path(self) -> Path:
        return self.workdir / "prometheus.yml"

    @property
    def processes(self) -> list[StartedProcess]:
        return [self._started] if self._started else []

    def config(self) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                # Prometheus refuses a timeout longer than the interval (its default is 10s).
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": "prometheus",
                    "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}],
                },
                {
                    "job_name": "local",
                    "file_sd_configs": [
                        {
                            "files": [str(self.targets_dir / "*.json")],
                            # A fallback only: file changes are normally seen at once (inotify).
                            "refresh_interval": "5s",
                        }
                    ],
                },
            ],
        }

    def start(self, timeout: float = 60) -> str:
        """Write the config, start Prometheus, and return its URL once /-/ready answers."""
        binary = find_prometheus()
        self.workdir = Path(self.workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(exist_ok=True)
        self.port = self.port or free_port()
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        log = self.workdir / "prometheus.log"
        self._process, self._started = spawn(
            "prometheus",
            [
                str(binary),
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                # Lets a test reload a changed config with POST /-/reload.
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            log,
        )

        def ready() -> bool:
            assert self._process is not None
            if self._process.poll() is not None:
                raise exited_error(self._process, "prometheus", log)
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)

        try:
            wait_until(ready, timeout, "prometheus")
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self, timeout: float = 15) -> None:
        if self._started is not None:
            self._started.stop(timeout)
        if self._process is not None:
            self._process.poll()
        self._process = self._started = None

    def register_target(
        self, name: str, address: str, labels: Mapping[str, str] | None = None
    ) -> Path:
        return register_target(self.targets_dir, name, address, labels)

    def unregister_target(self, name: str) -> None:
        unregister_target(self.targets_dir, name)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result vector of an instant query (empty when nothing matches yet)."""
        return query(self.url, promql)


def query(url: str, promql: str, timeout: float = 10) -> list[dict[str, Any]]:
    """Run an instant query against the Prometheus at `url` and return `data.result`."""
    full = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(full, timeout=timeout) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise RuntimeError(f"prometheus query {promql!r} failed: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result
