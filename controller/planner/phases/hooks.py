"""Hooks (`spec.hooks`): five points of a rollout, each a list of hooks run in order.

  preRollout     met by the backend walk before the new version's first task set is created (a
                 migration runs before new code serves); a failure rolls back before the canary
                 ever gets weight (or pauses, with `onFailure: Pause`)
  preview        met by the backend walk at a preview's hold, once the preview route is observed (a
                 smoke test through the header); a failure rolls back (or pauses), and the route goes
  prePromotion   met by the backend walk when the steps are done, before full traffic; a failure
                 rolls back (or pauses)
  postPromotion  met once the backend was promoted and the rollout Succeeded; a failure is a Warning
                 Event and the HookFailed moment, nothing rolls back
  onRollback     met once a rollout was rolled back (or failed going back); a failure is a Warning
                 Event only

A hook of the rollout's revision gets a record in `status.hooks` when its point is reached (its
`startedAt`); `due` then tells the reconciler to run it (a webhook POST, an ECS task started or
looked at) at `nextAt`, and the result comes back in `Context.hooks`. The records are the memory:
`due` is a pure function of spec, status and clock, and a passed hook is never run again for one
revision, across operator restarts too. Hooks are treated by kind only through their result
(`HookResult`): passed; failed for good (`final`, a task that exited non-zero); or not yet, asked
again: a webhook with back-off (1s doubling, at most 30s), an ECS task polled every 2s, until the
hook's timeout after it started, then it fails. The next hook starts once the one before passed
(or, at the two reporting points, ended either way).

`irreversible: true` on a passed preRollout or prePromotion hook (a migration that cannot be undone)
is read by `rollback.unsafe`: a later automatic rollback pauses instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum

from controller.api.reasons import Reason
from controller.api.release import Hook, HookFailure, HookStatus, Phase, ReleaseSpec, ReleaseStatus
from controller.api.types import format_duration
from controller.planner import standing
from controller.planner.decision import HookResult
from controller.planner.draft import Draft
from controller.planner.phases import rollback

PRE_ROLLOUT = "preRollout"
PRE_PROMOTION = "prePromotion"
PREVIEW = "preview"
POST_PROMOTION = "postPromotion"
ON_ROLLBACK = "onRollback"
POINTS = (PRE_ROLLOUT, PREVIEW, PRE_PROMOTION, POST_PROMOTION, ON_ROLLBACK)
GATES = (PRE_ROLLOUT, PREVIEW, PRE_PROMOTION)
"""The points a failure of which stops the rollout; at the others a failure is reported only."""

BACKOFF = 1.0
MAX_BACKOFF = 30.0
TASK_POLL = 2.0
TASK_TIMEOUT = timedelta(minutes=10)
"""An ecsTask hook's timeout when its spec gives none (`EcsTaskHook.timeout` defaults to the same)."""


class Walked(Enum):
    DONE = "done"  # every hook of the point passed (or, at a reporting point, ended)
    WAITING = "waiting"  # a hook has not ended: look again (`d.wait` set)
    FAILED = "failed"  # a gate's hook failed: the caller rolls back or pauses


def hooks_at(spec: ReleaseSpec, point: str) -> list[Hook]:
    h = spec.hooks
    return {PRE_ROLLOUT: h.pre_rollout, PREVIEW: h.preview, PRE_PROMOTION: h.pre_promotion,
            POST_PROMOTION: h.post_promotion, ON_ROLLBACK: h.on_rollback}[point]


def _active(status: ReleaseStatus, point: str) -> bool:
    """Whether `point`'s hooks may run in the status's phase (a record of a rollout that moved on,
    say a prePromotion hook cut short by a rollback, is not run again)."""
    if point in GATES:
        return status.phase == Phase.PROGRESSING
    if point == POST_PROMOTION:
        return status.phase == Phase.SUCCEEDED
    return status.phase in (Phase.ROLLED_BACK, Phase.FAILED)


def due(spec: ReleaseSpec, status: ReleaseStatus, now: datetime) -> list[tuple[str, Hook]]:
    """The hooks the reconciler must run before this pass: started, not ended, their time come."""
    out: list[tuple[str, Hook]] = []
    for point in POINTS:
        if not _active(status, point):
            continue
        for hook in hooks_at(spec, point):
            rec = _record(status, point, hook.name, status.revision)
            if rec is None:
                break  # not started: the rollout has not reached it
            if rec.passed_at is not None or (rec.failed_at is not None and point not in GATES):
                continue
            if rec.failed_at is None and (rec.next_at is None or now >= rec.next_at):
                out.append((point, hook))
            break  # in order: the next one waits for this one
    return out


def timeout(hook: Hook) -> timedelta:
    """How long a hook may take from its start: `webhook.timeout`, or `ecsTask.timeout`."""
    if hook.webhook is not None:
        return hook.webhook.timeout
    value = getattr(hook.ecs_task, "timeout", None)
    return value if isinstance(value, timedelta) else TASK_TIMEOUT


def pre_rollout(d: Draft) -> bool:
    """True when every preRollout hook passed for this revision (the new task set may be created);
    else it waits, or it failed (rolled back or paused: the status says which)."""
    return _gate(d, PRE_ROLLOUT)


def preview(d: Draft) -> bool:
    """True when every preview hook passed for this revision (met at a preview's hold, once its route
    is there); else it waits, or it failed (rolled back or paused: the route then goes)."""
    return _gate(d, PREVIEW)


def pre_promotion(d: Draft) -> bool:
    """True when every prePromotion hook passed for this revision; else it waits, or it failed."""
    return _gate(d, PRE_PROMOTION)


