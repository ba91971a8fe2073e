"""kubectl against the local environment, and the Release CRD installed into it.

The demo, the benchmarks and the test scenarios all drive the API server the way a user does; this
is the one place that runs the command and says what failed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from controller.api.crd import render

CRD_NAME = "crd/releases.delivery.pratiko.ai"


def kubectl(env: Mapping[str, str], *args: str, stdin: str | None = None, timeout: float = 60) -> str:
    """Run kubectl with `env` (KUBECONFIG...); its stdout, or RuntimeError with its stderr."""
    proc = subprocess.run(["kubectl", *args], input=stdin, env=dict(env), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def install_crd(env: Mapping[str, str], wait: str = "60s") -> None:
    """Apply the Release CRD generated from the models and wait until the API server serves it."""
    kubectl(env, "apply", "--server-side", "-f", "-", stdin=render())
    kubectl(env, "wait", "--for=condition=Established", CRD_NAME, f"--timeout={wait}")
