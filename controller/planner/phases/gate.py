"""Phase: the analysis gate, met by every pass that is in a rollout or inside the keep-warm window.

This pass's measurements (taken by the reconciler when `planner.analysis.analysis_due` said so)
are folded into `status.analysis`; Passed and Inconclusive only set Healthy and the next look. A
Failed verdict (a failed metric, a canary that kept not answering, or a query error: the spec is
wrong), unless a promote request overrides it, pauses the rollout (`onDegradation: Pause`) or rolls
back: the canary before promotion, the frontend canary, or the promoted revision.

What monitoring did is kept apart from what the canary did: a provider that is down, no data
while the canary gets no traffic (a blue-green preview) or too little traffic hold the rollout,
never pass it. A hold is said once in a Warning Event (AnalysisHeld) when it has lasted
`consecutiveErrorLimit` runs, and it is bounded: at `progressDeadline` from the last progress
(a judged run, a step begun) the rollout ends, rolled back with reason AnalysisUnanswered naming
the metrics that never answered, or, with `onDegradation: Pause`, paused for a person, which
Ready, Progressing and a Warning Event say.
"""

from __future__ import annotations

from datetime import datetime

from controller.analysis.verdict import evaluate
from controller.api.reasons import Reason
from controller.api.release import (
    AnalysisStatus,
    ConditionType,
    DegradationAction,
    Measurement,
    MeasurementError,
    Phase,
    ReleaseStatus,
    Verdict,
)
from controller.api.types import format_duration
from controller.planner import analysis as analysis_rules
from controller.planner import standing
from controller.planner.conditions import find
from controller.planner.draft import Draft, Inputs, Result
from controller.planner.fleet import STEADY, Fleet
from controller.planner.phases import rollback
from controller.planner.steps import PauseStep
from controller.planner.tiers import staging_weight


def analyse(inp: Inputs, status: ReleaseStatus) -> Result:
    """Fold this pass's measurements in; act on a Failed verdict. `holds`: the pass stops here."""
    d = Draft(inp, status)
    spec, now = inp.spec, inp.now
    failed_before = d.st.analysis is not None and d.st.analysis.verdict == Verdict.FAILED
    if not failed_before and not analysis_rules.analysed_state(spec, d.st, now):
        return d.close()
    if inp.ctx.measurements and not failed_before:
        before = d.st.analysis
        d.update(analysis=evaluate(before, inp.ctx.measurements, spec.analysis, now, serving=serving(d),
                                   running=running(d)))
        hold_started(d, before)
    result = d.st.analysis
    if result is None or result.verdict is None:
        d.wait(analysis_rules.seconds_until_due(spec, d.st, now))
        return d.close()
    if result.verdict == Verdict.PASSED:
        d.cond(ConditionType.HEALTHY, "True", Reason.ANALYSIS_PASSED, result.message)
    elif result.verdict != Verdict.FAILED:
        d.cond(ConditionType.HEALTHY, "Unknown", Reason(f"Analysis{result.verdict.value}"), result.message)
    if result.verdict != Verdict.FAILED:
        if held_too_long(d, result):
            return d.close(holds=unanswered(d, result))
        d.wait(analysis_rules.seconds_until_due(spec, d.st, now))
        return d.close()
    reason = Reason.ANALYSIS_INVALID if invalid(result) else Reason.ANALYSIS_FAILED
    d.cond(ConditionType.HEALTHY, "False", reason, result.message)
    return d.close(holds=failed(d, result.message, reason))


def in_rollout(status: ReleaseStatus) -> bool:
    return status.backend.canary_image is not None or status.frontend.current_step is not None


def serving(d: Draft) -> bool:
    """Whether the version analysed receives traffic, as AWS reports it: no data about a canary
    that serves is the canary's fault; about one that does not (a blue-green preview), nobody's."""
    if d.st.backend.canary_image is not None and d.inp.native:
        # ECS's own deployment: the new revision serves once ECS sends it production or test
        # traffic; before that (scaling up, held at the first gate) no data is nobody's fault.
        deployment = d.obs.service.native if d.obs.service is not None else None
        return (deployment is not None and deployment.target_image == d.spec.backend.image
                and (deployment.production_weight > 0 or deployment.test_weight > 0))
    if d.st.backend.canary_image is not None and not d.ecs_controller:
        # A tier of several services: the new version serves once any of them sends it traffic.
        return any(_serves(m.fleet) for m in d.members)
    if d.st.frontend.current_step is not None:
        return staging_weight(d.obs, None) > 0
    return True  # promoted (the keep-warm window), or an ECS rolling deployment: it serves


def running(d: Draft) -> bool:
    """Whether the version analysed runs (its task set steady), so a probe of it can be answered."""
    if d.st.backend.canary_image is not None and not d.ecs_controller:
        return any(m.fleet.canary is not None and m.fleet.canary.scale_percent > 0 and m.fleet.canary.stability == STEADY
                   for m in d.members)
    return True


def _serves(f: Fleet) -> bool:
    if f.listener is None or f.canary_tg is None or f.canary_tg == f.stable_tg:
        return f.canary is not None and f.canary.scale_percent > 0
    return f.canary_weight > 0


def invalid(result: AnalysisStatus) -> bool:
    """Whether the last run failed on a query error (the spec's fault)."""
    return any(m.error == MeasurementError.QUERY for m in last_run(result))


def last_run(result: AnalysisStatus) -> list[Measurement]:
    return [m for m in result.measurements if m.time == result.last_run_at]