def post_promotion(d: Draft) -> None:
    """A Succeeded rollout that promoted a backend runs its postPromotion hooks (reported only)."""
    promoted, started = d.st.promoted_at, d.st.rollout_started_at
    if d.st.phase != Phase.SUCCEEDED or promoted is None or started is None or promoted < started:
        return  # adopted, or a rollout of the frontend or flags only: no promotion happened
    _walk(d, POST_PROMOTION)


def on_rollback(d: Draft) -> None:
    """A rollout that went back runs its onRollback hooks (reported only)."""
    last = d.st.history[-1] if d.st.history else None
    if last is None or last.revision != d.st.revision or last.result not in ("RolledBack", "Aborted", "Failed"):
        return  # refused before it started: nothing went back
    _walk(d, ON_ROLLBACK)


def _gate(d: Draft, point: str) -> bool:
    walked, hook, message = _walk(d, point)
    if walked == Walked.FAILED:
        assert hook is not None
        _failed(d, hook, message)
        return False
    if walked == Walked.WAITING:
        return False
    # The step timer (and the progress deadline with it) starts when the last hook passed: the
    # time a hook took is not time the next step had to land in.
    passed = [h.passed_at for h in d.st.hooks or [] if h.point == point and h.revision == d.st.revision
              and h.passed_at is not None]
    if passed and d.st.step_started_at is not None and d.st.step_started_at < max(passed):
        d.update(step_started_at=max(passed))
    return True


def _walk(d: Draft, point: str) -> tuple[Walked, Hook | None, str]:
    """Run `point`'s hooks in order as far as their results allow (see the module docstring)."""
    gate = point in GATES
    for hook in hooks_at(d.spec, point):
        rec = _record(d.st, point, hook.name, d.st.revision)
        if rec is not None and rec.passed_at is not None:
            continue
        if rec is not None and rec.failed_at is not None:
            if gate:
                return Walked.FAILED, hook, rec.message  # failed earlier: the failure stands
            continue
        if rec is None:
            rec = HookStatus(point=point, name=hook.name, revision=d.st.revision, started_at=d.now, next_at=d.now)
            d.event(Reason.HOOK_PENDING, f"{point} hook {hook.name} started")
        result = _result(d, point, hook)
        if result is not None:
            rec = rec.model_copy(update={"attempts": rec.attempts + 1, "message": result.message[:500]})
            if result.passed:
                _save(d, rec.model_copy(update={"passed_at": d.now, "next_at": None}))
                d.event(Reason.HOOK_PASSED, f"{point} hook {hook.name} passed: {result.message}")
                continue
        limit = timeout(hook)
        final = result is not None and result.final
        if final or d.now - rec.started_at >= limit:
            if final:
                text = f"{point} hook {hook.name} failed: {rec.message}"
            elif hook.webhook is not None:
                text = f"{point} hook {hook.name} failed after {rec.attempts} attempts: {rec.message}"
            else:
                text = f"{point} hook {hook.name} timed out after {format_duration(limit)}: {rec.message}"
            _save(d, rec.model_copy(update={"next_at": None, "failed_at": d.now, "message": text[:500]}))
            if gate:
                return Walked.FAILED, hook, text
            d.event(Reason.HOOK_FAILED, text + " (reported only: nothing rolls back)", warning=True)
            continue
        if result is not None:
            wait = TASK_POLL if hook.webhook is None else min(BACKOFF * 2 ** (rec.attempts - 1), MAX_BACKOFF)
            # The last attempt is made at the timeout itself, not a back-off step after it.
            rec = rec.model_copy(update={"next_at": min(d.now + timedelta(seconds=wait), rec.started_at + limit)})
        _save(d, rec)
        if gate:
            text = f"waiting for {point} hook {hook.name}" + (f": {rec.message}" if rec.message else "")
            d.stand(standing.in_progress(Reason.HOOK_PENDING, text, text))
        d.wait(max(0.5, ((rec.next_at or d.now) - d.now).total_seconds()))
        return Walked.WAITING, hook, ""
    return Walked.DONE, None, ""


def _result(d: Draft, point: str, hook: Hook) -> HookResult | None:
    return next((r for r in d.inp.ctx.hooks if (r.point, r.name, r.revision) == (point, hook.name, d.st.revision)),
                None)


def _failed(d: Draft, hook: Hook, message: str) -> None:
    """A gate's hook failed (this pass or earlier: said once, re-derived every pass)."""
    if hook.on_failure == HookFailure.PAUSE:
        text = f"paused: {message}"
        if d.st.message != text:
            d.event(Reason.HOOK_FAILED, text, warning=True)
        d.update(phase=Phase.PAUSED, message=text)
        d.stand(standing.paused(Reason.HOOK_FAILED, text, message))
        return
    if not rollback.irreversible_passed(d):
        d.event(Reason.HOOK_FAILED, message, warning=True)  # else `rollback.unsafe` says why it pauses
    rollback.roll_back(d, Reason.HOOK_FAILED, "RolledBack", message, Phase.ROLLED_BACK)


def _record(status: ReleaseStatus, point: str, name: str, revision: int) -> HookStatus | None:
    return next((h for h in status.hooks or [] if (h.point, h.name, h.revision) == (point, name, revision)), None)


def _save(d: Draft, rec: HookStatus) -> None:
    # Only this revision's records are kept: an earlier rollout's hooks say nothing about this one.
    kept = [h for h in d.st.hooks or [] if h.revision == rec.revision and (h.point, h.name) != (rec.point, rec.name)]
    d.update(hooks=[*kept, rec])
