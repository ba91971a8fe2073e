"""Fast: no steps. The new task set starts at full scale, takes all traffic once it runs, becomes
primary, and the old task set is removed at once (no warm window). Pure; plans only."""

from __future__ import annotations

from datetime import timedelta

from controller.api.release import ReleaseSpec, StrategyType
from controller.planner.steps import Plan


def plan(spec: ReleaseSpec) -> Plan:
    """The plan for `spec`; the module docstring has the worked example."""
    return Plan(strategy=StrategyType.FAST, steps=(), keep_warm=timedelta(0), analysed=False)
