"""What the CLI says when a verb cannot do what was asked: one line, a non-zero exit, no traceback.

Every command runs as a subprocess, as a user types it, against the real local kube-apiserver (and,
where a request must act, the session operator). Exit codes are those of controller/cli/common.py:
1 cannot apply now, 2 usage, 3 not found, 4 no cluster access.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases, condition
from tests.e2e.helpers import wait_converged

pytestmark = pytest.mark.timeout(180)

CLI = str(Path(sys.executable).parent / "release-controller")
VERBS = [("status",), ("promote",), ("abort",), ("retry",), ("undo",)]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The error the command printed: exactly one line on stderr, no traceback."""
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("verb", [v[0] for v in VERBS])
def test_a_missing_release_is_one_line_and_exit_3(env_vars: dict[str, str], namespace: str, verb: str) -> None:
    proc = run(env_vars, verb, "nope", "-n", namespace)
    assert proc.returncode == 3
    assert one_line(proc) == f"error: release nope not found in namespace {namespace}"


@pytest.mark.parametrize("verb", [v[0] for v in VERBS])
def test_a_missing_namespace_is_one_line_and_exit_3(env_vars: dict[str, str], crd_installed: None, verb: str) -> None:
    proc = run(env_vars, verb, "app", "-n", "no-such-namespace")
    assert proc.returncode == 3
    assert one_line(proc) == "error: namespace no-such-namespace does not exist"


@pytest.mark.parametrize("verb", [v[0] for v in VERBS])
def test_a_missing_kubeconfig_is_one_line_and_exit_4(env_vars: dict[str, str], tmp_path: Path, verb: str) -> None:
    env = {**env_vars, "KUBECONFIG": str(tmp_path / "absent.yaml")}
    proc = run(env, verb, "app", "-n", "default")
    assert proc.returncode == 4
    line = one_line(proc)
    assert line.startswith("error: no cluster access:") and "KUBECONFIG" in line, line


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens there


@pytest.mark.parametrize("verb", [v[0] for v in VERBS])
def test_an_unreachable_api_server_is_one_line_and_exit_4(env_vars: dict[str, str], tmp_path: Path,
                                                          verb: str) -> None:
    config = yaml.safe_load(Path(env_vars["KUBECONFIG"]).read_text())
    port = _closed_port()
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    proc = run({**env_vars, "KUBECONFIG": str(kubeconfig)}, verb, "app", "-n", "default")
    assert proc.returncode == 4
    line = one_line(proc)
    assert line.startswith(f"error: no cluster access: cannot reach https://127.0.0.1:{port}"), line


def test_an_unknown_output_format_is_refused(env_vars: dict[str, str], namespace: str) -> None:
    proc = run(env_vars, "status", "app", "-n", namespace, "-o", "xml")
    assert proc.returncode == 2
    assert one_line(proc) == "error: unknown output format 'xml': use one of text, json, yaml"


def _adopted(releases: Releases, world: WorldIds, namespace: str, **extra: Any) -> None:
    releases.apply(release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.0.0",
                               **extra))
    releases.wait_phase(namespace, "app", "Succeeded", 60, generation=1)


def test_requests_on_a_settled_release_say_why_and_change_nothing(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, env_vars: dict[str, str],
) -> None:
    _adopted(releases, world, namespace)
    before = releases.get(namespace, "app")["metadata"].get("annotations", {})
    for verb, why in [("promote", "nothing to promote: app is Succeeded at 1.0.0"),
                      ("abort", "nothing to abort: app is Succeeded at 1.0.0")]:
        proc = run(env_vars, verb, "app", "-n", namespace)
        assert proc.returncode == 1
        assert one_line(proc) == f"error: {why}"
    proc = run(env_vars, "retry", "app", "-n", namespace)
    assert proc.returncode == 1
    assert one_line(proc).startswith("error: nothing to retry: app is Succeeded at 1.0.0")
    proc = run(env_vars, "undo", "app", "-n", namespace)
    assert proc.returncode == 1
    assert one_line(proc) == "error: nothing to undo: app has no previous successful revision to go back to"
    # No request was recorded: nothing for the operator to acknowledge later.
    assert releases.get(namespace, "app")["metadata"].get("annotations", {}) == before


def test_status_prints_yaml_and_json(operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds,
                                     env_vars: dict[str, str]) -> None:
    _adopted(releases, world, namespace)
    out = run(env_vars, "status", "app", "-n", namespace, "-o", "yaml")
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout) == releases.status(namespace, "app")
    assert yaml.safe_load(out.stdout)["phase"] == "Succeeded"


WINDOW = {"window": "1s"}  # the promoted rollout completes at once, not after the default 10m watch
CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}]}}


def test_promote_while_paused_is_queued_until_resume(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
    env_vars: dict[str, str],
) -> None:
    _adopted(releases, world, namespace, strategy=CANARY, rollback=WINDOW)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="1.0.0",
                               strategy=CANARY, rollback=WINDOW))
    releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "WaitingForPromote",
                  60, "WaitingForPromote")
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="1.0.0",
                               strategy=CANARY, rollback=WINDOW, paused=True))
    releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "Paused"
                  and s.get("observedGeneration") == 3, 30, "Paused")
    proc = run(env_vars, "promote", "app", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ("promote queued for app: spec.paused is true, so it applies when the Release is "
                                   "resumed (spec.paused: false)")
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="1.0.0",
                               strategy=CANARY, rollback=WINDOW, paused=False))
    # Resumed, the queued promote skips the indefinite pause and the last step.
    wait_converged(releases, aws, world, namespace, "app", "2.0.0", generation=4)


def test_abort_then_columns_show_what_serves(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, env_vars: dict[str, str],
    kubectl: Kubectl,
) -> None:
    _adopted(releases, world, namespace, strategy=CANARY, rollback=WINDOW)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               strategy=CANARY, rollback=WINDOW))
    releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "WaitingForPromote",
                  60, "WaitingForPromote")

    # The frontend waits for the backend: status must not show it as a canary it is not.
    out = run(env_vars, "status", "app", "-n", namespace).stdout
    rows = [[cell.strip() for cell in line.strip().strip("│").split("│")] for line in out.splitlines()]
    assert ["frontend", "2.0.0", "1.0.0", "-", "0%"] in rows, out
    assert "frontend 2.0.0 is next" in out

    proc = run(env_vars, "abort", "app", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "abort requested for app: all traffic goes back to 1.0.0 on the next pass"
    releases.wait_phase(namespace, "app", "RolledBack", 60)

    table = kubectl("get", "rel", "app", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "BACKEND", "LIVE", "FRONTEND", "WEIGHT", "STEP", "AGE"]
    # The spec asks for 2.0.0; 1.0.0 serves, in its own column.
    assert table[1].split()[:6] == ["app", "RolledBack", "2.0.0", "1.0.0", "2.0.0", "0"], table
    wide = kubectl("get", "rel", "app", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-2:] == ["LIVE-FRONTEND", "REASON"]
    ready_reason = condition(releases.status(namespace, "app"), "Ready")["reason"]
    assert wide[1].split()[-2:] == ["1.0.0", ready_reason], wide

    # Rolled back: retry applies, abort and promote do not.
    proc = run(env_vars, "promote", "app", "-n", namespace)
    assert proc.returncode == 1
    assert one_line(proc) == "error: nothing to promote: app is RolledBack at 1.0.0 (retry starts the rollout again)"
