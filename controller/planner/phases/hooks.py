"""Hooks (`spec.hooks`): the prePromotion gate, met by the backend walk before it promotes.

Each prePromotion hook of the rollout's revision gets a record in `status.hooks` when the steps
are done (its `startedAt`); `due` then tells the reconciler to call it (a webhook POST) at
`nextAt`, and the call's result comes back in `Context.hooks`. A 2xx passes it; any other answer, or
none, is asked again with back-off (1s doubling, at most 30s) until the hook's `timeout` after it
started; then it fails: the rollout rolls back (reason HookFailed), or pauses with `onFailure:
Pause`. Hooks run in order; the next starts once the one before passed. Promotion waits for all.

Not built yet: preRollout, postPromotion and onRollback points, `ecsTask` hooks (the CRD refuses
them), and `irreversible` (accepted, no effect yet).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.api.reasons import Reason
from controller.api.release import Hook, HookFailure, HookStatus, Phase, ReleaseSpec, ReleaseStatus
from controller.planner import standing
from controller.planner.draft import Draft
from controller.planner.phases import rollback

PRE_PROMOTION = "prePromotion"
BACKOFF = 1.0
MAX_BACKOFF = 30.0


def due(spec: ReleaseSpec, status: ReleaseStatus, now: datetime) -> list[tuple[str, Hook]]:
    """The hooks the reconciler must call before this pass: started, not passed, their time come."""
    out: list[tuple[str, Hook]] = []
    if status.phase != Phase.PROGRESSING:
        return out
    for hook in spec.hooks.pre_promotion:
        rec = _record(status, PRE_PROMOTION, hook.name, status.revision)
        if rec is None:
            break  # not started: the walk has not reached it
        if rec.passed_at is not None:
            continue
        if rec.next_at is None or now >= rec.next_at:
            out.append((PRE_PROMOTION, hook))
        break  # in order: the next one waits for this one
    return out


def pre_promotion(d: Draft) -> bool:
    """True when every prePromotion hook passed for this revision; else it waits, or it failed
    (rolled back or paused: the status says which)."""
    for hook in d.spec.hooks.pre_promotion:
        rec = _record(d.st, PRE_PROMOTION, hook.name, d.st.revision)
        if rec is not None and rec.passed_at is not None:
            continue
        if rec is None:
            rec = HookStatus(point=PRE_PROMOTION, name=hook.name, revision=d.st.revision, started_at=d.now,
                             next_at=d.now)
            d.event(Reason.HOOK_PENDING, f"{PRE_PROMOTION} hook {hook.name} started")
        result = next((r for r in d.inp.ctx.hooks if (r.point, r.name, r.revision) ==
                       (PRE_PROMOTION, hook.name, d.st.revision)), None)
        if result is not None:
            rec = rec.model_copy(update={"attempts": rec.attempts + 1, "message": result.message[:500]})
            if result.passed:
                _save(d, rec.model_copy(update={"passed_at": d.now, "next_at": None}))
                d.event(Reason.HOOK_PASSED, f"{PRE_PROMOTION} hook {hook.name} passed: {result.message}")
                continue
        assert hook.webhook is not None
        if d.now - rec.started_at >= hook.webhook.timeout:
            _save(d, rec.model_copy(update={"next_at": None}))
            _failed(d, hook, f"{PRE_PROMOTION} hook {hook.name} failed after {rec.attempts} attempts: {rec.message}")
            return False
        if result is not None:
            wait = min(BACKOFF * 2 ** (rec.attempts - 1), MAX_BACKOFF)
            # The last attempt is made at the timeout itself, not a back-off step after it.
            last = rec.started_at + hook.webhook.timeout
            rec = rec.model_copy(update={"next_at": min(d.now + timedelta(seconds=wait), last)})
        _save(d, rec)
        text = f"waiting for {PRE_PROMOTION} hook {hook.name}" + (f": {rec.message}" if rec.message else "")
        d.stand(standing.in_progress(Reason.HOOK_PENDING, text, text))
        d.wait(max(0.5, ((rec.next_at or d.now) - d.now).total_seconds()))
        return False
    return True


def _failed(d: Draft, hook: Hook, message: str) -> None:
    if hook.on_failure == HookFailure.PAUSE:
        d.update(phase=Phase.PAUSED, message=f"paused: {message}")
        d.stand(standing.paused(Reason.HOOK_FAILED, f"paused: {message}", message))
        d.event(Reason.HOOK_FAILED, f"paused: {message}", warning=True)
        return
    d.event(Reason.HOOK_FAILED, message, warning=True)
    rollback.roll_back(d, Reason.HOOK_FAILED, "RolledBack", message, Phase.ROLLED_BACK)


def _record(status: ReleaseStatus, point: str, name: str, revision: int) -> HookStatus | None:
    return next((h for h in status.hooks or [] if (h.point, h.name, h.revision) == (point, name, revision)), None)


def _save(d: Draft, rec: HookStatus) -> None:
    # Only this revision's records are kept: an earlier rollout's hooks say nothing about this one.
    kept = [h for h in d.st.hooks or [] if h.revision == rec.revision and (h.point, h.name) != (rec.point, rec.name)]
    d.update(hooks=[*kept, rec])
