"""Where a rollout stands after a phase, and the Ready, Progressing, Reconciling and Stalled
conditions derived from it.

Phases do not write these four: each says where the rollout stands (`Standing`: waiting
on AWS, pausing, paused, held, refused, ended, succeeded, ...) and `core.decide` derives both
conditions from it, in this one place, when it folds the phase's result (as Argo Rollouts derives
its Progressing and Paused conditions from the rollout's state). The conditions' lastTransitionTime
therefore moves exactly as often as a phase changes where the rollout stands. Each standing also
names the pass's `Outcome` when it ends one (rolled back, failed, refused, ...), which metrics read.
Conditions that belong to one phase (Healthy, Compatible, Drifted) are written by that phase.

Reconciling and Stalled follow kstatus (cli-utils `pkg/kstatus`, which Flux and Helm read):
`Reconciling=True` while the controller is still working towards the spec (a step, a bake, analysis,
a pause, AWS), `Stalled=True` when the spec will not be reached without a change (rolled back,
refused, held for an incompatible frontend or a broken API contract); never both True, and an
inactive one is False with reason Idle. `stamp` writes the generation on every condition.
The reconciler's own refusals (InvalidSpec, Conflict, InvalidTraffic, AWS errors) go through
`invalid` and `blocked` here too, so the whole table lives in this module (docs/gitops.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Sequence

from controller.api.reasons import Reason
from controller.api.release import Condition, ConditionType
from controller.planner.conditions import Status, set_condition
from controller.planner.decision import Outcome

Said = tuple[Status, str, str]  # a condition's status, reason and message


IDLE: Said = ("False", Reason.IDLE, "")
RECONCILER_STALLS = frozenset({Reason.CONFLICT, Reason.INVALID_TRAFFIC, Reason.INVALID_SPEC})
"""Refusals written by the reconciler that a new spec (or a person) must resolve: Stalled, not retried."""


@dataclass(frozen=True)
class Standing:
    progressing: Said | None = None  # None: the condition is left as it is
    ready: Said | None = None
    reconciling: Said | None = None
    stalled: Said | None = None
    outcome: Outcome | None = None  # what this standing makes of the pass, when it decides it


def _working(standing: Standing, reason: str, detail: str) -> Standing:
    """Reconciling=True: still working towards the spec."""
    return replace(standing, reconciling=("True", reason, detail), stalled=IDLE)


def _stuck(standing: Standing, reason: str, detail: str) -> Standing:
    """Stalled=True: the spec will not be reached without a change."""
    return replace(standing, reconciling=IDLE, stalled=("True", reason, detail))


def started(message: str) -> Standing:
    """A rollout began this pass: every condition of the previous rollout is replaced."""
    stood = Standing(progressing=("True", Reason.ROLLOUT_STARTED, message),
                     ready=("False", Reason.ROLLOUT_IN_PROGRESS, message))
    return _working(stood, Reason.ROLLOUT_STARTED, message)


def in_progress(reason: Reason, detail: str, message: str, progressing: Status = "True") -> Standing:
    """Under way and waiting for something (AWS, a timer, analysis, a promote request)."""
    stood = Standing(progressing=(progressing, reason, detail), ready=("False", Reason.ROLLOUT_IN_PROGRESS, message))
    return _working(stood, reason, detail)


def waiting(what: str, message: str) -> Standing:
    """A step has not landed in AWS yet."""
    return in_progress(Reason.WAITING, what, message)


def paused(reason: Reason, detail: str, why: str) -> Standing:
    """Held for a person: `paused: true`, or a Failed analysis with `onDegradation: Pause`. InProgress
    for kstatus (a person resumes it; nothing is wrong with the spec)."""
    return _working(Standing(progressing=("Unknown", reason, detail), ready=("False", reason, why)), reason, detail)


def unsafe(text: str) -> Standing:
    """An automatic rollback refused after an irreversible hook passed (`rollback.unsafe`): phase
    Paused, traffic where it was, and Stalled, since nothing happens until a person decides
    (`abort --force`, or a new spec)."""
    stood = Standing(progressing=("Unknown", Reason.ROLLBACK_UNSAFE, text), ready=("False", Reason.ROLLBACK_UNSAFE, text))
    return _stuck(stood, Reason.ROLLBACK_UNSAFE, text)


def held(reason: Reason, text: str, outcome: Outcome | None = None) -> Standing:
    """Stalled: ended going back (`outcome` RolledBack or Failed: the rollout is over, Progressing
    False), or held mid-rollout for a reason only a new spec resolves (an incompatible frontend, a
    broken contract: the rollout is still open, phase and Progressing stay Progressing/True)."""
    progressing: Status = "False" if outcome is not None else "True"
    stood = Standing(progressing=(progressing, reason, text), ready=("False", reason, text), outcome=outcome)
    return _stuck(stood, reason, text)


def refused(reason: Reason, message: str) -> Standing:
    """The spec cannot be rolled out here: nothing changes in AWS. Stalled until the spec changes."""
    stood = Standing(progressing=("False", reason, message), ready=("False", reason, message), outcome=Outcome.REFUSED)
    return _stuck(stood, reason, message)


def world_missing(reason: Reason, message: str) -> Standing:
    """What the spec names does not exist in AWS (yet: it is looked for again)."""
    return _working(Standing(ready=("False", reason, message), outcome=Outcome.WORLD_MISSING), reason, message)


def succeeded(message: str, warm_until: datetime | None, now_succeeded: bool) -> Standing:
    """Succeeded; Progressing stays True while the previous version is kept warm. The spec is live:
    nothing to reconcile, nothing stalled."""
    progressing: Said = (
        ("True", Reason.ROLLBACK_WINDOW, f"previous version kept warm until {warm_until.isoformat()}")
        if warm_until is not None else ("False", Reason.ROLLOUT_COMPLETED, message)
    )
    return Standing(
        progressing=progressing, ready=("True", Reason.SUCCEEDED, message), reconciling=IDLE, stalled=IDLE,
        outcome=Outcome.SUCCEEDED if now_succeeded else None,
    )


def invalid(message: str) -> Standing:
    """The spec does not validate (the reconciler's InvalidSpec): nothing is rolled out."""
    said: Said = ("False", Reason.INVALID_SPEC, message)
    return _stuck(Standing(progressing=said, ready=said), Reason.INVALID_SPEC, message)


def blocked(reason: str, message: str) -> Standing:
    """The reconciler cannot go on: a refusal (`RECONCILER_STALLS`: Stalled) or an AWS error that a
    later pass retries (Reconciling, with back-off)."""
    mark = _stuck if reason in RECONCILER_STALLS else _working
    return mark(Standing(ready=("False", reason, message)), reason, message)


def apply(conditions: Sequence[Condition], standing: Standing, now: datetime) -> list[Condition]:
    """The conditions `standing` says (the others untouched)."""
    out = list(conditions)
    for type_, said in (
        (ConditionType.PROGRESSING, standing.progressing), (ConditionType.READY, standing.ready),
        (ConditionType.RECONCILING, standing.reconciling), (ConditionType.STALLED, standing.stalled),
    ):
        if said is not None:
            out = set_condition(out, type_, said[0], said[1], said[2], now)
    return out


def stamp(conditions: Sequence[Condition], generation: int) -> list[Condition]:
    """Every condition written for `generation`: this pass looked at all of them for this spec."""
    return [c if c.observed_generation == generation else c.model_copy(update={"observed_generation": generation})
            for c in conditions]
