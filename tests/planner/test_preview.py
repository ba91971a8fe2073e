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
from controller.planner.actions import (
    ClearStagingHeader,
    EnsurePreviewRoute,
    RemovePreviewRoute,
    SetListenerWeights,
    SetStagingHeader,
    SetStagingWeight,
)
from controller.planner.world import Observation, PreviewRule, StagingDistribution

from tests.planner.sim import (
    DIST, GREEN, LISTENER, NAME, NS, Knobs, Pass, Run, ctx, drive, image, make_spec, measurement, settled, world,
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


# --------------------------------------------------------------------------- the frontend: one header through both tiers

FRONTEND_CANARY = {"steps": [{"setWeight": 5}, {"pause": {"duration": "1m"}}, {"setWeight": 15}]}


def frontend(version: str) -> dict[str, Any]:
    return {"version": version, "cloudfront": {"distributionId": DIST, "originId": "web"}, "canary": FRONTEND_CANARY}


def staging(p: Pass | Observation) -> StagingDistribution | None:
    obs = p.observation if isinstance(p, Pass) else p
    return obs.frontend.staging if obs.frontend is not None else None


def header_routed(p: Pass | Observation) -> bool:
    s = staging(p)
    return s is not None and s.header_routed


def staged_weight(p: Pass | Observation) -> int:
    s = staging(p)
    return s.weight_percent if s is not None and s.policy_enabled else 0


def both_tiers(strategy: dict[str, Any] = PREVIEW, frontend_to: str = "2.0.0", **kw: Any) -> Run:
    base = drive(make_spec("1.0.0", strategy, frontend=frontend("1.0.0")), world("1.0.0", frontend_path="/releases/1.0.0"))
    extra = {"analysis": METRICS} if "measure" in kw else {}
    return drive(make_spec("2.0.0", strategy, frontend=frontend(frontend_to), **extra), base.observation, base.status,
                 now=base.now, **kw)


def test_the_preview_header_reaches_the_new_frontend_on_staging_only_while_the_backend_is_previewed() -> None:
    run = both_tiers()
    during = [p for p in run.passes if header_routed(p)]
    assert during, "staging never routed the preview header"
    for p in during:
        s = staging(p)
        assert s is not None and (s.header_name, s.header_value, s.origin_path) == (HEADER, "2.0.0", "/releases/2.0.0")
        assert rule(p), "the new frontend is previewed without the new backend"
        assert p.weights.get(GREEN, 0) == 0 and staged_weight(p) == 0  # nobody without the header
        assert p.observation.frontend is not None and p.observation.frontend.origin_path == "/releases/1.0.0"
    # The frontend comes after the backend: its header route is asked for once the backend's is seen.
    asked = next(i for i, p in enumerate(run.passes) if any(isinstance(a, SetStagingHeader) for a in p.decision.actions))
    assert not any(isinstance(a, EnsurePreviewRoute) for a in run.passes[asked].decision.actions)
    assert asked > 0 and rule(run.passes[asked - 1])
    # The header routing ends with the preview: cleared no later than the pass that moves production weight.
    first_weight = next(i for i, p in enumerate(run.passes) if p.weights.get(GREEN, 0) > 0)
    assert not header_routed(run.passes[first_weight])
    kinds = [type(a) for a in run.passes[first_weight].decision.actions]
    if ClearStagingHeader in kinds:
        assert kinds.index(ClearStagingHeader) < kinds.index(SetListenerWeights)
    # ...and it goes before the backend's rule, the reverse of how they came: a previewer never meets
    # the new frontend in front of the old backend, on the way out either.
    cleared = next(p for p in run.passes if any(isinstance(a, ClearStagingHeader) for a in p.decision.actions))
    kinds = [type(a) for a in cleared.decision.actions]
    assert RemovePreviewRoute in kinds and kinds.index(ClearStagingHeader) < kinds.index(RemovePreviewRoute), kinds
    assert sum(isinstance(a, SetStagingHeader) for a in run.actions) == 1
    assert sum(isinstance(a, ClearStagingHeader) for a in run.actions) == 1
    # The frontend takes production weight only after the backend is promoted, as before.
    promoted = next(i for i, p in enumerate(run.passes) if p.decision.status.promoted_at is not None)
    assert all(staged_weight(p) == 0 for p in run.passes[:promoted])
    assert [a.weight_percent for a in run.actions if isinstance(a, SetStagingWeight)] == [5, 15]
    assert run.status.phase == Phase.SUCCEEDED and run.status.frontend.stable_version == "2.0.0"
    assert run.observation.frontend is not None and run.observation.frontend.origin_path == "/releases/2.0.0"
    assert not header_routed(run.observation) and not rule(run.observation)


def test_abort_or_a_failed_analysis_during_the_preview_takes_the_header_off_staging() -> None:
    at = both_tiers(until=header_routed)
    assert header_routed(at.observation)
    back = drive(at.spec, at.observation, at.status, now=at.now, requests=Requests(abort="a1"))
    assert back.status.phase == Phase.ROLLED_BACK
    assert ClearStagingHeader(DIST) in back.passes[0].decision.actions
    assert not header_routed(back.observation) and staged_weight(back.observation) == 0
    assert back.observation.frontend is not None and back.observation.frontend.origin_path == "/releases/1.0.0"

    bad = both_tiers(measure=rates({"2.0.0": 0.5}), max_passes=400)
    assert bad.status.phase == Phase.ROLLED_BACK
    assert any(header_routed(p) for p in bad.passes) and not header_routed(bad.observation)
    assert all(staged_weight(p) == 0 for p in bad.passes), "viewers reached the frontend of a failed backend"


def test_a_lost_clear_is_asked_again_and_a_superseding_version_restages_with_its_own_value() -> None:
    lost: list[bool] = []

    def lose_once(a: object) -> bool:
        if isinstance(a, ClearStagingHeader) and not lost:
            lost.append(True)
            return True
        return False
    run = both_tiers(knobs=Knobs(lose=lose_once))
    assert lost and run.status.phase == Phase.SUCCEEDED and not header_routed(run.observation)
    assert sum(isinstance(a, ClearStagingHeader) for a in run.actions) == 2

    at = both_tiers(until=header_routed)
    newer = make_spec("2.1.0", PREVIEW, frontend=frontend("2.0.0"))
    again = drive(newer, at.observation, at.status, now=at.now, until=lambda p: header_routed(p) and
                  staging(p).header_value == "2.1.0")  # type: ignore[union-attr]
    assert ClearStagingHeader(DIST) in again.passes[0].decision.actions  # the old value goes first
    s = staging(again.observation)
    assert s is not None and (s.header_value, s.origin_path) == ("2.1.0", "/releases/2.0.0")


def test_no_staging_header_without_a_new_frontend_or_without_a_frontend_canary() -> None:
    same = both_tiers(frontend_to="1.0.0")
    assert same.status.phase == Phase.SUCCEEDED and any(rule(p) for p in same.passes)
    assert not any(isinstance(a, (SetStagingHeader, ClearStagingHeader)) for a in same.actions)
    base = drive(make_spec("1.0.0", PREVIEW, frontend={"version": "1.0.0", "cloudfront": {"distributionId": DIST,
                                                                                           "originId": "web"}}),
                 world("1.0.0", frontend_path="/releases/1.0.0"))
    atomic = drive(make_spec("2.0.0", PREVIEW, frontend={"version": "2.0.0", "cloudfront": {"distributionId": DIST,
                                                                                             "originId": "web"}}),
                   base.observation, base.status, now=base.now)
    assert atomic.status.phase == Phase.SUCCEEDED and any(rule(p) for p in atomic.passes)
    assert not any(isinstance(a, (SetStagingHeader, ClearStagingHeader)) for a in atomic.actions)


def test_a_new_frontend_that_does_not_accept_the_previewed_backend_is_not_staged() -> None:
    base = drive(make_spec("1.0.0", PREVIEW, frontend=frontend("1.0.0")), world("1.0.0", frontend_path="/releases/1.0.0"))
    fe = {**frontend("2.0.0"), "requiresBackend": ">=3.0.0"}
    run = drive(make_spec("2.0.0", PREVIEW, frontend=fe), base.observation, base.status, now=base.now,
                until=lambda p: p.decision.status.backend.stable_version == "2.0.0")
    assert any(rule(p) for p in run.passes)  # the backend is previewed (and promoted; the frontend is held)
    assert not any(isinstance(a, SetStagingHeader) for a in run.actions)  # the frontend is not
    ok = drive(make_spec("2.0.0", PREVIEW, frontend={**frontend("2.0.0"), "requiresBackend": ">=2.0.0"}),
               base.observation, base.status, now=base.now)
    assert any(header_routed(p) for p in ok.passes) and ok.status.phase == Phase.SUCCEEDED


def test_blue_green_with_a_preview_header_stages_the_frontend_too() -> None:
    strategy = {"type": "BlueGreen", "blueGreen": {"previewDuration": "20s", "scaleDownDelay": "1m", "previewHeader": {}}}
    run = both_tiers(strategy)
    during = [p for p in run.passes if header_routed(p)]
    assert during and all(rule(p) and p.weights.get(GREEN, 0) == 0 for p in during)
    assert run.status.phase == Phase.SUCCEEDED and not header_routed(run.observation)
