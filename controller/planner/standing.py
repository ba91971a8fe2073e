"""Where a rollout stands after a phase, and the Ready and Progressing conditions derived from it.

Phases do not write Ready or Progressing: each says where the rollout stands (`Standing`: waiting
on AWS, pausing, paused, held, refused, ended, succeeded, ...) and `core.decide` derives both
conditions from it, in this one place, when it folds the phase's result (as Argo Rollouts derives
its Progressing and Paused conditions from the rollout's state). The conditions' lastTransitionTime
therefore moves exactly as often as a phase changes where the rollout stands. Each standing also
names the pass's `Outcome` when it ends one (rolled back, failed, refused, ...), which metrics read.
Conditions that belong to one phase (Healthy, Compatible, Drifted) are written by that phase.

Adding a condition (kstatus Reconciling/Stalled, say) is one more field here and one more line in
`apply`: every phase's standing already says what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from controller.api.reasons import Reason
from controller.api.release import Condition, ConditionType
from controller.planner.conditions import Status, set_condition
from controller.planner.decision import Outcome

Said = tuple[Status, Reason, str]  # a condition's status, reason and message


@dataclass(frozen=True)
class Standing:
    progressing: Said | None = None  # None: Progressing is left as it is
    ready: Said | None = None
    outcome: Outcome | None = None  # what this standing makes of the pass, when it decides it


def started(message: str) -> Standing:
    """A rollout began this pass."""
    return Standing(progressing=("True", Reason.ROLLOUT_STARTED, message))


def in_progress(reason: Reason, detail: str, message: str, progressing: Status = "True") -> Standing:
    """Under way and waiting for something (AWS, a timer, analysis, a promote request)."""
    return Standing(progressing=(progressing, reason, detail), ready=("False", Reason.ROLLOUT_IN_PROGRESS, message))


def waiting(what: str, message: str) -> Standing:
    """A step has not landed in AWS yet."""
    return in_progress(Reason.WAITING, what, message)


def paused(reason: Reason, detail: str, why: str) -> Standing:
    """Held for a person: `paused: true`, or a Failed analysis with `onDegradation: Pause`."""
    return Standing(progressing=("Unknown", reason, detail), ready=("False", reason, why))


def held(reason: Reason, text: str, outcome: Outcome | None = None) -> Standing:
    """Stopped for a reason a person must resolve (an incompatible backend, a broken contract), or
    ended going back (`outcome` RolledBack or Failed)."""
    return Standing(progressing=("False", reason, text), ready=("False", reason, text), outcome=outcome)


def refused(reason: Reason, message: str) -> Standing:
    """The spec cannot be rolled out here: nothing changes in AWS."""
    return Standing(progressing=("False", reason, message), outcome=Outcome.REFUSED)


def world_missing(reason: Reason, message: str) -> Standing:
    """What the spec names does not exist in AWS."""
    return Standing(ready=("False", reason, message), outcome=Outcome.WORLD_MISSING)


def succeeded(message: str, warm_until: datetime | None, now_succeeded: bool) -> Standing:
    """Succeeded; Progressing stays True while the previous version is kept warm."""
    progressing: Said = (
        ("True", Reason.ROLLBACK_WINDOW, f"previous version kept warm until {warm_until.isoformat()}")
        if warm_until is not None else ("False", Reason.ROLLOUT_COMPLETED, message)
    )
    return Standing(
        progressing=progressing, ready=("True", Reason.SUCCEEDED, message),
        outcome=Outcome.SUCCEEDED if now_succeeded else None,
    )


def apply(conditions: Sequence[Condition], standing: Standing, now: datetime) -> list[Condition]:
    """Ready and Progressing as `standing` says (the others untouched)."""
    out = list(conditions)
    for type_, said in ((ConditionType.PROGRESSING, standing.progressing), (ConditionType.READY, standing.ready)):
        if said is not None:
            out = set_condition(out, type_, said[0], said[1], said[2], now)
    return out
