"""kubectl against the local environment, and the Release CRD (with its admission policy) installed into it.

The demo, the benchmarks and the test scenarios all drive the API server the way a user does; this
is the one place that runs the command and says what failed.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from controller.api.crd import render, render_policy
from controller.testing.specs import release_spec

CRD_NAME = "crd/releases.delivery.pratiko.ai"
POLICY_CRD_NAME = "crd/releasepolicies.delivery.pratiko.ai"
# The ValidatingAdmissionPolicy every overlay and the chart ship (read from the checkout: this is dev tooling).
FLAGS_POLICY = Path(__file__).resolve().parents[2] / "manifests" / "admission" / "release-flags-policy.yaml"


def kubectl(env: Mapping[str, str], *args: str, stdin: str | None = None, timeout: float = 60) -> str:
    """Run kubectl with `env` (KUBECONFIG...); its stdout, or RuntimeError with its stderr."""
    proc = subprocess.run(["kubectl", *args], input=stdin, env=dict(env), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def install_crd(env: Mapping[str, str], wait: str = "60s") -> None:
    """Apply the Release and ReleasePolicy CRDs generated from the models and wait until the API server
    serves them."""
    kubectl(env, "apply", "--server-side", "-f", "-", stdin=render() + "---\n" + render_policy())
    wait_established(env, float(wait.rstrip("s")), (CRD_NAME, POLICY_CRD_NAME))
    install_flags_policy(env)


def wait_established(env: Mapping[str, str], timeout: float = 60, names: tuple[str, ...] = (CRD_NAME,)) -> None:
    """Until the API server serves the CRDs `names` (the Release CRD by default). Polled rather than
    `kubectl wait`, which fails at once ("<nil> is of the type <nil>") when asked before a CRD has
    any status condition."""
    def established(name: str) -> bool:
        conditions = json.loads(kubectl(env, "get", name, "-o", "json")).get("status", {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    deadline = time.monotonic() + timeout
    for name in names:
        while not established(name):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not Established after {timeout}s")
            time.sleep(0.2)


def install_flags_policy(env: Mapping[str, str], timeout: float = 30) -> None:
    """Apply the flags policy and wait until the API server enforces it.

    A new policy and binding take effect once the API server has compiled them (about a second),
    so this asks, with a server-side dry-run, until a Release with a 129-character flag name is
    refused by the policy."""
    kubectl(env, "apply", "--server-side", "--force-conflicts", "-f", str(FLAGS_POLICY))
    probe = {
        "apiVersion": "delivery.pratiko.ai/v1alpha1", "kind": "Release",
        "metadata": {"name": "flags-policy-probe", "namespace": "default"},
        "spec": release_spec(version="1.0.0", image="repo/app:1.0.0", cluster="c", service="s",
                             featureFlags={"x" * 129: True}),
    }
    deadline = time.monotonic() + timeout
    while True:
        try:
            kubectl(env, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(probe))
        except RuntimeError as exc:
            if "ValidatingAdmissionPolicy" in str(exc):
                return
            raise
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API server does not enforce {FLAGS_POLICY.name} after {timeout}s")
        time.sleep(0.2)
