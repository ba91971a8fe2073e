"""`list`, `status --watch`, `pause`/`resume` and `undo` under GitOps, against the real API server and
operator, run as a user runs them: the installed `release-controller` script with KUBECONFIG set."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Releases, condition
from tests.e2e.helpers import cli, wait_for

pytestmark = pytest.mark.timeout(240)

CLI = str(Path(sys.executable).parent / "release-controller")
HELD = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}]}}
SLOW = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 60}]}}
QUICK = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "2s"}}, {"setWeight": 60}]}}


def live(releases: Releases, world: WorldIds, namespace: str, strategy: dict, **kw: object) -> None:  # type: ignore[type-arg]
    releases.apply(release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.0.0",
                               strategy=strategy, **kw))
    releases.wait_phase(namespace, "app", "Succeeded", 90, generation=1)


def watch(env: dict[str, str], namespace: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([CLI, "status", "app", "-n", namespace, "--watch", "--timeout", "120", *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_list_shows_phase_versions_weight_step_and_age(operator: OperatorProcess, releases: Releases, namespace: str,
                                                       own_namespace: str, world: WorldIds,
                                                       env_vars: dict[str, str]) -> None:
    live(releases, world, namespace, HELD)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               strategy=HELD))
    releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "WaitingForPromote", 60,
                  "WaitingForPromote")
    # A second Release no controller watches: never reconciled, so Pending with nothing serving yet.
    releases.apply(release_for(world, name="other", namespace=own_namespace, version="3.0.0"))

    out = cli(env_vars, "list", "-n", namespace).stdout
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["NAME", "PHASE", "BACKEND", "FRONTEND", "WEIGHT", "STEP", "AGE"]
    # Both tiers go from 1.0.0 to 2.0.0 in this rollout (the frontend's turn comes after the backend's).
    assert rows[1][:6] == ["app", "Paused", "1.0.0->2.0.0", "1.0.0->2.0.0", "20%", "1/3"], out
    assert rows[1][6][-1] in "sm" and len(rows) == 2

    rows = [line.split() for line in cli(env_vars, "list", "-A").stdout.splitlines()]
    assert rows[0][:2] == ["NAMESPACE", "NAME"]
    mine = {(r[0], r[1]): r[2:] for r in rows[1:] if r[0] in (namespace, own_namespace)}
    assert mine[(namespace, "app")][:5] == ["Paused", "1.0.0->2.0.0", "1.0.0->2.0.0", "20%", "1/3"]
    assert mine[(own_namespace, "other")][:5] == ["Pending", "3.0.0", "-", "0%", "0/0"]


def test_watch_exits_0_once_the_spec_is_live(operator: OperatorProcess, releases: Releases, namespace: str,
                                             world: WorldIds, env_vars: dict[str, str]) -> None:
    live(releases, world, namespace, QUICK)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               strategy=QUICK))
    proc = watch(env_vars, namespace)
    out, err = proc.communicate(timeout=150)
    assert proc.returncode == 0, out + err
    status = releases.status(namespace, "app")
    assert status["phase"] == "Succeeded" and status["backend"]["stableVersion"] == "2.0.0"
    lines = out.splitlines()
    assert lines[-1].startswith("live: ")
    # Not a terminal: one line per change, the canary's progress among them.
    assert any("phase Progressing" in line and "weight 20%" in line for line in lines), out


def test_watch_exits_1_when_the_rollout_is_rolled_back(operator: OperatorProcess, releases: Releases, namespace: str,
                                                       world: WorldIds, env_vars: dict[str, str]) -> None:
    live(releases, world, namespace, SLOW)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               strategy=SLOW))
    proc = watch(env_vars, namespace)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "Pausing", 60,
                  "the first pause")
    wait_for("the watch has seen the rollout under way", lambda: any("phase Progressing" in line for line in lines), 30)
    assert proc.poll() is None
    cli(env_vars, "abort", "app", "-n", namespace)
    proc.wait(timeout=90)
    reader.join(timeout=10)
    out, err = "".join(lines), proc.stderr.read()  # type: ignore[union-attr]
    assert proc.returncode == 1, out + err
    assert releases.status(namespace, "app")["phase"] == "RolledBack"
    assert out.splitlines()[-1].startswith("not live: "), out


def test_watch_exits_3_on_timeout_while_a_pause_waits(operator: OperatorProcess, releases: Releases, namespace: str,
                                                      world: WorldIds, env_vars: dict[str, str]) -> None:
    live(releases, world, namespace, HELD)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               strategy=HELD))
    releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "WaitingForPromote", 60,
                  "WaitingForPromote")
    proc = subprocess.run([CLI, "status", "app", "-n", namespace, "--watch", "--timeout", "3"], env=env_vars,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "timed out after 3s" in proc.stdout


def test_pause_holds_the_rollout_and_resume_finishes_it(operator: OperatorProcess, releases: Releases, namespace: str,
                                                        world: WorldIds, env_vars: dict[str, str]) -> None:
    steps = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "4s"}}, {"setWeight": 60}]}}
    live(releases, world, namespace, steps)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               strategy=steps))
    releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "Pausing", 60,
                  "the 4s pause")
    assert "paused" in cli(env_vars, "pause", "app", "-n", namespace).stdout
    assert releases.get(namespace, "app")["spec"]["paused"] is True
    held = releases.wait_phase(namespace, "app", "Paused", 30)
    # Where the pause took hold depends on when the operator saw it (the 4s step may be over by then);
    # from there on nothing moves, not even a step's own timer. (A negative check over the clock on
    # purpose: it must outlast the 4 s step, whose timer is what must not fire; passes happen meanwhile.)
    time.sleep(6)
    status = releases.status(namespace, "app")
    assert status["phase"] == "Paused"
    assert (status["currentStep"], status["backend"]["canaryWeight"]) == (held["currentStep"], held["backend"]["canaryWeight"])
    assert status["backend"]["canaryWeight"] in (20, 60) and status["backend"]["stableVersion"] == "1.0.0"
    assert "resumed" in cli(env_vars, "resume", "app", "-n", namespace).stdout
    assert releases.get(namespace, "app")["spec"]["paused"] is False
    status = releases.wait(namespace, "app", lambda s: s.get("phase") == "Succeeded"
                           and s.get("backend", {}).get("stableVersion") == "2.0.0", 90, "Succeeded at 2.0.0")
    assert status["observedGeneration"] == releases.get(namespace, "app")["metadata"]["generation"]


def test_undo_warns_that_flux_will_put_the_spec_back(operator: OperatorProcess, releases: Releases, namespace: str,
                                                     world: WorldIds, env_vars: dict[str, str]) -> None:
    flux = {"labels": {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}
    body = release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.0.0")
    body["metadata"].update(flux)
    releases.apply(body)
    releases.wait_phase(namespace, "app", "Succeeded", 90, generation=1)
    body = release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0")
    body["metadata"].update(flux)
    releases.apply(body)
    releases.wait(namespace, "app", lambda s: s.get("phase") == "Succeeded" and s.get("observedGeneration") == 2
                  and s.get("backend", {}).get("stableVersion") == "2.0.0", 90, "Succeeded at 2.0.0")

    proc = cli(env_vars, "undo", "app", "-n", namespace)
    assert "managed by Flux" in proc.stderr and "revert the commit in Git" in proc.stderr, proc.stderr
    assert releases.get(namespace, "app")["spec"]["backend"]["version"] == "1.0.0"  # it still does what was asked


def test_undo_of_a_release_no_gitops_tool_manages_says_nothing_about_gitops(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, env_vars: dict[str, str],
) -> None:
    releases.apply(release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.0.0"))
    releases.wait_phase(namespace, "app", "Succeeded", 90, generation=1)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0"))
    releases.wait(namespace, "app", lambda s: s.get("phase") == "Succeeded" and s.get("observedGeneration") == 2
                  and s.get("backend", {}).get("stableVersion") == "2.0.0", 90, "Succeeded at 2.0.0")
    proc = cli(env_vars, "undo", "app", "-n", namespace)
    assert "managed by" not in proc.stderr + proc.stdout


def test_watch_on_a_terminal_redraws_in_place(operator: OperatorProcess, releases: Releases, namespace: str,
                                              world: WorldIds, env_vars: dict[str, str]) -> None:
    """On a terminal (a pty here) the view is a rich Live display, redrawn as the rollout moves."""
    import os
    import pty
    import select

    live(releases, world, namespace, QUICK)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               strategy=QUICK))
    master, slave = pty.openpty()
    proc = subprocess.Popen([CLI, "status", "app", "-n", namespace, "--watch", "--timeout", "120"], stdin=slave,
                            stdout=slave, stderr=slave, env={**env_vars, "TERM": "xterm-256color", "COLUMNS": "120"})
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the program exited and the pty closed
                break
            if not data:
                break
            screen += data
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=30) == 0, screen.decode(errors="replace")
    text = screen.decode(errors="replace")
    assert "\x1b[?25l" in text  # Live hides the cursor while it redraws
    assert "\x1b[1A" in text or "\x1b[2K" in text  # and moves back over the previous frame
    assert "Progressing" in text and "Succeeded" in text and "live: " in text
