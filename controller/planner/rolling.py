"""Rolling over task sets: the new task set grows and the old one shrinks in steps, traffic
proportional, with a health wait (and analysis, when metrics exist) after each step. Pure.

Worked example, default steps [25, 50, 75, 100] and interval 10s:

    step 0  new 25%  old 75%  weight 25     step 1  wait 10s
    step 2  new 50%  old 50%  weight 50     step 3  wait 10s
    ...     new 100% old 0%   weight 100    then promotion: new is primary, old deleted at once.
"""

from __future__ import annotations

from datetime import timedelta

from controller.api.release import ReleaseSpec, RollingStrategy, StrategyType
from controller.planner.steps import Plan, PauseStep, SetStep, Step, canary_scale, pause_label


def plan(spec: ReleaseSpec) -> Plan:
    """The plan for `spec`; the module docstring has the worked example."""
    rolling = spec.strategy.rolling or RollingStrategy()
    analysed = bool(spec.analysis.metrics)
    steps: list[Step] = []
    for percent in rolling.steps:
        steps.append(SetStep(canary_scale(percent), float(100 - percent), percent, f"SetWeight {percent}"))
        steps.append(PauseStep(rolling.interval, analysed, pause_label(rolling.interval)))
    return Plan(strategy=StrategyType.ROLLING, steps=tuple(steps), keep_warm=timedelta(0), analysed=analysed)
