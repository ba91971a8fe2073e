"""GitOps end to end with a real Flux: a commit to the local Git server -> Flux's source-controller
fetches it (basic auth from a Secret) -> kustomize-controller applies the Release -> the operator
rolls it out -> the Kustomization (`wait: true`, kstatus on the Release) is Ready.

Real parts only: Debian's `git http-backend` behind controller.testing.gitserver, Flux's two
controllers built from their Go modules (controller.testing.flux), the local kube-apiserver, moto.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.testing.aws_world import WorldIds
from controller.testing.flux import (
    FluxControllers,
    basic_auth_secret,
    git_repository,
    kustomization,
)
from controller.testing.gitserver import GitServer
from controller.testing.operator import OperatorProcess
from controller.testing.ports import serve_in_background
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def flux(env_vars: dict[str, str], crd_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FluxControllers]:
    controllers = FluxControllers(env_vars, tmp_path_factory.mktemp("flux")).start()
    try:
        yield controllers
    finally:
        controllers.stop()


@pytest.fixture()
def git(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "git") as server:
        server.create_repo("releases")
        yield server


def _manifest(body: dict[str, Any]) -> str:
    body = {**body, "metadata": {"name": body["metadata"]["name"]}}  # the Kustomization sets the namespace
    return "# The pratiko release in this environment; CI bumps the versions.\n" + yaml.safe_dump(body, sort_keys=False)


def _ready(kubectl: Kubectl, namespace: str, name: str, revision: str) -> dict[str, Any] | None:
    out = kubectl("get", "kustomization", name, "-n", namespace, "-o", "json").stdout
    status = json.loads(out).get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
    if ready.get("status") == "True" and status.get("lastAppliedRevision", "").endswith(revision):
        return status
    return None


def _wait_applied(kubectl: Kubectl, flux: FluxControllers, namespace: str, name: str, timeout: float = 180) -> None:
    """Until Flux has created the Release (its first apply)."""
    deadline = time.monotonic() + timeout
    while kubectl("get", "release", name, "-n", namespace, check=False).returncode != 0:
        if time.monotonic() > deadline:
            out = kubectl("get", "kustomization,gitrepository", "-n", namespace, "-o", "yaml").stdout
            raise AssertionError(f"Flux did not apply the Release in {timeout:.0f}s:\n{out}\n{flux.logs()[-4000:]}")
        time.sleep(1)


def _wait_ready(kubectl: Kubectl, flux: FluxControllers, namespace: str, name: str, revision: str,
                timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _ready(kubectl, namespace, name, revision)
        if status:
            return status
        time.sleep(1)
    out = kubectl("get", "kustomization,gitrepository", "-n", namespace, "-o", "yaml").stdout
    raise AssertionError(f"Kustomization not Ready at {revision} in {timeout}s:\n{out}\n{flux.logs()[-4000:]}")


def test_a_commit_is_applied_by_flux_rolled_out_by_the_operator_and_the_kustomization_is_ready(
    flux: FluxControllers, operator: OperatorProcess, releases: Releases, kubectl: Kubectl, namespace: str,
    world: WorldIds, git: GitServer,
) -> None:
    first = git.commit_files("releases", {"apps/pratiko.yaml": _manifest(
        release_for(world, name="pratiko", namespace=namespace, version="2.0.0"))}, "pratiko 2.0.0")
    for body in [basic_auth_secret(namespace, "releases-git", git.username, git.password),
                 git_repository(namespace, "releases", git.url("releases"), "releases-git"),
                 kustomization(namespace, "pratiko", "releases", "./apps", target_namespace=namespace)]:
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))

    _wait_applied(kubectl, flux, namespace, "pratiko")
    status = releases.wait_phase(namespace, "pratiko", "Succeeded", 180)
    assert status["backend"]["stableVersion"] == "2.0.0"
    applied = _wait_ready(kubectl, flux, namespace, "pratiko", first)
    assert applied["lastAppliedRevision"] == f"main@sha1:{first}"

    # The next commit (as set-version in CI would make it) flows the same way.
    text = git.show("releases", "apps/pratiko.yaml")
    from controller.manifests import set_version

    second = git.commit_files("releases", {"apps/pratiko.yaml": set_version(
        text, backend="2.1.0", image=world.image.rsplit(":", 1)[0] + ":2.1.0")}, "pratiko 2.1.0")
    status = releases.wait_phase(namespace, "pratiko", "Succeeded", 180, generation=2)
    assert status["backend"]["stableVersion"] == "2.1.0"
    _wait_ready(kubectl, flux, namespace, "pratiko", second)
    # Flux fetched over HTTP with the Secret's credentials: the password is in none of its logs.
    assert git.password not in flux.logs()


class _Health:
    """A health endpoint on loopback whose answer the test sets (the analysis's HTTP metric)."""

    def __init__(self) -> None:
        import http.server

        self.status = 200
        health = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the base class's name
                self.send_response(health.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_background(self.server)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"


def test_a_failed_canary_is_reverted_in_git_and_flux_brings_the_revert_back(
    flux: FluxControllers, operator: OperatorProcess, releases: Releases, kubectl: Kubectl, namespace: str,
    world: WorldIds, git: GitServer,
) -> None:
    """The whole loop, no step by hand: 2.0.0 committed and live; 3.0.0 committed, its canary fails
    its analysis, the operator rolls back and pushes one revert commit; Flux applies the revert and
    the Release is Succeeded at 2.0.0 with the Kustomization Ready again."""
    health = _Health()
    path = "apps/pratiko.yaml"
    gitops = {"repository": git.url("releases"), "branch": "main", "path": path,
              "secretRef": {"name": "releases-git"}, "onRollback": "Commit"}
    analysis = {"interval": "1s", "failureLimit": 0, "minSamples": 1,
                "metrics": [{"name": "health", "http": {"url": health.url, "expectStatus": 200}, "min": 1}]}
    canary = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "5s"}}]}}
    first = git.commit_files("releases", {path: _manifest(release_for(
        world, name="pratiko", namespace=namespace, version="2.0.0", strategy=canary, gitops=gitops,
        analysis=analysis, rollback={"window": "1s"}))}, "pratiko 2.0.0")
    for body in [basic_auth_secret(namespace, "releases-git", git.username, git.password),
                 git_repository(namespace, "releases", git.url("releases"), "releases-git"),
                 kustomization(namespace, "pratiko", "releases", "./apps", target_namespace=namespace)]:
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    _wait_applied(kubectl, flux, namespace, "pratiko")
    # (kstatus calls an object with no status yet Current, so the first Ready may come before the
    # operator's first pass: docs/gitops.md.)
    releases.wait(namespace, "pratiko", lambda s: s.get("phase") == "Succeeded"
                  and s.get("backend", {}).get("stableVersion") == "2.0.0", 120, "Succeeded at 2.0.0")
    _wait_ready(kubectl, flux, namespace, "pratiko", first)

    from controller.manifests import set_version

    health.status = 500  # 3.0.0 is bad
    bad = git.commit_files("releases", {path: set_version(
        git.show("releases", path), backend="3.0.0", image=world.image.rsplit(":", 1)[0] + ":3.0.0")}, "pratiko 3.0.0")
    releases.wait(namespace, "pratiko", lambda s: s.get("phase") == "RolledBack"
                  and (s.get("history") or [{}])[-1].get("revertCommit"), 180, "rolled back and written back")
    health.status = 200
    log = git.log("releases")
    revert_sha, message = log[0]
    assert [sha for sha, _ in log[1:]][:1] == [bad]
    assert "3.0.0" in message and "2.0.0" in message and "Release-Rollback:" in message, message
    assert sum("Release-Rollback:" in m for _, m in log) == 1

    _wait_ready(kubectl, flux, namespace, "pratiko", revert_sha)
    status = releases.wait_phase(namespace, "pratiko", "Succeeded", 120, generation=3)
    assert status["backend"]["stableVersion"] == "2.0.0"
    assert sum("Release-Rollback:" in m for _, m in git.log("releases")) == 1
    assert git.password not in flux.logs()
    assert operator.log_path is None or git.password not in operator.log_path.read_text()
