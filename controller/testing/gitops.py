"""What GitOps tools conclude about a Release: the real kstatus library and Argo CD's Lua engine.

Flux's health checks and Helm 4's `--wait` decide with kstatus (sigs.k8s.io/cli-utils); Argo CD
runs our `health.lua` in gopher-lua. Both are small Go programs kept under `go/` and built with
`ensure_go_source` (cached like the other binaries), so a test asks the same code those tools run
instead of a Python imitation of it. `capture()` writes a live Release as a testdata file, so the
Argo CD fixtures can be replaced by objects from real runs.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controller.testing.binaries import ensure_go_source

ROOT = Path(__file__).resolve().parents[2]
GO_SOURCES = Path(__file__).resolve().parent / "go"
ARGOCD_RELEASE = ROOT / "integrations" / "argocd" / "resource_customizations" / "delivery.pratiko.ai" / "Release"
HEALTH_LUA = ARGOCD_RELEASE / "health.lua"


@dataclass(frozen=True)
class Verdict:
    status: str
    message: str


def kstatus_binary() -> Path:
    return ensure_go_source("kstatus", GO_SOURCES / "kstatus")


def argocd_lua_binary() -> Path:
    return ensure_go_source("argocd-lua", GO_SOURCES / "argocd-lua")


def _run(args: list[str], obj: dict[str, Any]) -> Any:
    proc = subprocess.run(args, input=json.dumps(obj), capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def kstatus(obj: dict[str, Any]) -> Verdict:
    """kstatus' status (Current, InProgress, Failed, ...) and message for one object."""
    out = _run([str(kstatus_binary())], obj)
    return Verdict(out["status"], out["message"])


def argo_health(obj: dict[str, Any], script: Path = HEALTH_LUA) -> Verdict:
    """Argo CD's health (Healthy, Progressing, Suspended, Degraded, ...) from our health.lua."""
    out = _run([str(argocd_lua_binary()), "health", str(script)], obj)
    return Verdict(out["status"], out.get("message", ""))


def argo_actions(obj: dict[str, Any]) -> dict[str, bool]:
    """The actions Argo CD offers on the object: name -> enabled."""
    out = _run([str(argocd_lua_binary()), "discovery", str(ARGOCD_RELEASE / "actions" / "discovery.lua")], obj)
    return {a["name"]: not a.get("disabled", False) for a in out}


def argo_action(obj: dict[str, Any], name: str) -> dict[str, Any]:
    """The object as Argo CD's action `name` leaves it (Argo CD then patches the difference)."""
    out = _run([str(argocd_lua_binary()), "action", str(ARGOCD_RELEASE / "actions" / name / "action.lua")], obj)
    assert len(out) == 1 and out[0]["operation"] == "patch", out
    changed: dict[str, Any] = out[0]["unstructuredObj"]
    return changed


def run_argocd_tests(*dirs: Path) -> subprocess.CompletedProcess[str]:
    """Run Argo CD's health_test.yaml and actions/action_test.yaml of each customization directory."""
    return subprocess.run([str(argocd_lua_binary()), "test", *map(str, dirs)], capture_output=True, text=True,
                          timeout=120, check=False)


def render_argocd_cm() -> str:
    """integrations/argocd/argocd-cm.yaml: the customization's scripts as argocd-cm keys, verbatim."""

    def block(text: str, indent: int) -> str:
        pad = " " * indent
        return "".join(pad + line if line.strip() else "\n" for line in text.splitlines(True))

    actions = "    discovery.lua: |\n" + block((ARGOCD_RELEASE / "actions" / "discovery.lua").read_text(), 6)
    actions += "    definitions:\n"
    for verb in ("promote", "promote-full", "abort", "retry", "pause", "resume"):
        actions += f"    - name: {verb}\n      action.lua: |\n"
        actions += block((ARGOCD_RELEASE / "actions" / verb / "action.lua").read_text(), 8)
    return (
        "# Argo CD: health and actions for delivery.pratiko.ai/Release, from resource_customizations/.\n"
        "# Merge into your argocd-cm (kubectl -n argocd patch configmap argocd-cm --patch-file argocd-cm.yaml).\n"
        "# Generated: python -m controller.testing.gitops > integrations/argocd/argocd-cm.yaml\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\n  labels:\n"
        "    app.kubernetes.io/name: argocd-cm\n    app.kubernetes.io/part-of: argocd\ndata:\n"
        "  resource.customizations.health.delivery.pratiko.ai_Release: |\n"
        + block(HEALTH_LUA.read_text(), 4)
        + "  resource.customizations.actions.delivery.pratiko.ai_Release: |\n"
        + actions
    )


_VOLATILE_METADATA = ("managedFields", "uid", "resourceVersion", "creationTimestamp", "selfLink")


def capture(obj: dict[str, Any], path: Path, note: str = "") -> None:
    """Write a live object as a testdata file: without server bookkeeping, status and all."""
    kept = json.loads(json.dumps(obj))
    meta = kept.get("metadata", {})
    for key in _VOLATILE_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations", {})
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if not annotations:
        meta.pop("annotations", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        out.write(f"# Captured from a real e2e run{': ' + note if note else ''} (tests/e2e/test_gitops_health.py).\n")
        yaml.safe_dump(kept, out, sort_keys=False)


if __name__ == "__main__":
    print(render_argocd_cm(), end="")
