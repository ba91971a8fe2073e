"""Flux's source-controller and kustomize-controller for the local environment (a real GitOps engine).

Both are built from their Go modules by `binaries.ensure_go_tool` (a wrapper module that inherits
their `replace` lines) and cached by version like etcd and kube-apiserver.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from controller.testing.binaries import ensure_go_tool

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


if __name__ == "__main__":
    print(ensure_flux())
