"""Canary: `strategy.canary.steps` as written, then promotion; the old stable task set stays at
full scale for `rollback.window` after promotion. Pure.

Worked example, steps [setWeight 10, pause 30s, setWeight 50, pause {}]:

    step 0  canary task set at 10%, weights stable 90 / canary 10
    step 1  hold 30s (advance on a Passed verdict when metrics exist)
    step 2  canary at 50%, weights 50 / 50
    step 3  hold until `release-controller promote`
    then    canary 100%, weights 0 / 100, canary primary; old stable deleted after the window.
"""

from __future__ import annotations

from datetime import timedelta

from controller.api.release import CanaryStep, Pause, ReleaseSpec, StrategyType
from controller.planner.steps import Plan, PauseStep, SetStep, Step, canary_scale, pause_label

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
        else:
            duration = s.pause.duration if s.pause is not None else None
            steps.append(PauseStep(duration, analysed and duration is not None, pause_label(duration)))
    return Plan(strategy=StrategyType.CANARY, steps=tuple(steps), keep_warm=spec.rollback.window, analysed=analysed)
