"""`decide`: one reconcile pass of one Release, as a pure function.

Given the spec, the status written by the previous pass, what AWS looks like now and the context
(identity, clock, user requests, measurements taken this pass), return the actions to apply, the
new status, the Events to emit and when to look again. Nothing here talks to AWS, Kubernetes or the
clock; the reconciler does, and applies the actions in the order given.

The status records *where* a rollout is (its target hash, step, timers); the observation says
whether each step *landed*. A step advances only when AWS is observed in its desired state, so an
action that was lost is asked for again, a pass repeated with the same inputs returns the same
decision, and a controller restarted anywhere converges instead of duplicating work.

The pass is a short list of phases (`planner.phases`, listed there in the order a rollout meets
them), each a pure function `(Inputs, status so far) -> Result`; any phase may end the pass
(`holds`), and the results are folded here into one `Decision`, the way Argo Rollouts'
`rolloutCanary` runs its `reconcileX` steps and returns early into one status sync.
A spec change mid-rollout supersedes it; abort, analysis failure and the progress deadline put
traffic back on the stable version; `paused: true` freezes everything including timers.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from controller.api.release import Phase, ReleaseSpec, ReleaseStatus
from controller.planner.actions import Action, DeleteTaskSet, ScaleTaskSet
from controller.planner import group, serving, standing
from controller.planner.decision import Context, Decision, Event, Outcome
from controller.planner.draft import HISTORY_LIMIT, Inputs, Result
from controller.planner.moments import moments
from controller.planner.phases import backend, flags, frontend, gate, preview, settle, start, upstream
from controller.planner.phases.backend import ECS_POLL, hold_timers
from controller.planner.phases.rollback import POLL
from controller.planner.phases.start import REFUSED_RECHECK
from controller.planner.refusal import refused
from controller.planner.strategy import target_hash
from controller.planner.world import Observation

AFTER_ACTIONS = 0.5
"""Seconds to the next pass after a pass that asked AWS for changes: most show at once (a weight, a
new task set record), so look again soon; what has not landed then falls back to POLL."""

__all__ = ["AFTER_ACTIONS", "ECS_POLL", "HISTORY_LIMIT", "POLL", "REFUSED_RECHECK", "decide", "resume"]


def decide(spec: ReleaseSpec | None, status: ReleaseStatus, observation: Observation, ctx: Context) -> Decision:
    """One pass: see the module docstring. Pure and deterministic.

    A pass the reconciler could not take to AWS (`ctx.refusal`; `spec` None: it does not validate)
    runs no phase: `refusal.refused` says why nothing moves.
    """
    if ctx.refusal is not None or spec is None:
        assert ctx.refusal is not None, "a pass without a valid spec is a refusal"
        return refused(status, ctx.refusal, ctx)
    inp = Inputs(spec, observation, ctx, target_hash(spec))
    run = _Run(spec, status, status.model_copy(update={"observed_generation": ctx.generation}), ctx.now,
               ctx.generation, inp)
    if run.fold(start.check_world(inp, run.status)):
        return _end(run)
    honoured, acknowledged = start.take_requests(spec, run.status, ctx)
    run.status = acknowledged
    inp = replace(inp, promote=bool(honoured.promote), promote_full=honoured.promote_full, abort=bool(honoured.abort),
                  retry=bool(honoured.retry))
    if run.fold(upstream.gate(inp, run.status)):
        return _end(run)
    if run.fold(start.reconcile(inp, run.status)):
        return _end(run)
    if run.status.phase == Phase.SUCCEEDED:
        _settled(inp, run)
    else:
        _in_progress(inp, run)
    return _end(run)


def _end(run: _Run) -> Decision:
    """The decision of the pass, with the preview route removed first when the pass ends away from a
    preview step (`phases.preview.tidy`), before any weight this pass moves."""
    tidied = preview.tidy(run.inp, run.status)
    run.actions[:0] = tidied.actions
    return run.decision()


def resume(status: ReleaseStatus, outage: timedelta) -> ReleaseStatus:
    """The status to decide from once AWS answers again after not answering for `outage`: a
    rollout's step, pause and hook timers move on by that long, so a pause does not run down unseen
    (the reconciler says how long AWS was silent; this says what that does to a rollout)."""
    return hold_timers(status, outage) if status.phase == Phase.PROGRESSING else status


def _in_progress(inp: Inputs, run: _Run) -> None:
    """A rollout under way: gate, analysis, backend steps, then flags and the frontend, Succeeded."""
    for phase in (backend.gate, gate.analyse, backend.reconcile):
        if run.fold(phase(inp, run.status)):
            return
    warm = settle.keep_warm(inp, run.status)
    if run.fold(warm):
        return  # traffic is not back on the stable task set yet
    for phase in (flags.reconcile, frontend.reconcile):
        if run.fold(phase(inp, run.status)):
            return
    run.fold(settle.finish(inp, run.status, warm.warm))


def _settled(inp: Inputs, run: _Run) -> None:
    """Succeeded: analysis and the keep-warm window go on (a failure rolls back); drift is checked."""
    for phase in (gate.analyse, settle.drift):
        if run.fold(phase(inp, run.status)):
            return
    warm = settle.keep_warm(inp, run.status)
    run.fold(warm)
    run.fold(settle.finish(inp, run.status, warm.warm))


def observed_traffic(inp: Inputs, status: ReleaseStatus) -> ReleaseStatus:
    """The status with what serves as this pass observed it (`planner.serving`): the versions and
    weights AWS reported, and the canary's weight as the share its version receives."""
    if inp.spec.backend.several:
        return _observed_tier(inp, status)
    shown = serving.backend_serving(inp.spec, status, inp.obs)
    canary = status.backend.canary_version
    weight = next((s.weight for s in shown if s.version == canary), 0) if canary else 0
    backend = status.backend.model_copy(update={"serving": shown, "traffic": serving.summary(shown),
                                                "canary_weight": weight})
    return status if backend == status.backend else status.model_copy(update={"backend": backend})


