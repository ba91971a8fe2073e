"""The step walker both tiers use: setWeight, pause (timed, analysed, or until promote), preview (the
backend's: opened like a setWeight, held like a timed pause), promote-skip.

A tier (`phases.backend.BackendSteps`: task sets and ALB weights; `phases.frontend.FrontendSteps`:
the CloudFront staging distribution) says where its step state lives in the status and how one
step's desired state lands in AWS; `walk` does the rest, the same for both:
  - a promote request ends the current pause (timed or not, its analysis wait included) and goes
    to the next step; `promote --full` skips every remaining step and their analysis;
  - each step first needs the state it holds (a set step its own, a pause the last set step's) to
    be observed in AWS; what has not landed is asked for and waited on;
  - a pause step advances when `pause_holds` says so; each advance restarts the tier's step timer.
Later gates (hooks, approvals) are one more step kind here, met by both tiers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from controller.api.reasons import Reason
from controller.api.release import Phase, Verdict
from controller.planner import analysis as analysis_rules
from controller.planner import standing
from controller.planner.draft import Draft
from controller.planner.steps import PauseStep, PreviewStep, SetStep, Step


class TierSteps(ABC):
    """One tier's steps and its step state in the status, as the walker reads and writes them."""

    name: str  # how a step is labelled: "step", "frontend step"
    steps: tuple[Step, ...]

    @abstractmethod
    def index(self, d: Draft) -> int: ...

    @abstractmethod
    def started_at(self, d: Draft) -> datetime | None:
        """When the tier's current step began (its pause timer)."""

    @abstractmethod
    def advance(self, d: Draft, index: int, skipped: bool) -> None:
        """Record `index` as the tier's current step (`skipped`: by a promote request)."""

    @abstractmethod
    def landed(self, d: Draft, step: Step, held: SetStep | None, label: str) -> bool:
        """Whether AWS shows the state `step` needs (`held`: the set step it holds). If not: ask
        for it and wait (`d.actions`, `d.wait`), return False."""

    def more(self, d: Draft) -> bool:
        """Whether there is still anything to walk (a tier may be done before its last step)."""
        return True

    def entered(self, d: Draft, index: int) -> None:
        """Step `index` begins (the step after one that just finished; `index == len(steps)`: all done)."""


def walk(d: Draft, tier: TierSteps, promote: bool, full: bool = False) -> bool:
    """Walk `tier`'s steps as far as the observation allows. True once every step is done."""
    steps = tier.steps
    n = len(steps)
    index = tier.index(d)
    advance_pause = False
    if promote and full and index < n:
        d.event(Reason.PROMOTE_FULL, f"promote --full: skipping {tier.name}s {index + 1}..{n} and their analysis")
        index = n
        tier.advance(d, n, skipped=True)
    elif promote and index < n:
        if holds_a_while(steps[index]):
            advance_pause = True
        else:
            # Not at a pause (a weight still landing): the current step is skipped, as Argo Rollouts'
            # promote does; the next one holds its state all the same (`holding`).
            d.event(Reason.PROMOTE, f"promote: skipping {tier.name} {index + 1}/{n} ({steps[index].label})")
            index += 1
            tier.advance(d, index, skipped=True)
            tier.entered(d, index)
    while index < n and tier.more(d):
        step = steps[index]
        label = f"{tier.name} {index + 1}/{n} {step.label}"
        if not tier.landed(d, step, step if isinstance(step, SetStep) else holding(steps, index), label):
            return False
        if isinstance(step, PauseStep) or isinstance(step, PreviewStep) and step.hold:
            if pause_holds(d, step, label, advance_pause, tier.started_at(d)):
                return False
            advance_pause = False
        index += 1
        tier.advance(d, index, skipped=False)
        tier.entered(d, index)
    return True


def holds_a_while(step: Step) -> bool:
    """Whether a step holds the rollout for a time (a pause, a preview's hold): promote ends it."""
    return isinstance(step, PauseStep) or isinstance(step, PreviewStep) and step.hold


def holding(steps: tuple[Step, ...], index: int) -> SetStep | None:
    """The state a step at `index` must hold: the last SetStep before it, None when none."""
    return next((s for s in reversed(steps[:index]) if isinstance(s, SetStep)), None)


def pause_holds(d: Draft, step: PauseStep | PreviewStep, label: str, promote_requested: bool, started_at: datetime | None) -> bool:
    """Whether a pause step still holds the rollout this pass (backend and frontend alike).

    An indefinite pause holds until a promote request; a timed one until its duration has passed
    and, when the step is analysed, until the analysis has Passed, or until a promote request ends it.
    """
    if promote_requested:
        d.event(Reason.PROMOTE, f"{label}: ended by promote; going to the next step")
        return False
    if step.duration is None:
        d.update(phase=Phase.PAUSED)
        d.stand(standing.in_progress(Reason.WAITING_FOR_PROMOTE, f"{label}: run promote", d.st.message, "Unknown"))
        return True
    assert started_at is not None
    remaining = (started_at + step.duration - d.now).total_seconds()
    if remaining > 0:
        d.stand(standing.in_progress(Reason.PAUSING, f"{label}: {remaining:.0f}s left", d.st.message))
        d.wait(remaining)
        return True
    verdict = d.st.analysis.verdict if d.st.analysis else None
    if step.analysed and verdict != Verdict.PASSED:
        why = d.st.analysis.message if d.st.analysis else "not measured yet"
        pending = f"{label}: the pause is over but the analysis is {verdict.value if verdict else 'pending'}: {why}"
        d.stand(standing.in_progress(Reason.WAITING_FOR_ANALYSIS, pending, d.st.message))
        d.wait(analysis_rules.seconds_until_due(d.spec, d.st, d.now))
        return True
    return False
