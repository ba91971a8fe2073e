"""The status contract as the real kstatus library (cli-utils v0.37.2) reads it.

Flux's `wait: true`, Helm 4's `--wait` and `kubectl wait` gate on these verdicts. The objects are the
Argo CD testdata, so one set of objects is asserted by both tools; when an object changes (say, a
capture from a real run replaces a hand-written one) and breaks the contract, these fail.
"""

from __future__ import annotations

import pytest
import yaml

from controller.cli.show import EXIT_FAILED, EXIT_LIVE, outcome
from controller.testing.gitops import ARGOCD_RELEASE, argo_health, kstatus

pytestmark = pytest.mark.timeout(900)  # the first run builds kstatus from cli-utils

# testdata file -> (kstatus, Argo CD health, `status --watch`: None waits, else its exit code)
TABLE = {
    "succeeded.yaml": ("Current", "Healthy", EXIT_LIVE),
    "progressing.yaml": ("InProgress", "Progressing", None),
    "paused.yaml": ("InProgress", "Suspended", None),
    "paused_waitingForPromote.yaml": ("InProgress", "Suspended", None),
    "rolledBack_aborted.yaml": ("Failed", "Degraded", EXIT_FAILED),
    "failed_invalidSpec.yaml": ("Failed", "Degraded", EXIT_FAILED),
    "stalled_incompatibleFrontend.yaml": ("Failed", "Degraded", EXIT_FAILED),
    "progressing_newGeneration.yaml": ("InProgress", "Progressing", None),
}


def watch_exit(obj: dict) -> int | None:  # type: ignore[type-arg]
    verdict = outcome(obj)
    return None if not verdict.done else (EXIT_LIVE if verdict.live else EXIT_FAILED)


def load(name: str) -> dict:  # type: ignore[type-arg]
    obj: dict = yaml.safe_load((ARGOCD_RELEASE / "testdata" / name).read_text())  # type: ignore[type-arg]
    return obj


@pytest.mark.parametrize(("name", "expected"), TABLE.items(), ids=list(TABLE))
def test_kstatus_argo_cd_and_watch_agree_with_the_table(name: str, expected: tuple[str, str, int | None]) -> None:
    obj = load(name)
    assert (kstatus(obj).status, argo_health(obj).status, watch_exit(obj)) == expected


def test_a_stalled_release_fails_with_the_stalled_message() -> None:
    obj = load("rolledBack_aborted.yaml")
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert kstatus(obj).message == stalled["message"]


def test_a_release_the_controller_has_not_seen_yet_is_current_for_kstatus() -> None:
    """kstatus' own limit, not ours: without any status it calls a custom resource Current. Argo CD
    (through health.lua) waits; Flux relies on the controller's first status write coming fast."""
    obj = load("progressing_noStatus.yaml")
    assert kstatus(obj).status == "Current"
    assert argo_health(obj).status == "Progressing"
    assert watch_exit(obj) is None


def test_ready_false_without_stalled_never_fails() -> None:
    """The issue's bug, kept visible: a rollback told only by Ready=False is InProgress forever."""
    obj = load("rolledBack_aborted.yaml")
    obj["status"]["conditions"] = [c for c in obj["status"]["conditions"] if c["type"] not in ("Stalled", "Reconciling")]
    assert kstatus(obj).status == "InProgress"
