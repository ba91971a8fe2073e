"""The step walker's shared rule: whether a pause step still holds a tier this pass.

Both tiers walk their steps the same way (backend: `phases.backend`, the CloudFront staging canary:
`phases.frontend`): a promote request skips the remaining steps unless the current one is an
indefinite pause (then it only ends that pause); a set step advances once AWS shows it; a pause
step advances when `pause_holds` says so.
"""

from __future__ import annotations

from controller.api.reasons import Reason
from controller.api.release import ConditionType, Phase, Verdict
from controller.planner import analysis as analysis_rules
from controller.planner.draft import Draft
from controller.planner.steps import PauseStep


def pause_holds(d: Draft, step: PauseStep, label: str, promote_requested: bool) -> bool:
    """Whether a pause step still holds the rollout this pass (backend and frontend alike).

    An indefinite pause holds until a promote request; a timed one until its duration has passed
    and, when the step is analysed, until the analysis has Passed.
    """
    if step.duration is None:
        if not promote_requested:
            d.update(phase=Phase.PAUSED)
            d.cond(ConditionType.PROGRESSING, "Unknown", Reason.WAITING_FOR_PROMOTE, f"{label}: run promote")
            d.cond(ConditionType.READY, "False", Reason.ROLLOUT_IN_PROGRESS, d.st.message)
            return True
        d.event(Reason.PROMOTE, f"{label}: promoted by request")
        return False
    assert d.st.step_started_at is not None
    remaining = (d.st.step_started_at + step.duration - d.now).total_seconds()
    if remaining > 0:
        d.cond(ConditionType.PROGRESSING, "True", Reason.PAUSING, f"{label}: {remaining:.0f}s left")
        d.cond(ConditionType.READY, "False", Reason.ROLLOUT_IN_PROGRESS, d.st.message)
        d.wait(remaining)
        return True
    verdict = d.st.analysis.verdict if d.st.analysis else None
    if step.analysed and verdict != Verdict.PASSED:
        why = d.st.analysis.message if d.st.analysis else "not measured yet"
        d.cond(
            ConditionType.PROGRESSING, "True", Reason.WAITING_FOR_ANALYSIS,
            f"{label}: the pause is over but the analysis is {verdict.value if verdict else 'pending'}: {why}",
        )
        d.cond(ConditionType.READY, "False", Reason.ROLLOUT_IN_PROGRESS, d.st.message)
        d.wait(analysis_rules.seconds_until_due(d.spec, d.st, d.now))
        return True
    return False
