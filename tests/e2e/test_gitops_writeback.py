"""A rollback written back to Git by the running operator, against a real smart-HTTP Git server.

1.0.0 is live, 2.0.0 is committed and applied, then aborted mid-canary: the operator pushes exactly
one revert commit (its reason and revision in the message), records it in the history and an
Event; applying the reverted file, as a GitOps tool would, leaves the Release Succeeded at 1.0.0
with nothing moved in AWS. The Git token appears in no operator log line.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.gitserver import GitServer
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases, cli, listener_weights, snapshot, wait_for, wait_passes

pytestmark = pytest.mark.timeout(240)

PATH = "production/app.yaml"
HELD = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}


@pytest.fixture()
def git(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "git") as server:
        server.create_repo("releases")
        yield server


def manifest(world: WorldIds, namespace: str, version: str, git: GitServer) -> str:
    body = release_for(world, name="app", namespace=namespace, version=version, strategy=HELD,
                       gitops={"repository": git.url("releases"), "branch": "main", "path": PATH,
                               "secretRef": {"name": "releases-git"}, "onRollback": "Commit"})
    return "# the app's production release; CI bumps the versions\n" + yaml.safe_dump(body, sort_keys=False)


def canary_from_git(releases: Releases, kubectl: Kubectl, world: WorldIds, aws: AwsClients, ns: str,
                    git: GitServer) -> None:
    """1.0.0 committed and live, then 2.0.0 committed and applied: its canary at 20%, held there."""
    for version, generation in (("1.0.0", 1), ("2.0.0", 2)):
        git.commit_files("releases", {PATH: manifest(world, ns, version, git)}, f"app {version}")
        kubectl("apply", "-f", "-", stdin=git.show("releases", PATH))
        if generation == 1:
            releases.wait_phase(ns, "app", "Succeeded", 60, generation=1)
    wait_for("canary at 20%", lambda: listener_weights(aws, world).get(world.canary_target_group_arn) == 20, 60)


def test_an_abort_is_written_back_to_git_once_and_the_revert_changes_nothing(
    own_namespace: str, releases: Releases, kubectl: Kubectl, world: WorldIds, aws: AwsClients,
    env_vars: dict[str, str], git: GitServer, tmp_path: Path,
) -> None:
    ns = own_namespace
    token = git.password
    kubectl("create", "secret", "generic", "releases-git", "-n", ns,
            "--from-literal=username=" + git.username, "--from-literal=password=" + token)
    log = tmp_path / "operator.log"
    proc = OperatorProcess(env_vars, namespaces=(ns,), resync=2.0, log_path=log).start()
    try:
        canary_from_git(releases, kubectl, world, aws, ns, git)
        cli(env_vars, "abort", "app", "-n", ns)
        status = releases.wait(ns, "app", lambda s: s.get("phase") == "RolledBack"
                               and (s.get("history") or [{}])[-1].get("revertCommit") is not None, 60,
                               "RolledBack with the revert commit recorded")
        wait_passes(proc, ns, "app", 2)  # more passes: none pushes again
        commits = git.log("releases")
        assert len(commits) == 3, commits
        sha, message = commits[0]
        assert status["history"][-1]["revertCommit"] == sha
        assert "2.0.0" in message and "1.0.0" in message and "Release-Rollback:" in message, message
        reverted = yaml.safe_load(git.show("releases", PATH).split("\n", 1)[1])
        assert reverted["spec"]["backend"]["version"] == "1.0.0"
        assert git.show("releases", PATH).startswith("# the app's production release")
        assert "RollbackWrittenBack" in {e["reason"] for e in releases.events(ns, "app")}

        before = snapshot(aws, world, ns, "app")
        kubectl("apply", "-f", "-", stdin=git.show("releases", PATH))  # the GitOps tool syncs the revert
        releases.wait_phase(ns, "app", "Succeeded", 60, generation=3)
        assert snapshot(aws, world, ns, "app") == before
    finally:
        proc.stop()
    text = log.read_text()
    basic = base64.b64encode(f"{git.username}:{token}".encode()).decode()
    assert token not in text and basic not in text
    assert len(git.log("releases")) == 3


def test_an_operator_killed_mid_push_still_makes_exactly_one_revert_commit(
    own_namespace: str, releases: Releases, kubectl: Kubectl, world: WorldIds, aws: AwsClients,
    env_vars: dict[str, str], git: GitServer, tmp_path: Path,
) -> None:
    """SIGKILL while the push is at the Git server (received, not yet answered); the push then lands
    anyway. The restarted operator finds that commit by its trailer instead of pushing another."""
    ns = own_namespace
    kubectl("create", "secret", "generic", "releases-git", "-n", ns,
            "--from-literal=username=" + git.username, "--from-literal=password=" + git.password)
    log = tmp_path / "operator.log"

    def operator() -> OperatorProcess:
        return OperatorProcess(env_vars, namespaces=(ns,), resync=2.0, log_path=log).start()

    proc = operator()
    try:
        canary_from_git(releases, kubectl, world, aws, ns, git)
        git.hold_pushes()
        cli(env_vars, "abort", "app", "-n", ns)
        assert git.push_held(60), "the operator never pushed"
        proc.kill()
        git.release_pushes()
        wait_for("the held push applied", lambda: len(git.log("releases")) == 3, 30)
        proc = operator()
        status = releases.wait(ns, "app", lambda s: (s.get("history") or [{}])[-1].get("revertCommit") is not None,
                               60, "the revert commit recorded")
        wait_passes(proc, ns, "app", 2)  # more passes: none pushes again
    finally:
        proc.stop()
    commits = git.log("releases")
    assert len(commits) == 3, commits
    assert status["history"][-1]["revertCommit"] == commits[0][0]