def _observed_tier(inp: Inputs, status: ReleaseStatus) -> ReleaseStatus:
    """`observed_traffic` for a tier of several services: each service's canary weight as observed
    (a worker's: its share of tasks), the tier's the least of those with traffic, and what serves as
    the first service shows it (the head of the tier, the one the fields above speak for)."""
    ms = group.members(inp.spec, status, inp.obs, inp.ctx.namespace, inp.ctx.name)
    canary = status.backend.canary_version
    for m in ms:
        status = group.with_service(status, inp.spec, m.name, canary_weight=m.weight())
    head = ms[0]
    shown = serving.backend_serving(head.spec, head.status, head.obs)
    weights = [m.weight() for m in ms if not m.worker] or [m.weight() for m in ms]
    backend = status.backend.model_copy(update={"serving": shown, "traffic": serving.summary(shown),
                                                "canary_weight": min(weights) if canary else 0})
    return status if backend == status.backend else status.model_copy(update={"backend": backend})


def _after_deletes(actions: list[Action]) -> tuple[Action, ...]:
    """The actions without any that name a task set deleted earlier in the same pass: two phases of
    one pass (leftovers first, keep-warm after) may both drain and delete the same task set, and
    ECS refuses to scale one that is gone, which would stop the rest of the pass."""
    out: list[Action] = []
    deleted: set[str] = set()
    for a in actions:
        if isinstance(a, (ScaleTaskSet, DeleteTaskSet)) and a.task_set_id in deleted:
            continue
        if isinstance(a, DeleteTaskSet):
            deleted.add(a.task_set_id)
        out.append(a)
    return tuple(out)


class _Run:
    """The phases' results folded in order: the one mutable thing of a pass, local to `decide`."""

    def __init__(self, spec: ReleaseSpec, given: ReleaseStatus, status: ReleaseStatus, now: datetime,
                 generation: int, inp: Inputs) -> None:
        self.spec, self.given, self.status, self.now, self.generation = spec, given, status, now, generation
        self.inp = inp
        self.outcome: Outcome | None = None
        self.actions: list[Action] = []
        self.events: list[Event] = []
        self.waits: list[float] = []
        self.drift: tuple[str, ...] = ()

    def fold(self, result: Result) -> bool:
        """Take one phase's result; True when it ends the pass. Ready and Progressing are derived
        here (with Reconciling and Stalled), from where the phase says the rollout stands."""
        self.status = result.status
        for stood in result.standings:
            self.status = self.status.model_copy(
                update={"conditions": standing.apply(self.status.conditions, stood, self.now)})
            self.outcome = stood.outcome or self.outcome
        self.actions += result.actions
        self.events += result.events
        self.waits += result.waits
        self.drift += result.drift
        return result.holds

    def decision(self) -> Decision:
        self.status = self.status.model_copy(
            update={"conditions": standing.stamp(self.status.conditions, self.generation)})
        self.status = observed_traffic(self.inp, self.status)
        requeue: float | None = min(self.waits) if self.waits else None
        if requeue is None and self.status.phase == Phase.PROGRESSING:
            requeue = POLL
        if requeue is not None and self.actions:
            requeue = min(requeue, AFTER_ACTIONS)
        outcome = self.outcome
        if outcome is None:
            moved = self.actions or self.events or self.status != self.given
            outcome = Outcome.PROGRESSED if moved else Outcome.UNCHANGED
        decision = Decision(
            actions=_after_deletes(self.actions), status=self.status, events=tuple(self.events), requeue_after=requeue,
            drift=self.drift, outcome=outcome,
        )
        return replace(decision, moments=tuple(moments(self.given, decision, self.spec)))
