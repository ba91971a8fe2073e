"""Flux's source-controller and kustomize-controller for the local environment (a real GitOps engine).

Both are built from their Go modules by `binaries.ensure_go_tool` (a wrapper module that inherits
their `replace` lines) and cached by version like etcd and kube-apiserver. Their CRDs are read
from the same module versions in the Go module cache (`config/crd/bases`, located with
`go mod download -json`), never copied into this repository.

`FluxControllers(env, work_dir).start()` installs the CRDs into the API server named by
`env["KUBECONFIG"]` and runs both controllers against it with every address on 127.0.0.1: metrics
and health on free ports, no leader election, the artifact storage in `work_dir` and served (and
advertised to kustomize-controller) on 127.0.0.1. `git_repository` and `kustomization` render the
two objects a test applies: a GitRepository on the local Git server (basic auth through a Secret)
and a Kustomization with `wait: true` applying one directory of it.

Must not: listen beyond loopback, or reach anything but the local API server and Git server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from controller.testing.binaries import ensure_go_tool
from controller.testing.kubectl import kubectl, wait_established
from controller.testing.ports import StartedProcess, exited_error, free_port, spawn, wait_until

# v1.10.x needs go >= 1.27 (k8s.io/* v0.37). source-controller v1.9.4..v1.9.6 need
# github.com/fluxcd/pkg/artifact v0.18.2/v0.18.3, which this module proxy refuses (403 "not
# available"); v1.9.3 (artifact v0.18.1) is the newest whose whole go.mod resolves here.
# kustomize-controller v1.9.6 resolves fully. Both: go 1.26.0, k8s.io/* v0.36, fine against v1.34.
SOURCE_CONTROLLER_VERSION = "v1.9.3"
KUSTOMIZE_CONTROLLER_VERSION = "v1.9.6"
SOURCE_CONTROLLER_MODULE = "github.com/fluxcd/source-controller"
KUSTOMIZE_CONTROLLER_MODULE = "github.com/fluxcd/kustomize-controller"


@dataclass(frozen=True)
class FluxBinaries:
    source_controller: Path
    kustomize_controller: Path


def ensure_flux(cache_dir: Path | None = None, *, log: TextIO | None = None) -> FluxBinaries:
    """Build (once per machine and version) and return both controllers."""
    out = log if log is not None else sys.stderr
    source = ensure_go_tool(
        "source-controller", SOURCE_CONTROLLER_MODULE, SOURCE_CONTROLLER_VERSION,
        inherit_replaces=True, cache_dir=cache_dir, log=out,
    )
    kustomize = ensure_go_tool(
        "kustomize-controller", KUSTOMIZE_CONTROLLER_MODULE, KUSTOMIZE_CONTROLLER_VERSION,
        inherit_replaces=True, cache_dir=cache_dir, log=out,
    )
    return FluxBinaries(source_controller=source, kustomize_controller=kustomize)


def module_dir(module: str, version: str) -> Path:
    """Where the Go module cache holds `module@version` (downloaded by the build already)."""
    with tempfile.TemporaryDirectory(prefix="flux-mod-") as scratch:
        Path(scratch, "go.mod").write_text("module scratch\n\ngo 1.24\n")
        out = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], cwd=scratch,
                             capture_output=True, text=True, check=False, env={**os.environ, "GOFLAGS": "-mod=mod"})
    info = json.loads(out.stdout or "{}")
    if "Dir" not in info:
        raise RuntimeError(f"go mod download {module}@{version}: {info.get('Error') or out.stderr.strip()}")
    return Path(info["Dir"])


def crd_files() -> list[Path]:
    """The CRDs of both controllers at the pinned versions, from the module cache."""
    files = []
    for module, version in [(SOURCE_CONTROLLER_MODULE, SOURCE_CONTROLLER_VERSION),
                            (KUSTOMIZE_CONTROLLER_MODULE, KUSTOMIZE_CONTROLLER_VERSION)]:
        files += sorted((module_dir(module, version) / "config" / "crd" / "bases").glob("*.yaml"))
    return files


FLUX_NAMESPACE = "flux-system"


@dataclass
class FluxControllers:
    """source-controller + kustomize-controller running against the local API server."""

    env: Mapping[str, str]
    work_dir: Path
    interval: str = "5s"
    binaries: FluxBinaries | None = None
    processes: list[StartedProcess] = field(default_factory=list)
    storage_port: int = 0

    def start(self, timeout: float = 120) -> FluxControllers:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        bins = self.binaries or ensure_flux()
        for crd in crd_files():
            kubectl(self.env, "apply", "--server-side", "-f", str(crd))
        wait_established(self.env, 60, ("crd/gitrepositories.source.toolkit.fluxcd.io",
                                        "crd/kustomizations.kustomize.toolkit.fluxcd.io"))
        if FLUX_NAMESPACE not in kubectl(self.env, "get", "namespaces", "-o", "name"):
            kubectl(self.env, "create", "namespace", FLUX_NAMESPACE)
        storage = self.work_dir / "storage"
        storage.mkdir(exist_ok=True)
        self.storage_port = free_port()
        common = ["--watch-all-namespaces=true", "--log-level=info", "--log-encoding=json",
                  "--enable-leader-election=false", "--events-addr="]
        source_health, kustomize_health = free_port(), free_port()
        self._run("source-controller", [
            str(bins.source_controller), *common,
            f"--metrics-addr=127.0.0.1:{free_port()}", f"--health-addr=127.0.0.1:{source_health}",
            f"--storage-path={storage}", f"--storage-addr=127.0.0.1:{self.storage_port}",
            f"--storage-adv-addr=127.0.0.1:{self.storage_port}",
        ], source_health, timeout)
        self._run("kustomize-controller", [
            str(bins.kustomize_controller), *common, "--no-remote-bases=true",
            f"--metrics-addr=127.0.0.1:{free_port()}", f"--health-addr=127.0.0.1:{kustomize_health}",
        ], kustomize_health, timeout)
        return self

    def _run(self, name: str, argv: list[str], health_port: int, timeout: float) -> None:
        log = self.work_dir / f"{name}.log"
        # controller-runtime finds the API server through KUBECONFIG.
        env = {**os.environ, **self.env, "RUNTIME_NAMESPACE": FLUX_NAMESPACE}
        proc, started = spawn(name, argv, log, env=env)
        self.processes.append(started)

        def healthy() -> bool:
            if proc.poll() is not None:
                raise exited_error(proc, name, log)
            with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=2) as resp:
                return bool(resp.status == 200)

        wait_until(healthy, timeout, name, interval=0.5)

    def stop(self) -> None:
        for started in reversed(self.processes):
            started.stop()
        self.processes.clear()

    def __enter__(self) -> FluxControllers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.work_dir.glob("*.log")))


def git_repository(namespace: str, name: str, url: str, secret: str, branch: str = "main",
                   interval: str = "5s") -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": url, "ref": {"branch": branch}, "interval": interval, "timeout": "20s",
                 "secretRef": {"name": secret}},
    }


def basic_auth_secret(namespace: str, name: str, username: str, password: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque", "stringData": {"username": username, "password": password}}


def kustomization(namespace: str, name: str, source: str, path: str, *, target_namespace: str | None = None,
                  interval: str = "5s", timeout: str = "3m") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "interval": interval, "retryInterval": "5s", "timeout": timeout, "path": path, "prune": True,
        "wait": True, "sourceRef": {"kind": "GitRepository", "name": source},
    }
    if target_namespace:
        spec["targetNamespace"] = target_namespace
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


if __name__ == "__main__":
    print(ensure_flux())
