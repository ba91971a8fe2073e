"""The helm binary for the chart tests, built from Helm's Go module and cached like etcd.

Helm v3 keeps no non-local `replace` lines in its go.mod at this version, but the build still asks
`ensure_go_tool` to inherit them so a bump to a release that adds some needs no change here. Helm's
own Makefile stamps two things with `-X`, and so does this build: the version `helm version`
prints (else only "v3.22"), and the Kubernetes version `helm template` and `helm lint` assume
without a cluster (else v1.20, which a chart's `kubeVersion: >=1.29` refuses). The Makefile takes
the latter from the client-go it is built with (v0.37 -> 1.37): HELM_KUBE_MINOR below.

`python -m controller.testing.helm` builds it when missing and prints the path and the time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from controller.testing.binaries import ensure_go_tool

HELM_MODULE = "helm.sh/helm/v3"
HELM_VERSION = "v3.22.0"
# helm v3.22.0's go.mod requires k8s.io/client-go v0.37.0, i.e. Kubernetes 1.37.
HELM_KUBE_MINOR = "37"


def ensure_helm(cache_dir: Path | None = None, *, log: TextIO | None = None) -> Path:
    """Return the path to helm at HELM_VERSION, building it first if this machine has none."""
    return ensure_go_tool(
        "helm",
        f"{HELM_MODULE}/cmd/helm",
        HELM_VERSION,
        module=HELM_MODULE,
        inherit_replaces=True,
        ldflags=" ".join([
            "-s -w",
            f"-X {HELM_MODULE}/internal/version.version={HELM_VERSION}",
            *(f"-X {HELM_MODULE}/pkg/{pkg}.k8sVersion{part}={value}"
              for pkg in ("lint/rules", "chartutil") for part, value in (("Major", "1"), ("Minor", HELM_KUBE_MINOR))),
        ]),
        cache_dir=cache_dir,
        log=log,
    )


def main() -> None:
    started = time.monotonic()
    path = ensure_helm()
    print(f"helm: {path}")
    print(f"ready in {time.monotonic() - started:.1f}s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
