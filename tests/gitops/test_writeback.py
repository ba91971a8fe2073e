"""The rollback write-back against a real Git server (Debian's `git http-backend` over HTTP on
loopback, with basic auth): one commit per rollback, none when repeated, a lost race retried on the
new tip, Branch mode, and the token in no log and no exception.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from controller.api.release import GitOps, GitOpsOnRollback
from controller.gitops.writeback import DulwichGitWriter, GitCredentials, GitWriteBackError, Rollback
from controller.testing.gitserver import GitServer

PATH = "production/pratiko.yaml"

# Two documents, comments, flow mappings, quoting: everything a person may have written.
MANIFEST = """\
# Production releases. Owned by the platform team; CI bumps versions.
---
apiVersion: v1
kind: Namespace
metadata: {name: production}
---
apiVersion: delivery.pratiko.ai/v1alpha1
kind: Release
metadata:
  name: pratiko      # the app
  namespace: production
spec:
  environment: production
  backend:
    version: 3.0.0   # bumped by backend CI
    image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:3.0.0"
    ecs: {cluster: pratiko-production, service: pratiko-backend, containerName: api}
  frontend:
    version: 2.2.0
    cloudfront: {distributionId: E123, originId: web}
  strategy: {type: Fast}
"""

ROLLBACK = Rollback(
    namespace="production", name="pratiko", revision=7,
    failed_backend_version="3.0.0", backend_version="2.0.0",
    backend_image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:2.0.0",
    failed_frontend_version="2.2.0", frontend_version="2.1.0",
    reason="analysis failed: error-rate 0.31 > max 0.05 (3 of 3 samples)",
)


@pytest.fixture
def git(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "git") as server:
        server.create_repo("releases")
        server.commit_files("releases", {PATH: MANIFEST, "staging/other.yaml": "x: 1\n"}, "Release 3.0.0")
        yield server


def _gitops(git: GitServer, mode: GitOpsOnRollback = GitOpsOnRollback.COMMIT) -> GitOps:
    return GitOps(repository=git.url("releases"), branch="main", path=PATH, on_rollback=mode)


def _creds(git: GitServer) -> GitCredentials:
    return GitCredentials.from_secret_data({"username": git.username.encode(), "password": git.password.encode()})


def test_one_commit_names_what_serves_and_keeps_every_other_byte(git: GitServer) -> None:
    result = DulwichGitWriter().write_back(_gitops(git), _creds(git), ROLLBACK)

    log = git.log("releases")
    assert result.pushed and result.commit == log[0][0] and len(log) == 2
    message = log[0][1]
    assert message.startswith("Roll back production/pratiko: backend 3.0.0 -> 2.0.0, frontend 2.2.0 -> 2.1.0")
    assert ROLLBACK.reason in message and "revision 7" in message
    assert message.splitlines()[-1] == "Release-Rollback: production/pratiko revision 7"
    expected = (MANIFEST.replace("version: 3.0.0   #", "version: 2.0.0   #")
                .replace("pratiko-backend:3.0.0", "pratiko-backend:2.0.0")
                .replace("version: 2.2.0", "version: 2.1.0"))
    assert git.show("releases", PATH) == expected
    assert git.show("releases", "staging/other.yaml") == "x: 1\n"


def test_a_second_call_for_the_same_rollback_pushes_nothing(git: GitServer) -> None:
    writer = DulwichGitWriter()
    first = writer.write_back(_gitops(git), _creds(git), ROLLBACK)
    # A colleague commits on top; the rollback commit is no longer the tip, and is still found.
    git.commit_files("releases", {"README.md": "hello\n"}, "docs")
    again = writer.write_back(_gitops(git), _creds(git), ROLLBACK)
    assert again.commit == first.commit and not again.pushed
    assert len(git.log("releases")) == 3


def test_a_file_that_already_names_the_live_versions_gets_no_commit(git: GitServer) -> None:
    live = MANIFEST.replace("3.0.0", "2.0.0").replace("2.2.0", "2.1.0")
    git.commit_files("releases", {PATH: live}, "manual revert")
    result = DulwichGitWriter().write_back(_gitops(git), _creds(git), ROLLBACK)
    assert result.commit is None and not result.pushed
    assert [m for _, m in git.log("releases")] == ["manual revert", "Release 3.0.0"]


def test_a_push_that_loses_a_race_is_retried_on_the_new_tip(git: GitServer) -> None:
    def colleague_pushes_first(attempt: int) -> None:
        if attempt == 1:
            git.commit_files("releases", {"staging/other.yaml": "x: 2\n"}, "colleague")

    result = DulwichGitWriter(before_push=colleague_pushes_first).write_back(_gitops(git), _creds(git), ROLLBACK)

    log = git.log("releases")
    assert result.pushed and result.attempts == 2
    assert [m.splitlines()[0] for _, m in log][1:] == ["colleague", "Release 3.0.0"]
    assert log[0][0] == result.commit
    assert git.show("releases", "staging/other.yaml") == "x: 2\n"  # the colleague's change survives
    assert "version: 2.0.0   # bumped by backend CI" in git.show("releases", PATH)


def test_branch_mode_pushes_a_new_branch_and_leaves_main_alone(git: GitServer) -> None:
    writer = DulwichGitWriter()
    before = git.log("releases")
    result = writer.write_back(_gitops(git, GitOpsOnRollback.BRANCH), _creds(git), ROLLBACK)

    assert result.pushed and result.ref == "release-rollback/production/pratiko/revision-7"
    assert git.log("releases") == before
    assert git.log("releases", result.ref)[0][0] == result.commit
    assert "version: 2.0.0" in git.show("releases", PATH, result.ref)
    again = writer.write_back(_gitops(git, GitOpsOnRollback.BRANCH), _creds(git), ROLLBACK)
    assert again.commit == result.commit and not again.pushed
    assert sorted(git.branches("releases")) == ["main", result.ref]


def test_on_rollback_none_writes_nothing(git: GitServer) -> None:
    before = git.requests
    result = DulwichGitWriter().write_back(_gitops(git, GitOpsOnRollback.NONE), _creds(git), ROLLBACK)
    assert result.commit is None and git.requests == before


def test_the_token_appears_in_no_log_and_no_exception(git: GitServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # dulwich's and urllib3's debug logs included
    token = git.password
    basic = base64.b64encode(f"{git.username}:{token}".encode()).decode()
    DulwichGitWriter().write_back(_gitops(git), _creds(git), ROLLBACK)

    # Wrong credentials, a missing file, a token pasted into the URL: each error says what is
    # wrong without the secret.
    errors = []
    for gitops, creds in [
        (_gitops(git), GitCredentials(username=git.username, password=token + "x")),
        (GitOps(repository=git.url("releases"), branch="main", path="nope.yaml"), _creds(git)),
        (GitOps(repository=git.url("releases").replace("http://", f"http://bot:{token}@"), branch="main", path=PATH),
         _creds(git)),
        (GitOps(repository=git.url("missing"), branch="main", path=PATH), _creds(git)),
    ]:
        with pytest.raises(GitWriteBackError) as info:
            DulwichGitWriter().write_back(gitops, creds, dataclasses.replace(ROLLBACK, revision=8))
        assert info.value.__cause__ is None and info.value.__suppress_context__
        errors.append(f"{info.value} {info.value!r}")
    assert "Unauthorized" in errors[0] and "nope.yaml" in errors[1] and "Secret" in errors[2]
    assert "dulwich" in caplog.text or "urllib3" in caplog.text or "pushed rollback" in caplog.text
    for text in [caplog.text, *errors, repr(_creds(git))]:
        assert token not in text and basic not in text


def test_the_reconciler_call_writes_what_the_status_says_serves(git: GitServer) -> None:
    from controller.api.release import ReleaseSpec, ReleaseStatus
    from controller.gitops.rollback import write_back_rollback

    body = yaml.safe_load(MANIFEST.split("---\n")[2])
    body["spec"]["gitops"] = {"repository": git.url("releases"), "branch": "main", "path": PATH,
                              "secretRef": {"name": "releases-git"}}
    spec = ReleaseSpec.model_validate(body["spec"])
    status = ReleaseStatus.model_validate({
        "phase": "RolledBack", "revision": 7, "message": "rolled back",
        "backend": {"stableVersion": "2.0.0", "stableImage": ROLLBACK.backend_image},
        "frontend": {"stableVersion": "2.1.0"},
        "conditions": [{"type": "Ready", "status": "False", "reason": "RolledBack", "message": ROLLBACK.reason,
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    })
    asked = []

    def secrets(namespace: str, name: str, url: str) -> dict[str, bytes]:
        assert url == git.url("releases")  # where its contents go
        asked.append((namespace, name))
        return {"username": git.username.encode(), "password": git.password.encode()}

    result = write_back_rollback(DulwichGitWriter(), secrets, "production", "pratiko", spec, status)
    assert result is not None and result.pushed and asked == [("production", "releases-git")]
    assert git.log("releases")[0][1] == ROLLBACK.message(PATH).strip()
    # Not rolled back: nothing to write, and the Secret is not even read.
    progressing = status.model_copy(update={"phase": ReleaseStatus().phase})
    assert write_back_rollback(DulwichGitWriter(), secrets, "production", "pratiko", spec, progressing) is None
    assert len(asked) == 1


def test_a_release_without_namespace_in_the_file_is_found_by_name(git: GitServer) -> None:
    # With Flux or kustomize setting the namespace, the file often names none.
    git.commit_files("releases", {PATH: MANIFEST.replace("  namespace: production\n", "")}, "no namespace")
    result = DulwichGitWriter().write_back(_gitops(git), _creds(git), ROLLBACK)
    assert result.pushed and "version: 2.0.0   #" in git.show("releases", PATH)
    other = dataclasses.replace(ROLLBACK, name="someone-else", revision=9)
    with pytest.raises(GitWriteBackError, match="no Release production/someone-else"):
        DulwichGitWriter().write_back(_gitops(git), _creds(git), other)


def test_the_status_says_when_a_write_back_is_due_and_records_the_commit() -> None:
    from controller.api.release import ReleaseSpec, ReleaseStatus
    from controller.gitops.rollback import with_revert_commit, write_back_due
    from controller.gitops.writeback import WriteBackResult

    body = yaml.safe_load(MANIFEST.split("---\n")[2])
    plain = ReleaseSpec.model_validate(body["spec"])
    spec = plain.model_copy(update={"gitops": GitOps(repository="https://git.example.com/r.git", path=PATH)})
    entry = {"revision": 7, "backendVersion": "3.0.0", "result": "RolledBack",
             "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:05:00Z"}
    status = ReleaseStatus.model_validate({"phase": "RolledBack", "revision": 7, "history": [entry]})
    assert write_back_due(spec, status) and not write_back_due(plain, status)
    assert not write_back_due(spec, status.model_copy(update={"phase": ReleaseStatus().phase}))
    done = with_revert_commit(status, WriteBackResult("abc123", "main", True))
    assert done.history[-1].revert_commit == "abc123" and not write_back_due(spec, done)
    assert done.to_wire()["history"][-1]["revertCommit"] == "abc123"
    nothing = with_revert_commit(status, WriteBackResult(None, "main", False))
    assert nothing.history[-1].revert_commit == "" and not write_back_due(spec, nothing)
    assert with_revert_commit(status, None) == status


TIER_MANIFEST = """\
apiVersion: delivery.pratiko.ai/v1alpha1
kind: Release
metadata: {name: pratiko, namespace: production}
spec:
  environment: production
  backend:
    version: 3.0.0   # one version for the tier
    services:
      - name: api
        image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:3.0.0
        ecs: {cluster: pratiko-production, service: pratiko-backend, containerName: api}
      - name: worker   # no traffic
        after: [api]
        image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-worker:3.0.0"
        ecs: {cluster: pratiko-production, service: pratiko-worker, containerName: worker}
  strategy: {type: Fast}
