"""Phase: the analysis gate, met by every pass that is in a rollout or inside the keep-warm window.

This pass's measurements (taken by the reconciler when `planner.analysis.analysis_due` said so)
are folded into `status.analysis`; Passed and Inconclusive only set Healthy and the next look. A
Failed verdict, unless a promote request overrides it, pauses the rollout (`onDegradation: Pause`)
or rolls back: the canary before promotion, the frontend canary, or the promoted revision.
"""

from __future__ import annotations

from controller.analysis.verdict import evaluate
from controller.api.reasons import Reason
from controller.api.release import ConditionType, DegradationAction, Phase, ReleaseStatus, Verdict
from controller.planner import analysis as analysis_rules
from controller.planner import standing
from controller.planner.draft import Draft, Inputs, Result
from controller.planner.phases import rollback


def analyse(inp: Inputs, status: ReleaseStatus) -> Result:
    """Fold this pass's measurements in; act on a Failed verdict. `holds`: the pass stops here."""
    d = Draft(inp, status)
    spec, now = inp.spec, inp.now
    failed_before = d.st.analysis is not None and d.st.analysis.verdict == Verdict.FAILED
    if not failed_before and not analysis_rules.analysed_state(spec, d.st, now):
        return d.close()
    if inp.ctx.measurements and not failed_before:
        d.update(analysis=evaluate(d.st.analysis, inp.ctx.measurements, spec.analysis, now))
    result = d.st.analysis
    if result is None or result.verdict is None:
        d.wait(analysis_rules.seconds_until_due(spec, d.st, now))
        return d.close()
    if result.verdict == Verdict.PASSED:
        d.cond(ConditionType.HEALTHY, "True", Reason.ANALYSIS_PASSED, result.message)
    elif result.verdict != Verdict.FAILED:
        d.cond(ConditionType.HEALTHY, "Unknown", Reason(f"Analysis{result.verdict.value}"), result.message)
    if result.verdict != Verdict.FAILED:
        d.wait(analysis_rules.seconds_until_due(spec, d.st, now))
        return d.close()
    d.cond(ConditionType.HEALTHY, "False", Reason.ANALYSIS_FAILED, result.message)
    return d.close(holds=failed(d, result.message))


def failed(d: Draft, message: str) -> bool:
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
            d.event(Reason.ANALYSIS_FAILED, f"degraded after promotion: {message}", warning=True)
        d.update(message=f"degraded: {message}")
        return False
    if pause:
        d.update(phase=Phase.PAUSED)
        d.stand(standing.paused(Reason.ANALYSIS_FAILED, f"paused: {message}", message))
        if d.st.message != f"paused: {message}":
            d.event(Reason.ANALYSIS_FAILED, f"paused: {message}", warning=True)
        d.update(message=f"paused: {message}")
        return True
    if in_backend:
        rollback.roll_back(d, Reason.ANALYSIS_FAILED, "RolledBack", message, Phase.ROLLED_BACK)
    elif in_frontend:
        rollback.roll_back_frontend(d, Reason.ANALYSIS_FAILED, "RolledBack", message)
    else:
        rollback.roll_back_promoted(d, message)
    return True
