"""When the rollout needs measurements, and what a verdict does to it. Pure.

`analysis_due` is what the reconciler asks before a pass: measuring is the one slow, networked
part of analysis, so it happens only when the interval has elapsed and the rollout is in a state
that is analysed (a canary, rolling or blue-green rollout before promotion, a frontend canary,
and the keep-warm window after a promotion or a flags change, when the previous version is
still there to go back to).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.api.release import Phase, ReleaseSpec, ReleaseStatus, StrategyType, Verdict
from controller.planner.strategy import plan_for, resolve

ANALYSED = frozenset({StrategyType.CANARY, StrategyType.ROLLING, StrategyType.BLUE_GREEN})


def in_window(spec: ReleaseSpec, status: ReleaseStatus, now: datetime) -> bool:
    """Whether a promotion of this rollout is recent enough that the previous version is warm."""
    if status.promoted_at is None or status.strategy is None or status.backend.canary_image is not None:
        return False
    keep = plan_for(status.strategy, spec).keep_warm
    return keep > timedelta(0) and now < status.promoted_at + keep


def analysed_state(spec: ReleaseSpec, status: ReleaseStatus, now: datetime) -> bool:
    if not spec.analysis.metrics:
        return False
    # A frontend canary's timed pauses are analysed whatever the backend's strategy (see
    # `tiers.frontend_canary_plan`): without it a Fast backend's frontend canary waits forever.
    if status.strategy not in ANALYSED and status.frontend.current_step is None:
        return False
    if status.analysis is not None and status.analysis.verdict == Verdict.FAILED:
        return False  # the verdict is final: rolled back, or paused for a person to decide
    if status.phase in (Phase.PROGRESSING, Phase.PAUSED):
        if spec.paused:
            return False
        in_rollout = status.backend.canary_image is not None or status.frontend.current_step is not None
        return in_rollout or in_window(spec, status, now)
    return status.phase == Phase.SUCCEEDED and in_window(spec, status, now)


def analysis_due(spec: ReleaseSpec, status: ReleaseStatus, now: datetime) -> bool:
    """Whether the reconciler should measure this pass.

    >>> from datetime import timezone
    >>> from controller.api.release import Analysis, Metric
    >>> t = datetime(2025, 1, 1, tzinfo=timezone.utc)
    >>> spec = ReleaseSpec.model_validate({"environment": "staging", "backend": {"version": "1.0.0",
    ...     "image": "b:1.0.0", "ecs": {"cluster": "c", "service": "s", "containerName": "api"}},
    ...     "strategy": {"type": "Rolling"}, "analysis": {"metrics": [{"name": "m", "max": 1}]}})
    >>> status = ReleaseStatus(phase="Progressing", strategy="Rolling", backend={"canaryImage": "b:2"})
    >>> analysis_due(spec, status, t)
    True
    >>> from controller.api.release import AnalysisStatus
    >>> analysis_due(spec, status.model_copy(update={"analysis": AnalysisStatus(last_run_at=t)}), t + timedelta(seconds=3))
    False
    """
    if not analysed_state(spec, status, now):
        return False
    last = status.analysis.last_run_at if status.analysis is not None else None
    return last is None or now - last >= spec.analysis.interval


def seconds_until_due(spec: ReleaseSpec, status: ReleaseStatus, now: datetime) -> float:
    """Seconds until the next measurement is due (at least one, so a pass is never hot-looped)."""
    last = status.analysis.last_run_at if status.analysis is not None else None
    if last is None:
        return max(1.0, min(spec.analysis.interval.total_seconds(), 2.0))
    return max(1.0, (last + spec.analysis.interval - now).total_seconds())


def pause_warnings(spec: ReleaseSpec) -> list[str]:
    """What `validate` warns about analysis and pauses: an analysed pause shorter than the time
    `minSamples` runs take (`minSamples x interval`) always waits past its duration for the
    analysis, so the pause's duration says less than it seems.

    >>> spec = ReleaseSpec.model_validate({"environment": "staging", "backend": {"version": "1.0.0",
    ...     "image": "b:1.0.0", "ecs": {"cluster": "c", "service": "s", "containerName": "api"},
    ...     "traffic": {"listenerArn": "l", "stableTargetGroupArn": "b", "canaryTargetGroupArn": "g"}},
    ...     "strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}}]}},
    ...     "analysis": {"interval": "30s", "minSamples": 3, "metrics": [{"name": "m", "max": 1,
    ...         "prometheus": {"address": "http://p", "query": "q"}}]}})
    >>> pause_warnings(spec)
    ['step 2/2 (Pause 30s) is shorter than analysis.minSamples x analysis.interval (3 x 30s = 1m30s): it lasts at least 1m30s, waiting for the analysis']
    """
    from controller.api.types import format_duration
    from controller.planner.steps import PreviewStep, SetStep

    if not spec.analysis.metrics:
        return []
    needed = spec.analysis.interval * spec.analysis.min_samples
    out: list[str] = []
    steps = plan_for(resolve(spec), spec).steps
    for i, step in enumerate(steps):
        if isinstance(step, SetStep) or isinstance(step, PreviewStep) and not step.hold:
            continue  # only what holds the rollout for a time waits for the analysis
        if step.analysed and step.duration is not None and step.duration < needed:
            out.append(f"step {i + 1}/{len(steps)} ({step.label}) is shorter than analysis.minSamples x "
                       f"analysis.interval ({spec.analysis.min_samples} x {format_duration(spec.analysis.interval)} = "
                       f"{format_duration(needed)}): it lasts at least {format_duration(needed)}, waiting for the analysis")
    return out
