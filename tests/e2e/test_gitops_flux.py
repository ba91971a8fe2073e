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
from controller.testing.flux import FluxControllers, basic_auth_secret, flux_built, git_repository, kustomization
from controller.testing.gitserver import GitServer
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def flux(env_vars: dict[str, str], crd_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FluxControllers]:
    if not flux_built():
        # Flux's controllers take about an hour to build on two busy cores: `make test` does not
        # start that build; `python -m controller.testing.flux` does, once per machine.
        pytest.skip("Flux's controllers are not built on this machine: run python -m controller.testing.flux")
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
