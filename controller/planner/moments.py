"""Which notification moments a pass produced (`moments`), pure.

Read from a pass's `Decision` against the status it started from (its outcome, phase and step
moves, promotion time, hooks failed, drift reverted), never from the Events' free text. `decide`
puts them in `Decision.moments`; the notification ledger (`controller.notify`) delivers them.
Must not: know the sinks or the delivery (that is `controller.notify`).
"""

from __future__ import annotations

from controller.api.reasons import Reason
from controller.api.release import ConditionType, DriftAction, Moment, Phase, ReleaseSpec, ReleaseStatus
from controller.planner.decision import Decision, Outcome


def moments(before: ReleaseStatus, decision: Decision, spec: ReleaseSpec) -> list[tuple[Moment, int | None]]:
    """The moments this pass produced: (moment, step) with step set for StepCompleted."""
    after = decision.status
    out: list[tuple[Moment, int | None]] = []
    if after.revision > before.revision:
        out.append((Moment.STARTED, None))
    elif after.revision == before.revision and after.current_step > before.current_step:
        out.extend((Moment.STEP_COMPLETED, step) for step in range(before.current_step, after.current_step))
    if after.phase == Phase.PAUSED and before.phase != Phase.PAUSED:
        out.append((Moment.PAUSED, None))
    if _progressing_reason(after) == Reason.WAITING_FOR_PROMOTE and _progressing_reason(before) != Reason.WAITING_FOR_PROMOTE:
        out.append((Moment.AWAITING_APPROVAL, None))
    if after.promoted_at is not None and after.promoted_at != before.promoted_at:
        out.append((Moment.PROMOTED, None))
    if decision.outcome == Outcome.SUCCEEDED:
        out.append((Moment.SUCCEEDED, None))
    elif decision.outcome == Outcome.ROLLED_BACK:
        out.append((Moment.ROLLED_BACK, None))
    elif decision.outcome == Outcome.FAILED:
        out.append((Moment.STALLED, None))
    for reason, moment in ((Reason.ROLLBACK_UNSAFE, Moment.STALLED), (Reason.HOOK_FAILED, Moment.HOOK_FAILED)):
        if _ready_reason(after) == reason and _ready_reason(before) != reason:
            out.append((moment, None))
    failed_before = {(h.point, h.name, h.revision) for h in before.hooks or [] if h.failed_at is not None}
    if any(h.failed_at is not None and (h.point, h.name, h.revision) not in failed_before for h in after.hooks or []) \
            and (Moment.HOOK_FAILED, None) not in out:
        out.append((Moment.HOOK_FAILED, None))  # also a postPromotion or onRollback hook: Ready says nothing
    if decision.drift and spec.rollback.on_drift == DriftAction.REVERT:
        out.append((Moment.DRIFT_REVERTED, None))
    return out


def _ready_reason(status: ReleaseStatus) -> str | None:
    return next((c.reason for c in status.conditions if c.type == ConditionType.READY), None)


def _progressing_reason(status: ReleaseStatus) -> str | None:
    return next((c.reason for c in status.conditions if c.type == ConditionType.PROGRESSING), None)
