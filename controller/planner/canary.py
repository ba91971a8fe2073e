"""Canary: `strategy.canary.steps` as written, then promotion; the old stable task set stays at
full scale for `rollback.window` after promotion. Pure.

Worked example, steps [setWeight 10, pause 30s, setWeight 50, pause {}]:

    step 0  canary task set at 10%, weights stable 90 / canary 10
    step 1  hold 30s (advance on a Passed verdict when metrics exist)
    step 2  canary at 50%, weights 50 / 50
    step 3  hold until `release-controller promote`
    then    canary 100%, weights 0 / 100, canary primary; old stable deleted after the window.

A `{preview: {duration: 2m}}` step first (before any weight): the canary task set at 100% beside
the stable one, weights stay 100 / 0, and requests with the header `aws-cf-cd-release-preview: 2.0.0`
reach the canary: two plan steps, "Preview route" (done once the canary is steady and the route is
observed) and "Preview 2m" (analysed, timed from there); then the route goes, and `setWeight 10`
moves 10% of production traffic and shrinks the canary to 10%.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from controller.api.reasons import Reason
from controller.api.release import CanaryStep, Pause, PreviewHeader, ReleaseSpec, StrategyType
from controller.api.types import format_duration
from controller.planner.steps import Plan, PauseStep, PreviewStep, SetStep, Step, canary_scale, pause_label

DEFAULT_STEPS = (
    CanaryStep(set_weight=10),
    CanaryStep(pause=Pause(duration=timedelta(seconds=30))),
    CanaryStep(set_weight=50),
    CanaryStep(pause=Pause(duration=timedelta(seconds=30))),
)


def plan(spec: ReleaseSpec) -> Plan:
    """The plan for `spec`; the module docstring has the worked example."""
    written = spec.strategy.canary.steps if spec.strategy.canary and spec.strategy.canary.steps else DEFAULT_STEPS
    analysed = bool(spec.analysis.metrics)
    steps: list[Step] = []
    for s in written:
        if s.set_weight is not None:
            steps.append(SetStep(canary_scale(s.set_weight), 100.0, s.set_weight, f"SetWeight {s.set_weight}"))
        elif s.preview is not None:
            steps += preview_step(s.preview.duration, s.preview.header, spec.backend.version, analysed)
        else:
            duration = s.pause.duration if s.pause is not None else None
            steps.append(PauseStep(duration, analysed and duration is not None, pause_label(duration)))
    return Plan(strategy=StrategyType.CANARY, steps=tuple(steps), keep_warm=spec.rollback.window, analysed=analysed)


def preview_step(duration: timedelta, header: PreviewHeader, version: str, analysed: bool) -> tuple[PreviewStep, PreviewStep]:
    """A preview of `version` for `duration`, reached by `header` (its value defaults to the version):
    the step that opens it, then the one that holds it.

    >>> [s.label for s in preview_step(timedelta(minutes=2), PreviewHeader(), "2.0.0", True)]
    ['Preview route aws-cf-cd-release-preview: 2.0.0', 'Preview 2m']
    """
    value = header.value_for(version)
    opening = PreviewStep(duration, analysed, header.name, value, False, f"Preview route {header.name}: {value}")
    return opening, replace(opening, hold=True, label=f"Preview {format_duration(duration)}", kind=Reason.PAUSE)
