"""The GitOps write-back's Secret is checked where it is read, not only at the tenancy gate: under
strict tenancy its contents go only to a repository URL its `delivery.pratiko.ai/allowed-urls`
annotation allows, so an annotation removed (or a repository changed) after the gate let the Release
in sends nothing. No Git server is needed: the writer records whether it was called at all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from controller.api.release import ReleaseSpec, ReleaseStatus
from controller.gitops.rollback import secret_reader, write_back_rollback
from controller.gitops.writeback import GitWriteBackError
from controller.tenancy.secrets import ALLOWED_URLS_ANNOTATION
from controller.testing.specs import release_spec

REPO = "https://git.example.com/team-a/releases.git"
PASSWORD = "db-Passw0rd-7f3a9c"


class Writer:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def write_back(self, gitops: Any, credentials: Any, rollback: Any) -> Any:
        self.calls.append(credentials)
        return None


def objects(annotations: Mapping[str, str]) -> Any:
    def read(namespace: str, name: str) -> tuple[Mapping[str, str], Mapping[str, bytes]]:
        return annotations, {"username": b"dbadmin", "password": PASSWORD.encode()}
    return read


def rolled_back() -> tuple[ReleaseSpec, ReleaseStatus]:
    spec = ReleaseSpec.model_validate(release_spec(
        version="2.0.0", image="repo/app:2.0.0", cluster="c", service="s",
        gitops={"repository": REPO, "path": "app.yaml", "secretRef": {"name": "git"}}))
    status = ReleaseStatus.model_validate({
        "phase": "RolledBack", "revision": 2, "message": "rolled back",
        "backend": {"stableVersion": "1.0.0", "stableImage": "repo/app:1.0.0"},
        "conditions": [{"type": "Ready", "status": "False", "reason": "RolledBack", "message": "m",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    })
    return spec, status


@pytest.mark.parametrize("annotation", [None, "https://git.example.com/team-b/*"])
def test_a_secret_that_does_not_allow_the_repository_is_not_handed_over(annotation: str | None) -> None:
    spec, status = rolled_back()
    writer = Writer()
    read = secret_reader(None, objects({ALLOWED_URLS_ANNOTATION: annotation} if annotation else {}))  # type: ignore[arg-type]
    with pytest.raises(GitWriteBackError) as refused:
        write_back_rollback(writer, read, "team-a", "app", spec, status)  # type: ignore[arg-type]
    assert refused.value.reason == "NotPermitted" and not refused.value.retryable
    assert ALLOWED_URLS_ANNOTATION in refused.value.message and PASSWORD not in refused.value.message
    assert writer.calls == []  # nothing was sent anywhere


def test_a_secret_that_allows_the_repository_is_used() -> None:
    spec, status = rolled_back()
    writer = Writer()
    read = secret_reader(None, objects({ALLOWED_URLS_ANNOTATION: "https://git.example.com/team-a/*"}))  # type: ignore[arg-type]
    write_back_rollback(writer, read, "team-a", "app", spec, status)  # type: ignore[arg-type]
    assert len(writer.calls) == 1 and writer.calls[0].password == PASSWORD