"""


def test_a_tiers_rollback_writes_back_each_services_image_by_its_name(git: GitServer) -> None:
    git.commit_files("releases", {PATH: TIER_MANIFEST}, "Release 3.0.0, a tier")
    ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    rollback = dataclasses.replace(
        ROLLBACK, failed_frontend_version=None, frontend_version=None,
        service_images=(("worker", f"{ecr}/pratiko-worker:2.0.0"), ("api", f"{ecr}/pratiko-backend:2.0.0")))
    result = DulwichGitWriter().write_back(_gitops(git), _creds(git), rollback)

    assert result.pushed
    assert git.show("releases", PATH) == TIER_MANIFEST.replace("3.0.0", "2.0.0")
    message = git.log("releases")[0][1]
    assert f"worker {ecr}/pratiko-worker:2.0.0" in message and f"api {ecr}/pratiko-backend:2.0.0" in message


def test_a_tiers_rollback_naming_a_service_the_file_lacks_is_refused(git: GitServer) -> None:
    git.commit_files("releases", {PATH: TIER_MANIFEST}, "Release 3.0.0, a tier")
    rollback = dataclasses.replace(ROLLBACK, failed_frontend_version=None, frontend_version=None,
                                   service_images=(("mcp", "r/mcp:2.0.0"),))
    with pytest.raises(GitWriteBackError) as err:
        DulwichGitWriter().write_back(_gitops(git), _creds(git), rollback)
    assert err.value.reason == "GitManifestInvalid" and "name=mcp" in err.value.message


def test_what_a_tiers_rollback_writes_comes_from_each_services_status() -> None:
    from controller.api.release import BackendStatus, Phase, ReleaseStatus, ServiceBackendStatus
    from controller.gitops.rollback import rollback_of
    from tests.planner.sim import tier_image, tier_spec

    spec = tier_spec("2.0.0")
    entries = [ServiceBackendStatus(name=n, stable_image=tier_image(n, "1.0.0")) for n in ("api", "mcp", "worker")]
    status = ReleaseStatus(phase=Phase.ROLLED_BACK, revision=3, backend=BackendStatus(
        stable_version="1.0.0", stable_image=tier_image("api", "1.0.0"), services=entries))
    found = rollback_of("production", "pratiko", spec, status)
    assert found is not None and found.backend_version == "1.0.0" and found.failed_backend_version == "2.0.0"
    assert found.service_images == tuple((n, tier_image(n, "1.0.0")) for n in ("api", "mcp", "worker"))
    lost = status.model_copy(update={"backend": status.backend.model_copy(update={"services": entries[:2]})})
    with pytest.raises(GitWriteBackError, match="service worker"):
        rollback_of("production", "pratiko", spec, lost)
