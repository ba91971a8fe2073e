"""A pass the reconciler could not take to AWS: what it says and when to look again.

The reconciler's refusals reach the planner as a `Refusal` in `Context` (see `decision.Refusal`):
an invalid spec, a Conflict over what the spec names, traffic that is not the Release's own, AWS
that could not be read or changed. `decide` hands them here before any phase runs: the status keeps
where the rollout stands, and only its message and its conditions (from `standing`, like every
other condition) say why nothing moved. Must not: ask for any action.

- InvalidSpec: phase Failed, Stalled, a Warning Event on every pass; no timer (a new spec wakes it).
- Conflict, InvalidTraffic: Stalled until a change elsewhere lifts them, looked at again after
  `CONFLICT_RECHECK` and `REFUSED_RECHECK`.
- An AWS error: Reconciling, a Warning Event when the reason is new, and `Outcome.BLOCKED`: the
  reconciler's back-off (`controller.reconciler.backoff`) says when to try again. AWS unreachable
  for less than `UNREACHABLE_AFTER` is a blip: nothing is said yet.
"""

from __future__ import annotations

from datetime import datetime

from controller.api.reasons import Reason
from controller.api.release import ConditionType, Phase, ReleaseStatus
from controller.planner import standing
from controller.planner.conditions import find
from controller.planner.decision import Context, Decision, Event, Outcome, Refusal

REFUSED_RECHECK = 60.0
"""A Release refused for its traffic looks again this often (a fixed listener needs no new spec)."""
CONFLICT_RECHECK = 10.0
"""A Release in conflict looks again this often: its owner may be deleted or hand the service over."""
UNREACHABLE_AFTER = 8.0
"""Seconds AWS may fail to answer (a pass or two) before the Release says AwsUnreachable."""

_RECHECK: dict[str, float] = {Reason.CONFLICT: CONFLICT_RECHECK, Reason.INVALID_TRAFFIC: REFUSED_RECHECK}


def refused(status: ReleaseStatus, refusal: Refusal, ctx: Context) -> Decision:
    """The decision of a pass refused for `refusal`, from the status it started from (`status`)."""
    if refusal.reason == Reason.INVALID_SPEC:
        return _invalid(status, refusal.message, ctx)
    message = refusal.message
    if refusal.reason == Reason.AWS_UNREACHABLE and refusal.since is not None:
        if (ctx.now - refusal.since).total_seconds() < UNREACHABLE_AFTER:
            return Decision((), status, outcome=Outcome.BLOCKED)  # a blip, so far: nothing said or kept
        message = (f"AWS has not answered since {refusal.since.isoformat(timespec='seconds')}; the rollout's step "
                   f"and pause timers are held until it does. Last error: {message}")
    base = refusal.during.status if refusal.during is not None else status
    new = base.model_copy(update={
        "observed_generation": ctx.generation, "message": message,
        "conditions": _conditions(base, standing.blocked(refusal.reason, message), ctx.now, ctx.generation),
    })
    ready = find(status.conditions, ConditionType.READY)
    events = () if ready is not None and ready.reason == refusal.reason else (Event(refusal.reason, message, "Warning"),)
    recheck = _RECHECK.get(refusal.reason)
    outcome = Outcome.REFUSED if recheck is not None else Outcome.BLOCKED
    return Decision((), new, events, requeue_after=recheck, outcome=outcome)


def _invalid(status: ReleaseStatus, message: str, ctx: Context) -> Decision:
    """A spec the models refuse: Failed and Stalled, InvalidSpec naming the fields; AWS untouched."""
    new = status.model_copy(update={
        "phase": Phase.FAILED, "observed_generation": ctx.generation, "message": message,
        "conditions": _conditions(status, standing.invalid(message), ctx.now, ctx.generation),
    })
    return Decision((), new, (Event(Reason.INVALID_SPEC, message, "Warning"),), outcome=Outcome.REFUSED)


def _conditions(status: ReleaseStatus, stood: standing.Standing, now: datetime, generation: int) -> list[object]:
    return list(standing.stamp(standing.apply(status.conditions, stood, now), generation))
