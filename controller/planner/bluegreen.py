"""Blue-green: green at full scale with no traffic for `previewDuration` (analysed when metrics
exist), then one atomic weight switch; blue stays warm for `scaleDownDelay`. Pure.

Worked example, previewDuration 60s, scaleDownDelay 5m:

    step 0  green task set at 100%, weights blue 100 / green 0
    step 1  preview 60s
    then    weights 0 / 100 in one listener change, green primary; blue deleted 5m later.

With `previewHeader`, steps 0 and 1 are preview steps (`canary.preview_step`): the same state, and
requests carrying the header reach green during the preview.
"""

from __future__ import annotations

from controller.api.reasons import Reason
from controller.api.release import BlueGreenStrategy, ReleaseSpec, StrategyType
from controller.planner import canary
from controller.planner.steps import Plan, PauseStep, SetStep, Step, pause_label


def plan(spec: ReleaseSpec) -> Plan:
    """The plan for `spec`; the module docstring has the worked example."""
    bg = spec.strategy.blue_green or BlueGreenStrategy()
    analysed = bool(spec.analysis.metrics)
    steps: tuple[Step, ...] = (
        SetStep(100.0, 100.0, 0, "Preview", kind=Reason.PREVIEW),
        PauseStep(bg.preview_duration, analysed, pause_label(bg.preview_duration)),
    )
    if bg.preview_header is not None:
        # The same state, and a route for requests with the header: the preview has traffic.
        steps = canary.preview_step(bg.preview_duration, bg.preview_header, spec.backend.version, analysed)
    return Plan(strategy=StrategyType.BLUE_GREEN, steps=steps, keep_warm=bg.scale_down_delay, analysed=analysed)