def silent(d: Draft, result: AnalysisStatus) -> list[str]:
    """The deciding metrics the last run could not judge, each with what it got."""
    dry = {m.name for m in d.spec.analysis.metrics if m.dry_run}
    return [f"{m.metric} ({m.message or m.verdict.value})" for m in last_run(result)
            if m.metric not in dry and m.verdict not in (Verdict.PASSED, Verdict.FAILED)]


def hold_started(d: Draft, before: AnalysisStatus | None) -> None:
    """A Warning Event when the analysis has been without a judgement for consecutiveErrorLimit runs."""
    after = d.st.analysis
    limit = d.spec.analysis.consecutive_error_limit
    if after is None or after.verdict in (Verdict.FAILED, Verdict.PASSED) or not in_rollout(d.st):
        return
    if (before.unjudged if before else 0) >= limit or after.unjudged < limit:
        return
    since = after.held_since or d.now
    ends = "paused for a person" if d.spec.rollback.on_degradation == DegradationAction.PAUSE else "rolled back"
    names = "; ".join(silent(d, after)) or after.message
    d.event(Reason.ANALYSIS_HELD,
            f"analysis held: no answer it can judge for {format_duration(d.now - since)} "
            f"({after.unjudged} runs): {names}; {ends} at progressDeadline "
            f"({format_duration(d.spec.progress_deadline)}) from the last progress unless it answers",
            warning=True)


def last_progress(d: Draft, result: AnalysisStatus) -> datetime | None:
    times = [t for t in (result.last_sample_at, result.started_at, d.st.step_since) if t is not None]
    return max(times) if times else None


def waiting_for_person(d: Draft) -> bool:
    """At an indefinite pause step (`pause: {}`): a person decides, whatever the analysis says."""
    if d.st.backend.canary_image is None:
        return False
    steps = d.plan.steps
    index = d.st.current_step
    step = steps[index] if index < len(steps) else None
    return isinstance(step, PauseStep) and step.duration is None


def held_too_long(d: Draft, result: AnalysisStatus) -> bool:
    if result.held_since is None or not in_rollout(d.st) or waiting_for_person(d):
        return False
    last = last_progress(d, result)
    return last is not None and d.now - last > d.spec.progress_deadline


def unanswered(d: Draft, result: AnalysisStatus) -> bool:
    """The hold passed progressDeadline: roll back naming what never answered, or pause for a person
    (`onDegradation: Pause`). True: the pass stops here."""
    if d.inp.promote and d.st.backend.canary_image is not None:
        # A person promotes past an analysis that cannot answer: their call, with fresh analysis.
        d.update(analysis=None)
        d.event(Reason.ANALYSIS_OVERRIDDEN, f"promoted although the analysis did not answer: {result.message}",
                warning=True)
        return False
    names = "; ".join(silent(d, result)) or result.message
    message = (f"analysis never answered within progressDeadline {format_duration(d.spec.progress_deadline)} "
               f"of the last progress: {names}")
    d.cond(ConditionType.HEALTHY, "Unknown", Reason.ANALYSIS_UNANSWERED, message)
    if d.spec.rollback.on_degradation == DegradationAction.PAUSE:
        ready = find(d.st.conditions, ConditionType.READY)
        if ready is None or ready.reason != Reason.ANALYSIS_UNANSWERED or d.st.phase != Phase.PAUSED:
            d.event(Reason.ANALYSIS_UNANSWERED, f"paused for a person (onDegradation: Pause): {message}; "
                    "promote to go on, abort to go back", warning=True)
        d.update(phase=Phase.PAUSED, message=f"paused: {message}")
        d.stand(standing.paused(Reason.ANALYSIS_UNANSWERED, f"held for a person: {message}", message))
        return True
    if d.st.backend.canary_image is not None:
        rollback.roll_back(d, Reason.ANALYSIS_UNANSWERED, "RolledBack", message, Phase.ROLLED_BACK)
    else:
        rollback.roll_back_frontend(d, Reason.ANALYSIS_UNANSWERED, "RolledBack", message)
    return True


def failed(d: Draft, message: str, reason: Reason = Reason.ANALYSIS_FAILED) -> bool:
    """A Failed verdict: override, report, pause or roll back. True: the pass stops here."""
    if d.inp.promote and d.st.backend.canary_image is not None:
        # A person looked at the failure and promotes anyway: their call, with fresh analysis.
        d.update(analysis=None)
        d.event(Reason.ANALYSIS_OVERRIDDEN, f"promoted despite: {message}", warning=True)
        return False
    in_backend = d.st.backend.canary_image is not None
    in_frontend = d.st.frontend.current_step is not None
    pause = d.spec.rollback.on_degradation == DegradationAction.PAUSE
    if pause and not (in_backend or in_frontend):
        # Promoted already: nothing to hold. Say it, keep serving, let a person decide.
        if d.st.message != f"degraded: {message}":
            d.event(reason, f"degraded after promotion: {message}", warning=True)
        d.update(message=f"degraded: {message}")
        return False
    if pause:
        d.update(phase=Phase.PAUSED)
        d.stand(standing.paused(reason, f"paused: {message}", message))
        if d.st.message != f"paused: {message}":
            d.event(reason, f"paused: {message}", warning=True)
        d.update(message=f"paused: {message}")
        return True
    if in_backend:
        rollback.roll_back(d, reason, "RolledBack", message, Phase.ROLLED_BACK)
    elif in_frontend:
        rollback.roll_back_frontend(d, reason, "RolledBack", message)
    else:
        rollback.roll_back_promoted(d, message)
    return True
