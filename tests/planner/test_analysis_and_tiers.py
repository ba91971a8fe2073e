"""Planner tables: analysis verdicts driving the rollout, the keep-warm window, frontend gates, flags."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Sequence

import pytest

from controller.api.release import ConditionType, Measurement, MeasurementError, Phase, ReleaseStatus, Verdict
from controller.planner import analysis_due, decide
from controller.planner.actions import (
    DeleteTaskSet,
    PublishFlags,
    ScaleTaskSet,
    SetListenerWeights,
    SetOriginPath,
    SetPrimaryTaskSet,
)
from controller.planner.conditions import find
from controller.planner.world import Observation

from tests.planner.sim import BLUE, DIST, GREEN, Run, ctx, drive, image, make_spec, measurement, world

METRICS = {"interval": "10s", "failureLimit": 0, "minSamples": 2,
           "metrics": [{"name": "error-rate", "prometheus": {"address": "http://p:9090", "query": "q"}, "max": 0.05}]}
CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}},
                                                 {"setWeight": 50}, {"pause": {"duration": "30s"}}]}}


def errors_by_version(rates: dict[str, float | None], needs_traffic: bool = False) -> Any:
    """A measure function: the error rate of whichever version is under analysis (no data for a
    canary without traffic when `needs_traffic`, as a request-rate query would see it)."""
    def measure(now: datetime, obs: Observation, status: ReleaseStatus) -> Sequence[Measurement]:
        version = status.backend.canary_version or status.backend.stable_version or ""
        rate = rates.get(version, 0.0)
        canary_tg = GREEN if status.backend.stable_target_group_arn in (None, BLUE) else BLUE
        idle = status.backend.canary_version is not None and obs.listener is not None and not obs.listener.weight(canary_tg)
        if rate is None or (needs_traffic and idle):
            return [Measurement(metric="error-rate", verdict=Verdict.NO_DATA, message="no series", time=now)]
        return [measurement("error-rate", rate, now)]
    return measure


def analysed_upgrade(
    rates: dict[str, float | None], strategy: dict[str, Any] = CANARY, needs_traffic: bool = False,
    until: Any = None, **spec: Any
) -> Run:
    base = drive(make_spec("1.0.0", strategy, analysis=METRICS, **spec), world("1.0.0"))
    return drive(make_spec("2.0.0", strategy, analysis=METRICS, **spec), base.observation, base.status,
                 now=base.now, measure=errors_by_version(rates, needs_traffic), max_passes=400, until=until)


def cond(status: ReleaseStatus, type_: ConditionType) -> tuple[str, str, str] | None:
    c = find(status.conditions, type_)
    return (c.status, c.reason, c.message) if c else None


# --------------------------------------------------------------------------- analysis


@pytest.mark.parametrize("strategy", [CANARY, {"type": "Rolling"}, {"type": "BlueGreen"}], ids=["canary", "rolling", "bg"])
def test_healthy_version_is_promoted_with_analysis(strategy: dict[str, Any]) -> None:
    run = analysed_upgrade({"2.0.0": 0.01}, strategy)
    assert run.status.backend.stable_version == "2.0.0"
    assert run.status.phase == Phase.SUCCEEDED
    for p in run.passes:
        if p.decision.status.phase == Phase.PROGRESSING:
            assert p.decision.requeue_after is not None and p.decision.requeue_after <= 30


@pytest.mark.parametrize("strategy", [CANARY, {"type": "Rolling"}, {"type": "BlueGreen"}], ids=["canary", "rolling", "bg"])
def test_failing_analysis_rolls_back_and_does_not_retry(strategy: dict[str, Any]) -> None:
    run = analysed_upgrade({"2.0.0": 0.3}, strategy)
    st = run.status
    assert st.phase == Phase.ROLLED_BACK
    healthy = cond(st, ConditionType.HEALTHY)
    assert healthy is not None and healthy[:2] == ("False", "AnalysisFailed") and "error-rate 0.3" in healthy[2]
    assert st.history[-1].result == "RolledBack" and st.history[-1].backend_version == "2.0.0"
    assert [ts.image for ts in run.observation.service.task_sets] == [image("1.0.0")]  # type: ignore[union-attr]
    assert run.observation.listener.weights == {BLUE: 100, GREEN: 0}  # type: ignore[union-attr]
    assert "RolledBack" in run.events
    # The rollback pass: weights back in one listener change, before the canary is drained and deleted.
    rb = next(p for p in run.passes if p.decision.status.phase == Phase.ROLLED_BACK)
    kinds = [type(a).__name__ for a in rb.decision.actions if not isinstance(a, ScaleTaskSet) or a.scale_percent == 0]
    assert kinds.count("SetListenerWeights") <= 1
    assert kinds[-2:] == ["ScaleTaskSet", "DeleteTaskSet"]
    later = decide(run.spec, st, run.observation, ctx(run.now + timedelta(hours=1)))
    assert later.actions == () and later.status.phase == Phase.ROLLED_BACK
    assert not analysis_due(run.spec, st, run.now + timedelta(hours=1))


def test_canary_rollback_is_a_single_weight_change() -> None:
    run = analysed_upgrade({"2.0.0": 0.3}, needs_traffic=True)
    assert run.passes[0].decision.status.phase == Phase.PROGRESSING
    rb = next(p for p in run.passes if p.decision.status.phase == Phase.ROLLED_BACK)
    canary = next(a for a in rb.decision.actions if isinstance(a, DeleteTaskSet))
    assert rb.decision.actions == (
        SetListenerWeights(run.observation.listener.arn, {BLUE: 100, GREEN: 0}),  # type: ignore[union-attr]
        ScaleTaskSet("prod", "backend", canary_ext(rb), 0.0, task_set_id=canary.task_set_id),
        canary,
    )


def canary_ext(p: Any) -> str:
    from controller.planner.actions import external_id_for

    return external_id_for("production", "pratiko", image("2.0.0"))


def test_on_degradation_pause_holds_without_actions() -> None:
    run = analysed_upgrade({"2.0.0": 0.3}, rollback={"onDegradation": "Pause"})
    assert run.status.phase == Phase.PAUSED
    assert cond(run.status, ConditionType.PROGRESSING)[:2] == ("Unknown", "AnalysisFailed")  # type: ignore[index]
    assert run.passes[-1].decision.actions == () and run.passes[-1].decision.requeue_after is None
    assert run.status.backend.canary_version == "2.0.0"


def test_no_data_for_a_canary_that_serves_rolls_back_within_minutes() -> None:
    """A typo in the metric's query (an empty result) while 20% of traffic reaches the canary: the
    canary is not verified, so after noDataLimit (4) tolerated runs each further one is a failed
    measurement, and failureLimit 0 ends it: traffic back on stable, naming the metric."""
    base = drive(make_spec("1.0.0", CANARY, analysis=METRICS), world("1.0.0"))
    run = drive(make_spec("2.0.0", CANARY, analysis=METRICS), base.observation, base.status, now=base.now,
                measure=errors_by_version({"2.0.0": None}), until=lambda p: p.now > base.now + timedelta(minutes=5))
    assert run.status.phase == Phase.ROLLED_BACK, run.status.message
    assert run.observation.listener.weights == {BLUE: 100, GREEN: 0}  # type: ignore[union-attr]
    ended = next(p for p in run.passes if p.decision.status.phase == Phase.ROLLED_BACK)
    assert ended.now - base.now < timedelta(minutes=2)
    assert "error-rate: no data for 5 consecutive measurements while the canary receives traffic" in run.status.message
    assert cond(run.status, ConditionType.HEALTHY)[:2] == ("False", "AnalysisFailed")  # type: ignore[index]


def provider_down(now: datetime, obs: Observation, status: ReleaseStatus) -> Sequence[Measurement]:
    return [Measurement(metric="error-rate", verdict=Verdict.INCONCLUSIVE, error=MeasurementError.PROVIDER,
                        message="provider error: http://p:9090/api/v1/query: ConnectError", time=now)]


@pytest.mark.parametrize("on_degradation", ["Rollback", "Pause"])
def test_provider_down_holds_until_progress_deadline_then_ends(on_degradation: str) -> None:
    """Monitoring down says nothing about the canary: the rollout holds at 20% (never passes), a
    Warning Event says so once, and at progressDeadline from the last progress it ends: rolled back
    naming the metric that never answered, or paused for a person, as the spec asks."""
    extra = {"progressDeadline": "2m", "rollback": {"onDegradation": on_degradation}}
    base = drive(make_spec("1.0.0", CANARY, analysis=METRICS, **extra), world("1.0.0"))
    run = drive(make_spec("2.0.0", CANARY, analysis=METRICS, **extra), base.observation, base.status, now=base.now,
                measure=provider_down, until=lambda p: p.now > base.now + timedelta(minutes=6), max_passes=400)
    held = [p for p in run.passes if p.now - base.now < timedelta(minutes=2)]
    assert all(p.decision.status.phase in (Phase.PROGRESSING, Phase.PAUSED) for p in held)
    assert all(p.weights[GREEN] in (0, 20) for p in held)
    warnings = [e for p in run.passes for e in p.decision.events if e.reason == "AnalysisHeld"]
    assert len(warnings) == 1 and warnings[0].type == "Warning" and "error-rate" in warnings[0].message, warnings
    ended = next(p for p in run.passes if p.decision.status.phase in (Phase.ROLLED_BACK, Phase.PAUSED)
                 and p.now - base.now > timedelta(minutes=1))
    assert timedelta(minutes=2) < ended.now - base.now < timedelta(minutes=3)
    if on_degradation == "Rollback":
        assert run.status.phase == Phase.ROLLED_BACK
        assert run.observation.listener.weights == {BLUE: 100, GREEN: 0}  # type: ignore[union-attr]
        assert "analysis never answered" in run.status.message and "error-rate" in run.status.message
        assert cond(run.status, ConditionType.READY)[1] == "AnalysisUnanswered"  # type: ignore[index]
    else:
        assert run.status.phase == Phase.PAUSED
        assert cond(run.status, ConditionType.READY)[1] == "AnalysisUnanswered"  # type: ignore[index]
        assert run.observation.listener.weights[GREEN] == 20  # type: ignore[union-attr]
        said = [e for p in run.passes for e in p.decision.events if e.reason == "AnalysisUnanswered"]
        assert len(said) == 1 and said[0].type == "Warning" and "for a person" in said[0].message


def test_a_query_error_ends_the_rollout_at_once_naming_the_metric() -> None:
    def two_series(now: datetime, obs: Observation, status: ReleaseStatus) -> Sequence[Measurement]:
        return [Measurement(metric="error-rate", verdict=Verdict.INCONCLUSIVE, error=MeasurementError.QUERY, time=now,
                            message="query error (fix the metric's query in the spec): query returned 2 series, "
                                    "expected one (aggregate it, e.g. sum(...)): q")]
    base = drive(make_spec("1.0.0", CANARY, analysis=METRICS), world("1.0.0"))
    run = drive(make_spec("2.0.0", CANARY, analysis=METRICS), base.observation, base.status, now=base.now,
                measure=two_series, until=lambda p: p.now > base.now + timedelta(minutes=2))
    ended = next(p for p in run.passes if p.decision.status.phase == Phase.ROLLED_BACK)
    assert ended.now - base.now < timedelta(seconds=30)
    assert run.observation.listener.weights == {BLUE: 100, GREEN: 0}  # type: ignore[union-attr]
    healthy = cond(run.status, ConditionType.HEALTHY)
    assert healthy[:2] == ("False", "AnalysisInvalid") and "metric error-rate" in healthy[2]  # type: ignore[index]
    assert "aggregate it" in healthy[2]  # type: ignore[index]


def test_dry_run_metrics_are_shown_but_never_decide() -> None:
    metrics = {**METRICS, "metrics": [*METRICS["metrics"],  # type: ignore[misc]
                                      {"name": "latency", "http": {"url": "http://c/health"}, "min": 1, "dryRun": True}]}

    def measure(now: datetime, obs: Observation, status: ReleaseStatus) -> Sequence[Measurement]:
        return [measurement("error-rate", 0.01, now),
                Measurement(metric="latency", value=0.0, verdict=Verdict.FAILED, message="latency 0 < min 1", time=now)]
    base = drive(make_spec("1.0.0", CANARY, analysis=metrics), world("1.0.0"))
    run = drive(make_spec("2.0.0", CANARY, analysis=metrics), base.observation, base.status, now=base.now,
                measure=measure, until=lambda p: p.decision.status.phase == Phase.SUCCEEDED)
    assert run.status.phase == Phase.SUCCEEDED
    shown = {m.metric for p in run.passes if p.decision.status.analysis for m in p.decision.status.analysis.measurements}
    assert "latency" in shown


def test_degradation_in_the_rollback_window_switches_traffic_back() -> None:
    run = analysed_upgrade({"2.0.0": 0.01}, until=lambda p: p.decision.status.phase == Phase.SUCCEEDED)
    assert run.status.phase == Phase.SUCCEEDED and run.observation.listener.weights[GREEN] == 100  # type: ignore
    # Still inside rollback.window (10m): the old task set is warm.
    promoted = run.status.promoted_at
    assert promoted is not None
    stay = drive(run.spec, run.observation, run.status, now=promoted + timedelta(seconds=5),
                 measure=errors_by_version({"2.0.0": 0.01}), until=lambda p: p.now > promoted + timedelta(minutes=1))
    assert len(stay.observation.service.task_sets) == 2  # type: ignore[union-attr]
    assert cond(stay.status, ConditionType.PROGRESSING)[1] == "RollbackWindow"  # type: ignore[index]
    bad = drive(run.spec, stay.observation, stay.status, now=stay.now, measure=errors_by_version({"2.0.0": 0.4}))
    st = bad.status
    assert st.phase == Phase.ROLLED_BACK and st.backend.stable_version == "1.0.0"
    assert st.backend.stable_target_group_arn == BLUE
    assert bad.observation.listener.weights == {BLUE: 100, GREEN: 0}  # type: ignore[union-attr]
    (only,) = bad.observation.service.task_sets  # type: ignore[union-attr]
    assert only.image == image("1.0.0") and only.status == "PRIMARY"


def test_old_version_is_deleted_when_the_window_ends() -> None:
    run = analysed_upgrade({"2.0.0": 0.01}, rollback={"window": "2m"})
    (only,) = run.observation.service.task_sets  # type: ignore[union-attr]
    assert only.image == image("2.0.0")
    assert run.status.promoted_at is not None
    deleted = next(p for p in run.passes if any(isinstance(a, DeleteTaskSet) for a in p.decision.actions))
    assert deleted.now - run.status.promoted_at == timedelta(minutes=2)


# --------------------------------------------------------------------------- frontend and flags

FRONTEND = {"version": "2.1.0", "cloudfront": {"distributionId": DIST, "originId": "web"}}


def test_frontend_moves_after_the_backend_is_promoted() -> None:
    base = drive(make_spec("1.0.0", CANARY, frontend={**FRONTEND, "version": "2.0.0"}),
                 world("1.0.0", frontend_path="/releases/2.0.0"))
    assert base.status.phase == Phase.SUCCEEDED and base.passes[-1].decision.actions == ()
    spec = make_spec("2.0.0", CANARY, frontend={**FRONTEND, "requiresBackend": ">=2.0.0,<3.0.0"})
    run = drive(spec, base.observation, base.status, now=base.now)
    passes = [i for i, p in enumerate(run.passes) for a in p.decision.actions if isinstance(a, SetOriginPath)]
    primary = [i for i, p in enumerate(run.passes) for a in p.decision.actions if isinstance(a, SetPrimaryTaskSet)]
    assert passes and primary and passes[0] > primary[0]
    (origin,) = [a for p in run.passes for a in p.decision.actions if isinstance(a, SetOriginPath)]
    assert origin.origin_path == "/releases/2.1.0" and "/index.html" in origin.invalidate_paths
    assert run.observation.frontend.origin_path == "/releases/2.1.0"  # type: ignore[union-attr]
    assert run.status.frontend.stable_version == "2.1.0" and run.status.phase == Phase.SUCCEEDED
    assert cond(run.status, ConditionType.COMPATIBLE)[:2] == ("True", "Compatible")  # type: ignore[index]
    assert run.status.history[-1].frontend_version == "2.1.0"
    assert "FrontendSwitched" in run.events


def test_incompatible_frontend_is_held() -> None:
    base = drive(make_spec("1.0.0", {"type": "Fast"}, frontend={**FRONTEND, "version": "2.0.0"}),
                 world("1.0.0", frontend_path="/releases/2.0.0"))
    spec = make_spec("2.0.0", {"type": "Fast"}, frontend={**FRONTEND, "requiresBackend": ">=3.0.0"})
    run = drive(spec, base.observation, base.status, now=base.now, max_passes=20,
                until=lambda p: p.decision.status.backend.stable_version == "2.0.0" and not p.decision.actions)
    d = decide(spec, run.status, run.observation, ctx(run.now + timedelta(seconds=30)))
    assert not any(isinstance(a, SetOriginPath) for a in run.actions + list(d.actions))
    c = cond(d.status, ConditionType.COMPATIBLE)
    assert c is not None and c[:2] == ("False", "IncompatibleBackend") and "2.0.0" in c[2] and ">=3.0.0" in c[2]
    assert d.status.phase == Phase.PROGRESSING and d.requeue_after is not None
    assert run.observation.frontend.origin_path == "/releases/2.0.0"  # type: ignore[union-attr]


def test_backend_change_that_breaks_the_live_frontend_is_refused() -> None:
    fe = {**FRONTEND, "requiresBackend": ">=1.0.0,<2.0.0"}
    base = drive(make_spec("1.0.0", CANARY, frontend=fe), world("1.0.0", frontend_path="/releases/2.1.0"))
    assert base.status.phase == Phase.SUCCEEDED
    d = decide(make_spec("2.0.0", CANARY, frontend=fe), base.status, base.observation, ctx(base.now))
    assert d.actions == ()
    c = cond(d.status, ConditionType.COMPATIBLE)
    assert c is not None and c[:2] == ("False", "IncompatibleBackend") and "2.0.0" in c[2] and "2.1.0" in c[2]
    assert d.status.backend.stable_version == "1.0.0" and d.status.revision == base.status.revision


def test_flags_only_change_publishes_flags_and_nothing_else() -> None:
    base = drive(make_spec("1.0.0", CANARY, featureFlags={"new_chat": True}), world("1.0.0"))
    assert [type(a) for a in base.actions] == [PublishFlags]
    spec = make_spec("1.0.0", CANARY, featureFlags={"new_chat": False, "ai": {"enabled": True, "rolloutPercent": 20}})
    run = drive(spec, base.observation, base.status, now=base.now)
    (publish,) = run.actions
    assert isinstance(publish, PublishFlags)
    assert publish.parameter_name == "/release-controller/production/pratiko/flags"
    assert dict(publish.flags) == {"ai": {"enabled": True, "rolloutPercent": 20}, "new_chat": False}
    assert run.status.phase == Phase.SUCCEEDED and run.status.revision == 2
    assert run.status.history[-1].flags_hash == run.status.flags_hash != base.status.flags_hash
    assert "FlagsPublished" in run.events


def test_blue_green_preview_without_traffic_ends_at_the_progress_deadline() -> None:
    """A request-rate metric can never see data for a blue-green preview (it gets no traffic): that
    is nobody's fault, so it is not counted as failures, but it is not a hold for ever either:
    at progressDeadline the rollout goes back, naming the metric, and traffic never left blue."""
    run = analysed_upgrade({"2.0.0": 0.01}, {"type": "BlueGreen", "blueGreen": {"previewDuration": "30s"}},
                           needs_traffic=True, progressDeadline="3m")
    assert run.status.phase == Phase.ROLLED_BACK, run.status.message
    assert all(p.weights[BLUE] == 100 for p in run.passes)
    ended = next(p for p in run.passes if p.decision.status.phase == Phase.ROLLED_BACK)
    assert ended.now - run.passes[0].now < timedelta(minutes=4)
    assert "analysis never answered" in run.status.message and "error-rate" in run.status.message
    assert run.status.analysis is not None and run.status.analysis.failures == 0  # held, never failed
    assert "AnalysisHeld" in run.events


def test_a_change_while_paused_shows_the_version_that_still_serves() -> None:
    """Canary 2.0.0 at 20%, paused, then 3.0.0 applied (still paused): nothing moves in AWS, and the
    status says so: 2.0.0 keeps its 20% in `serving`, the new canary 3.0.0 is at 0%."""
    steps = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}
    base = drive(make_spec("1.0.0", steps), world("1.0.0"))
    at = drive(make_spec("2.0.0", steps), base.observation, base.status, now=base.now,
               until=lambda p: p.decision.status.phase == Phase.PAUSED)
    assert [(s.version, s.weight) for s in at.status.backend.serving] == [("1.0.0", 80), ("2.0.0", 20)]
    assert at.status.backend.traffic == "1.0.0=80%,2.0.0=20%" and at.status.backend.canary_weight == 20
    paused = drive(make_spec("2.0.0", steps, paused=True), at.observation, at.status, now=at.now)
    changed = drive(make_spec("3.0.0", steps, paused=True), paused.observation, paused.status, now=paused.now)
    assert changed.observation.listener.weights[GREEN] == 20  # type: ignore[union-attr]
    st = changed.status
    assert st.backend.canary_version == "3.0.0" and st.backend.canary_weight == 0
    assert [(s.version, s.weight) for s in st.backend.serving] == [("1.0.0", 80), ("2.0.0", 20)]


def test_conditions_of_an_earlier_spec_do_not_outlive_it() -> None:
    """Healthy AnalysisPassed of an analysed rollout is not carried (stamped with the new generation)
    onto a later spec that has no analysis at all."""
    run = analysed_upgrade({"2.0.0": 0.01}, until=lambda p: p.decision.status.phase == Phase.SUCCEEDED)
    assert cond(run.status, ConditionType.HEALTHY)[:2] == ("True", "AnalysisPassed")  # type: ignore[index]
    plain = drive(make_spec("3.0.0", CANARY), run.observation, run.status, now=run.now)
    assert plain.status.phase == Phase.SUCCEEDED
    assert cond(plain.status, ConditionType.HEALTHY) is None
    assert all(cond(p.decision.status, ConditionType.HEALTHY) is None for p in plain.passes)


def test_pause_undo_then_delete_ends_with_all_traffic_on_stable() -> None:
    """Canary 2.0.0 at 20%, paused, undone to 1.0.0 (the status names no canary any more, the old
    one keeps its 20% while paused), then deleted: the deletion's abort puts all traffic on 1.0.0
    and removes the canary, spec.paused notwithstanding, and the Release may go."""
    from controller.planner import Requests

    steps = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}
    base = drive(make_spec("1.0.0", steps), world("1.0.0"))
    at = drive(make_spec("2.0.0", steps), base.observation, base.status, now=base.now,
               until=lambda p: p.decision.status.phase == Phase.PAUSED)
    paused = drive(make_spec("2.0.0", steps, paused=True), at.observation, at.status, now=at.now)
    undone = drive(make_spec("1.0.0", steps, paused=True), paused.observation, paused.status, now=paused.now)
    assert undone.observation.listener.weights[GREEN] == 20  # type: ignore[union-attr]
    gone = drive(make_spec("1.0.0", steps, paused=True), undone.observation, undone.status, now=undone.now,
                 requests=Requests(abort="deleted:uid-1"))
    assert gone.status.phase == Phase.ROLLED_BACK and gone.passes[-1].decision.actions == ()
    assert gone.observation.listener.weights == {BLUE: 100, GREEN: 0}  # type: ignore[union-attr]
    assert [ts.image for ts in gone.observation.service.task_sets] == [image("1.0.0")]  # type: ignore[union-attr]
