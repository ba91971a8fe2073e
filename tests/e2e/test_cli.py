"""The command line a person uses against the running operator: status, undo, classify, kubectl release.

Every command runs as a subprocess with the environment a user would have (KUBECONFIG set), the way
it is installed: the `release-controller` script, and `kubectl release` finding `kubectl-release`
on PATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases, assert_serving_only, cli, condition, wait_converged

pytestmark = pytest.mark.timeout(180)

BIN = Path(sys.executable).parent
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {"duration": "1s"}}]


def test_status_shows_phase_steps_weights_and_history(operator: OperatorProcess, releases: Releases, namespace: str,
                                                      world: WorldIds, aws: AwsClients,
                                                      env_vars: dict[str, str]) -> None:
    strategy = {"type": "Canary", "canary": {"steps": STEPS}}
    releases.apply(release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.0.0",
                               strategy=strategy, rollback={"window": "1s"}))
    releases.wait_phase(namespace, "app", "Succeeded", 60, generation=1)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               strategy=strategy, rollback={"window": "1s"}))
    releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "WaitingForPromote",
                  60, "WaitingForPromote")

    out = cli(env_vars, "status", "app", "-n", namespace).stdout
    assert f"{namespace}/app" in out and "phase Paused" in out
    assert "strategy Canary" in out and "revision 2" in out
    assert "━" in out and "1/4" in out  # the progress bar of steps: one of four done
    rows = [[cell.strip() for cell in line.strip().strip("│").split("│")] for line in out.splitlines()]
    # tier, desired, stable, canary, canary weight
    assert ["backend", "2.0.0", "1.0.0", "2.0.0", "20%"] in rows, out
    assert "WaitingForPromote" in out
    # rev, backend, frontend, result: the adoption of 1.0.0 was revision 1
    assert ["1", "1.0.0", "1.0.0", "Succeeded"] in [r[:4] for r in rows], out

    raw = json.loads(cli(env_vars, "status", "app", "-n", namespace, "-o", "json").stdout)
    assert raw == releases.status(namespace, "app")
    assert raw["phase"] == "Paused" and raw["backend"]["canaryWeight"] == 20 and raw["currentStep"] == 1

    # The same command as a kubectl plugin, found on PATH like `kubectl krew` would install it.
    plugin_env = {**env_vars, "PATH": f"{BIN}{os.pathsep}{env_vars.get('PATH', '')}"}
    plugin = subprocess.run(["kubectl", "release", "status", "app", "-n", namespace, "-o", "json"], env=plugin_env,
                            capture_output=True, text=True, timeout=60)
    assert plugin.returncode == 0, plugin.stderr
    assert json.loads(plugin.stdout)["phase"] == "Paused"
    assert "kubectl-release" in subprocess.run(["kubectl", "plugin", "list"], env=plugin_env, capture_output=True,
                                               text=True, timeout=60).stdout

    plugin = subprocess.run(["kubectl", "release", "promote", "app", "-n", namespace], env=plugin_env,
                            capture_output=True, text=True, timeout=60)
    assert plugin.returncode == 0, plugin.stderr
    wait_converged(releases, aws, world, namespace, "app", "2.0.0", generation=2)
    out = cli(env_vars, "status", "app", "-n", namespace).stdout
    assert "phase Succeeded" in out and "4/4" in out


def test_undo_sets_the_spec_back_and_the_operator_rolls_back(operator: OperatorProcess, releases: Releases,
                                                             namespace: str, world: WorldIds, aws: AwsClients,
                                                             env_vars: dict[str, str], kubectl: Kubectl) -> None:
    releases.apply(release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.0.0"))
    releases.wait_phase(namespace, "app", "Succeeded", 60, generation=1)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0"))
    wait_converged(releases, aws, world, namespace, "app", "2.0.0", generation=2)

    out = cli(env_vars, "undo", "app", "-n", namespace).stdout
    assert "1.0.0" in out
    spec = releases.get(namespace, "app")["spec"]
    assert spec["backend"]["version"] == "1.0.0" and spec["backend"]["image"].endswith(":1.0.0")
    assert spec["frontend"]["version"] == "1.0.0"

    status = wait_converged(releases, aws, world, namespace, "app", "1.0.0", generation=3)
    assert_serving_only(aws, world, "1.0.0")
    config = aws.cloudfront.get_distribution_config(Id=world.distribution_id)["DistributionConfig"]
    assert config["Origins"]["Items"][0]["OriginPath"] == "/releases/1.0.0"
    assert [(h["backendVersion"], h["result"]) for h in status["history"]][-2:] == [
        ("2.0.0", "Succeeded"), ("1.0.0", "Succeeded")]


def classify(*args: str, stdin: str | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run([str(BIN / "release-controller"), "classify", *args], input=stdin, cwd=cwd,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize(("files", "expected"), [
    ("README.md\ndocs/intro.md\n", "minor"),
    ("app/core/billing.py\nREADME.md\n", "core"),
    ("app/api/routes.py\napp/core/billing.py\n", "api"),
    ("terraform/main.tf\napp/api/routes.py\n", "infrastructure"),
])
def test_classify_reads_changed_files_from_stdin(files: str, expected: str) -> None:
    assert classify(stdin=files) == expected


def test_classify_diffs_git_refs_and_takes_rules(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                       capture_output=True, timeout=30)

    git("init", "-q", "-b", "main")
    (repo / "README.md").write_text("hello\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    git("tag", "v1")
    (repo / "README.md").write_text("hello again\n")
    git("commit", "-q", "-am", "docs")
    git("tag", "v2")
    (repo / "app" / "api").mkdir(parents=True)
    (repo / "app" / "api" / "routes.py").write_text("routes = []\n")
    git("add", "-A")
    git("commit", "-q", "-m", "api")

    assert classify("--base", "v1", "--head", "v2", cwd=repo) == "minor"
    assert classify("--base", "v1", cwd=repo) == "api"  # head defaults to HEAD
    rules = tmp_path / "rules.yaml"
    rules.write_text("infrastructure: ['app/api/**']\nunmatched: core\n")
    assert classify("--base", "v2", "--rules", str(rules), cwd=repo) == "infrastructure"
