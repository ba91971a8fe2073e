"""prePromotion webhook hooks: promotion waits for a 2xx, asks again with back-off, and a hook that
keeps failing until its timeout rolls the canary back (or pauses, with onFailure: Pause); a hook
that passed is not called again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from controller.api.release import ConditionType, Phase
from controller.planner.conditions import find

from tests.planner.sim import GREEN, drive, make_spec, settled
from tests.planner.test_strategies import CANARY_TIMED


def hooked(timeout: str = "2m", **item: Any) -> Any:
    return make_spec("2.0.0", CANARY_TIMED, hooks={"prePromotion": [
        {"name": "approve", "webhook": {"url": "http://approvals.local/api", "timeout": timeout}, **item}]})


def answers(script: list[int], hook: str = "approve") -> tuple[Any, list[datetime]]:
    calls: list[datetime] = []

    def answer(point: str, name: str, now: datetime) -> int:
        assert (point, name) == ("prePromotion", hook)
        calls.append(now)
        return script[min(len(calls) - 1, len(script) - 1)]

    return answer, calls


def test_promotion_waits_for_the_hook_and_asks_again_with_back_off() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    answer, calls = answers([503, 503, 503, 200])
    run = drive(hooked(), base.observation, base.status, now=base.now, hooks=answer)
    assert run.status.phase == Phase.SUCCEEDED and run.status.backend.stable_version == "2.0.0"
    assert len(calls) == 4  # passed once: never called again
    gaps = [(b - a).total_seconds() for a, b in zip(calls, calls[1:])]
    assert gaps == sorted(gaps) and gaps[0] >= 1.0 and gaps[-1] > gaps[0]
    # No full traffic before the hook passed.
    promoted_at = run.status.promoted_at
    assert promoted_at is not None and promoted_at >= calls[-1]
    assert all(p.weights.get(GREEN, 0) < 100 for p in run.passes if p.now < calls[-1])
    assert "HookPassed" in run.events


def test_a_hook_that_keeps_failing_rolls_back_at_its_timeout() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    answer, calls = answers([503])
    run = drive(hooked("20s"), base.observation, base.status, now=base.now, hooks=answer)
    assert run.status.phase == Phase.ROLLED_BACK and run.status.backend.stable_version == "1.0.0"
    ready = find(run.status.conditions, ConditionType.READY)
    assert ready is not None and ready.reason == "HookFailed" and "HTTP 503" in ready.message
    assert max(p.weights.get(GREEN, 0) for p in run.passes) < 100  # never full traffic
    started = run.status.hooks[0].started_at if run.status.hooks else None
    assert started is not None and calls[-1] - started <= timedelta(seconds=20)


def test_on_failure_pause_pauses_instead() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    answer, _ = answers([500])
    run = drive(hooked("10s", onFailure="Pause"), base.observation, base.status, now=base.now, hooks=answer)
    assert run.status.phase == Phase.PAUSED
    assert run.status.backend.canary_version == "2.0.0"  # traffic kept where it was: a person decides


def test_after_an_irreversible_hook_a_failing_analysis_pauses_with_rollback_unsafe() -> None:
    from controller.api.release import ReleaseStatus
    from controller.planner.world import Observation
    from tests.planner.sim import measurement

    from tests.planner.test_analysis_and_tiers import METRICS as metrics

    def measure(now: datetime, obs: Observation, status: ReleaseStatus) -> Any:
        bad = status.promoted_at is not None  # healthy as a canary, degraded once it has all traffic
        return [measurement("error-rate", 0.3 if bad else 0.01, now)]

    for irreversible, phase, reason in ((True, Phase.PAUSED, "RollbackUnsafe"), (False, Phase.ROLLED_BACK, None)):
        spec = make_spec("2.0.0", CANARY_TIMED, analysis=metrics, hooks={"prePromotion": [
            {"name": "migrate", "webhook": {"url": "http://migrations.local/run"}, "irreversible": irreversible}]})
        base = drive(make_spec("1.0.0", CANARY_TIMED, analysis=metrics), settled("1.0.0").observation)
        answer, _ = answers([200], "migrate")
        run = drive(spec, base.observation, base.status, now=base.now, hooks=answer, measure=measure, max_passes=400)
        assert run.status.phase == phase, run.status.message
        if reason is not None:
            ready = find(run.status.conditions, ConditionType.READY)
            assert ready is not None and ready.reason == reason and "migrate" in ready.message
            assert run.observation.listener is not None and run.observation.listener.weights[GREEN] == 100
            assert run.status.backend.stable_version == "2.0.0"
