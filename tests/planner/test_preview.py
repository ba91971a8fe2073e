"""Planner tables: the preview step (`{preview: {duration, header}}`) through the world simulator.

Before any production weight the new version runs at full scale and a listener rule sends requests
carrying the header to it; the rule exists only while the rollout is at the preview, is removed
before any production weight moves, and on every way back (a failed analysis, abort).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Sequence

from controller.api.release import Measurement, Phase, ReleaseStatus, Verdict
from controller.planner import Requests, decide
from controller.planner.actions import EnsurePreviewRoute, RemovePreviewRoute, SetListenerWeights
from controller.planner.world import Observation, PreviewRule

from tests.planner.sim import (
    GREEN, LISTENER, NAME, NS, Knobs, Pass, Run, ctx, drive, image, make_spec, measurement, settled,
)

OWNER = f"{NS}/{NAME}"
HEADER = "aws-cf-cd-release-preview"
PREVIEW = {"type": "Canary", "canary": {"steps": [
    {"preview": {"duration": "1m"}}, {"setWeight": 20}, {"pause": {"duration": "30s"}}, {"setWeight": 50}]}}
METRICS = {"interval": "10s", "failureLimit": 0, "minSamples": 2,
           "metrics": [{"name": "error-rate", "prometheus": {"address": "http://p:9090", "query": "q"}, "max": 0.05}]}


def rule(p: Pass | Observation) -> tuple[PreviewRule, ...]:
    obs = p.observation if isinstance(p, Pass) else p
    assert obs.listener is not None
    return obs.listener.preview_of(OWNER)


def removed_at(run: Run) -> datetime:
    """When the pass that removed the route ran (the first without it after the first with it)."""
    first = next(i for i, p in enumerate(run.passes) if rule(p))
    return next(p.now for p in run.passes[first:] if not rule(p))


def rates(by_version: dict[str, float]) -> Any:
    """The error rate of the version under analysis; no data about a canary that nothing reaches yet
    (neither weight nor a preview route), as a request-based query would see it."""
    def measure(now: datetime, obs: Observation, status: ReleaseStatus) -> Sequence[Measurement]:
        version = status.backend.canary_version or status.backend.stable_version or ""
        reached = obs.listener is not None and (obs.listener.weight(GREEN) > 0 or bool(rule(obs)))
        if status.backend.canary_version is not None and not reached:
            return [Measurement(metric="error-rate", verdict=Verdict.NO_DATA, message="no series", time=now)]
        return [measurement("error-rate", by_version.get(version, 0.0), now)]
    return measure


def upgrade(strategy: dict[str, Any] = PREVIEW, **kw: Any) -> Run:
    base = settled("1.0.0", strategy)
    extra = {"analysis": METRICS} if "measure" in kw else {}
    return drive(make_spec("2.0.0", strategy, **extra), base.observation, base.status, now=base.now, **kw)


def test_the_preview_routes_the_header_to_the_new_version_with_no_production_weight_then_the_steps_go_on() -> None:
    run = upgrade()
    during = [p for p in run.passes if rule(p)]
    assert during, "the preview route was never created"
    for p in during:
        (r,) = rule(p)
        # Header requests reach the new version's target group, production traffic does not.
        assert (r.header_name, r.header_values, r.target_group_arn) == (HEADER, ("2.0.0",), GREEN)
        assert p.weights.get(GREEN, 0) == 0
        canary = next(ts for ts in p.observation.service.task_sets if ts.image == image("2.0.0"))  # type: ignore[union-attr]
        assert canary.scale_percent == 100.0
    # The preview lasts its duration, counted once the route is there.
    assert removed_at(run) - during[0].now >= timedelta(minutes=1)
    # The route goes before any production weight moves: in the pass that moves it, removal comes first.
    first_weight = next(i for i, p in enumerate(run.passes) if p.weights.get(GREEN, 0) > 0)
    assert not rule(run.passes[first_weight])
    actions = list(run.passes[first_weight].decision.actions)
    kinds = [type(a) for a in actions]
    if RemovePreviewRoute in kinds:
        assert kinds.index(RemovePreviewRoute) < kinds.index(SetListenerWeights)
    # Then the canary steps and promotion, as without a preview.
    assert run.weight_trace(GREEN) == [0, 20, 50, 100]
    assert run.status.phase == Phase.SUCCEEDED and not rule(run.observation)
    assert [e for e in run.events if e in ("Preview", "Pause", "SetWeight", "Promoted")] == [
        "Preview", "Pause", "SetWeight", "Pause", "SetWeight", "Promoted"]
    # One rule asked for, once removed: no churn while the preview holds.
    assert sum(isinstance(a, RemovePreviewRoute) for a in run.actions) == 1
    assert sum(isinstance(a, EnsurePreviewRoute) for a in run.actions) == 1


def test_the_header_value_is_the_users_when_given() -> None:
    strategy = {"type": "Canary", "canary": {"steps": [
        {"preview": {"duration": "30s", "header": {"name": "X-Preview", "value": "qa-team"}}}, {"setWeight": 50}]}}
    run = upgrade(strategy)
    (r,) = next(rule(p) for p in run.passes if rule(p))
    assert (r.header_name, r.header_values) == ("X-Preview", ("qa-team",))


def test_an_analysed_preview_waits_for_a_passed_verdict_and_a_failed_one_rolls_back_removing_the_route() -> None:
    ok = upgrade(measure=rates({"2.0.0": 0.0}), max_passes=400)
    assert ok.status.phase == Phase.SUCCEEDED
    bad = upgrade(measure=rates({"2.0.0": 0.5}), max_passes=400)
    assert bad.status.phase == Phase.ROLLED_BACK
    assert any(rule(p) for p in bad.passes), "the preview never started"
    assert not rule(bad.observation)
    assert all(p.weights.get(GREEN, 0) == 0 for p in bad.passes), "production traffic reached the failed version"
    assert bad.status.backend.stable_version == "1.0.0"


def test_abort_during_the_preview_removes_the_route_and_goes_back() -> None:
    run = upgrade(until=lambda p: bool(rule(p)))
    assert rule(run.observation)
    back = drive(run.spec, run.observation, run.status, now=run.now, requests=Requests(abort="a1"))
    assert back.status.phase == Phase.ROLLED_BACK
    assert not rule(back.observation)
    assert isinstance(back.passes[0].decision.actions[0], RemovePreviewRoute)
    svc = back.observation.service
    assert svc is not None and [ts.image for ts in svc.task_sets] == [image("1.0.0")]


def test_a_restarted_controller_finds_the_route_again_and_a_lost_removal_is_asked_again() -> None:
    run = upgrade(until=lambda p: bool(rule(p)))
    # A pass from the same status and world (a restart: the status says where, the world has the rule).
    again = decide(run.spec, run.status, run.observation, ctx(run.now + timedelta(seconds=5)))
    assert not [a for a in again.actions if isinstance(a, (EnsurePreviewRoute, RemovePreviewRoute))]
    # The removal at the end of the preview is lost once: the next pass asks for it again.
    lost: list[bool] = []

    def lose_once(a: object) -> bool:
        if isinstance(a, RemovePreviewRoute) and not lost:
            lost.append(True)
            return True
        return False
    rest = drive(run.spec, run.observation, run.status, now=run.now, knobs=Knobs(lose=lose_once))
    assert lost and rest.status.phase.value == "Succeeded" and not rule(rest.observation)
    assert sum(isinstance(a, RemovePreviewRoute) for a in rest.actions) == 2


def test_spec_paused_during_the_preview_keeps_the_route_and_holds_the_timer() -> None:
    run = upgrade(until=lambda p: bool(rule(p)))
    paused = drive(run.spec.model_copy(update={"paused": True}), run.observation, run.status, now=run.now,
                   max_passes=5, exact=True)
    assert paused.status.phase == Phase.PAUSED and rule(paused.observation)
    assert not any(isinstance(a, RemovePreviewRoute) for a in paused.actions)


def test_a_rolled_back_release_with_a_leftover_route_removes_it() -> None:
    # A route left by an interrupted rollout (the removal never landed, then the Release was rolled back).
    run = upgrade(until=lambda p: bool(rule(p)))
    left = run.observation
    back = drive(run.spec, left, run.status, now=run.now, requests=Requests(abort="a1"),
                 knobs=Knobs(lose=lambda a: isinstance(a, RemovePreviewRoute)), max_passes=20, exact=True)
    assert rule(back.observation)  # the removal never landed
    later = decide(back.spec, back.status, back.observation, ctx(back.now + timedelta(minutes=1)))
    assert RemovePreviewRoute(LISTENER, OWNER) in later.actions


def test_blue_green_with_a_preview_header_routes_it_during_the_preview() -> None:
    strategy = {"type": "BlueGreen", "blueGreen": {"previewDuration": "20s", "scaleDownDelay": "1m",
                                                    "previewHeader": {"value": "green"}}}
    run = upgrade(strategy)
    during = [p for p in run.passes if rule(p)]
    assert during and all(p.weights.get(GREEN, 0) == 0 for p in during)
    assert rule(during[0])[0].header_values == ("green",)
    assert removed_at(run) - during[0].now >= timedelta(seconds=20)
    assert run.weight_trace(GREEN) == [0, 100]
    assert run.status.phase == Phase.SUCCEEDED and not rule(run.observation)


def test_no_preview_step_no_route() -> None:
    run = upgrade({"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "10s"}}]}})
    assert not any(isinstance(a, (EnsurePreviewRoute, RemovePreviewRoute)) for a in run.actions)


# --------------------------------------------------------------------------- preview hooks (smoke tests)

SMOKE = {"preview": [{"name": "smoke", "webhook": {"url": "http://smoke.local/run", "timeout": "20s"}}]}


def hooked_upgrade(answer: Any, **kw: Any) -> Run:
    base = settled("1.0.0", PREVIEW)
    return drive(make_spec("2.0.0", PREVIEW, hooks=SMOKE), base.observation, base.status, now=base.now,
                 hooks=answer, **kw)


def test_a_preview_hook_runs_once_the_route_is_there_and_the_preview_lasts_its_duration_after_it() -> None:
    calls: list[tuple[str, datetime]] = []

    def answer(point: str, name: str, now: datetime) -> int:
        calls.append((point, now))
        return 503 if len(calls) < 3 else 200  # the smoke test passes at its third attempt
    run = hooked_upgrade(answer)
    assert run.status.phase == Phase.SUCCEEDED and not rule(run.observation)
    assert [p for p, _ in calls] == ["preview"] * 3
    routed_at = next(p.now for p in run.passes if rule(p))
    assert calls[0][1] > routed_at  # called only once the route was observed
    passed_at = calls[-1][1]
    assert removed_at(run) - passed_at >= timedelta(minutes=1)  # the preview's duration from the smoke test's pass
    assert all(p.weights.get(GREEN, 0) == 0 for p in run.passes if p.now <= passed_at)


def test_a_failing_preview_hook_rolls_back_and_removes_the_route_before_any_production_weight() -> None:
    run = hooked_upgrade(lambda point, name, now: 500)
    assert run.status.phase == Phase.ROLLED_BACK
    assert any(rule(p) for p in run.passes) and not rule(run.observation)
    assert all(p.weights.get(GREEN, 0) == 0 for p in run.passes)
    assert "HookFailed" in run.events
