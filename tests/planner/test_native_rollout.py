"""The native mode in the planner: ECS runs the Canary or BlueGreen, the planner answers its pause hooks
after the step's pause and analysis, rolls back through StopServiceDeployment, and lets the frontend
follow only once ECS reports the deployment SUCCESSFUL. Driven on the one fake world (sim.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Sequence

from controller.api.release import ConditionType, Measurement, Phase, ReleaseStatus, Verdict
from controller.planner import Requests, decide
from controller.planner.actions import AnswerNativeHook, SetOriginPath, StartNativeDeployment, StopNativeDeployment
from controller.planner.tiers import frontend_step
from controller.planner.world import NativeDeployment, Observation, RevisionShare
from tests.planner.sim import Knobs, ctx, drive, make_spec, measurement, world

ANALYSIS = {"interval": "10s",
            "metrics": [{"name": "error-rate", "prometheus": {"address": "http://p:9090", "query": "q"}, "max": 0.05}]}
CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 25}, {"pause": {"duration": "1m"}}, {"setWeight": 50},
                                                 {"pause": {"duration": "1m"}}, {"setWeight": 75},
                                                 {"pause": {"duration": "1m"}}]}}
FRONTEND = {"version": "2.0.0", "cloudfront": {"distributionId": "E2ABCDEF", "originId": "web"}}


def healthy(now: datetime, obs: Observation, status: ReleaseStatus) -> Sequence[Measurement]:
    return [measurement("error-rate", 0.01, now)]


def failing(now: datetime, obs: Observation, status: ReleaseStatus) -> Sequence[Measurement]:
    native = obs.service.native if obs.service else None
    bad = native is not None and native.production_weight >= 50  # errors once half the traffic is on it
    return [measurement("error-rate", 0.2 if bad else 0.01, now)]


def native_world(**kw: Any) -> Observation:
    return world("1.0.0", controller="ECS", native_routing=True, **kw)


def start(strategy: dict[str, Any] = CANARY, **over: Any) -> tuple[Any, Observation]:
    base = drive(make_spec("1.0.0", strategy, analysis=ANALYSIS, **over), native_world(frontend_path="/releases/1.0.0"))
    return base, base.observation


def answered(actions: Sequence[Any]) -> list[str]:
    return [a.hook_id for a in actions if isinstance(a, AnswerNativeHook)]


def test_a_native_canary_is_promoted_through_its_hooks_after_each_pause_and_analysis() -> None:
    base, obs = start(frontend=FRONTEND | {"version": "1.0.0"})
    spec = make_spec("2.0.0", CANARY, analysis=ANALYSIS, frontend=FRONTEND)
    run = drive(spec, obs, base.status, base.now, measure=healthy)
    assert run.status.phase == Phase.SUCCEEDED
    assert run.status.backend.stable_version == "2.0.0"
    starts = [a for a in run.actions if isinstance(a, StartNativeDeployment)]
    assert len(starts) == 1 and starts[0].plan.strategy == "LINEAR" and starts[0].plan.percent == 25.0
    hooks = answered(run.actions)
    assert len(set(hooks)) == 4  # the start, then before 50, 75 and 100: each hook once
    # Each step's hook is answered only after its minute's pause.
    answers = [(p.now, a) for p in run.passes for a in p.decision.actions if isinstance(a, AnswerNativeHook)]
    gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(answers, answers[1:], strict=False)]
    assert all(g >= 60 for g in gaps), gaps
    # The frontend moves only once ECS says SUCCESSFUL.
    first_origin = next(i for i, p in enumerate(run.passes) if any(isinstance(a, SetOriginPath)
                                                                    for a in p.decision.actions))
    native = run.passes[first_origin - 1].observation.service.native  # type: ignore[union-attr]
    assert native is not None and native.succeeded


def test_a_failing_native_canary_is_stopped_and_rolled_back() -> None:
    base, obs = start()
    run = drive(make_spec("2.0.0", CANARY, analysis=ANALYSIS), obs, base.status, base.now, measure=failing)
    assert run.status.phase == Phase.ROLLED_BACK
    assert any(isinstance(a, StopNativeDeployment) for a in run.actions)
    native = run.observation.service.native  # type: ignore[union-attr]
    assert native is not None and native.rolled_back and native.production_weight == 0.0
    assert run.observation.service.image.endswith(":1.0.0")  # type: ignore[union-attr]
    stop_pass = next(i for i, p in enumerate(run.passes) if any(isinstance(a, StopNativeDeployment)
                                                                 for a in p.decision.actions))
    assert not answered([a for p in run.passes[stop_pass:] for a in p.decision.actions])


def test_abort_mid_deployment_stops_it() -> None:
    base, obs = start()
    spec = make_spec("2.0.0", CANARY, analysis=ANALYSIS)
    mid = drive(spec, obs, base.status, base.now, measure=healthy,
                until=lambda p: (p.observation.service.native is not None  # type: ignore[union-attr]
                                 and p.observation.service.native.production_weight == 50.0))  # type: ignore[union-attr]
    d = decide(spec, mid.status, mid.observation, ctx(mid.now, Requests(abort="a1")))
    assert [a for a in d.actions if isinstance(a, StopNativeDeployment)]
    assert d.status.phase == Phase.ROLLED_BACK


def test_ecs_rolling_back_by_itself_is_recorded_and_not_retried() -> None:
    base, obs = start()
    run = drive(make_spec("2.0.0", CANARY, analysis=ANALYSIS), obs, base.status, base.now, measure=healthy,
                knobs=Knobs(native_end="ROLLBACK_SUCCESSFUL"))
    assert run.status.phase == Phase.ROLLED_BACK
    assert run.status.history[-1].result == "RolledBack"
    assert len([a for a in run.actions if isinstance(a, StartNativeDeployment)]) == 1


def test_a_pause_until_promote_waits_for_the_promote_request() -> None:
    strategy = {"type": "Canary", "canary": {"steps": [{"setWeight": 10}, {"pause": {}}]}}
    base, obs = start(strategy)
    spec = make_spec("2.0.0", strategy, analysis=ANALYSIS)
    held = drive(spec, obs, base.status, base.now, measure=healthy, until=lambda p: p.decision.status.phase == Phase.PAUSED)
    assert held.observation.service.native.production_weight == 10.0  # type: ignore[union-attr]
    waiting = len(answered(held.actions))
    run = drive(spec, held.observation, held.status, held.now, measure=healthy, requests=Requests(promote="p1"))
    assert run.status.phase == Phase.SUCCEEDED
    assert len(answered(held.actions + run.actions)) == waiting + 1


def test_blue_green_previews_then_promotes() -> None:
    strategy = {"type": "BlueGreen", "blueGreen": {"previewDuration": "2m", "scaleDownDelay": "1m"}}
    base, obs = start(strategy)
    run = drive(make_spec("2.0.0", strategy, analysis=ANALYSIS), obs, base.status, base.now, measure=healthy)
    assert run.status.phase == Phase.SUCCEEDED
    [started] = [a for a in run.actions if isinstance(a, StartNativeDeployment)]
    assert started.plan.strategy == "BLUE_GREEN" and started.plan.uses_test_listener


def refused(strategy: dict[str, Any], obs: Observation, **over: Any) -> tuple[str, str, tuple[Any, ...]]:
    base = drive(make_spec("1.0.0", strategy, **over), obs)
    d = decide(make_spec("2.0.0", strategy, **over), base.status, obs, ctx(base.now))
    found = next(c for c in d.status.conditions if c.type == ConditionType.PROGRESSING)
    return found.reason, found.message, d.actions


def test_steps_ecs_cannot_run_are_refused_and_nothing_changes() -> None:
    reason, message, actions = refused({"type": "Canary", "canary": {"steps": [{"setWeight": 10}, {"setWeight": 50}]}},
                                       native_world())
    assert reason == "NativeStepsUnsupported" and "[10, 50]" in message and actions == ()


def test_mode_native_without_ecs_routing_is_refused() -> None:
    reason, message, actions = refused(CANARY, world("1.0.0", controller="ECS"),
                                       backend={"ecs": {"mode": "Native"}})
    assert reason == "NativeRoutingMissing" and "advancedConfiguration" in message and actions == ()
    reason, _, _ = refused(CANARY, world("1.0.0"), backend={"ecs": {"mode": "Native"}})
    assert reason == "DeploymentControllerNotSupported"


def test_mode_task_sets_keeps_the_ecs_controller_refusal() -> None:
    reason, _, _ = refused(CANARY, native_world(), backend={"ecs": {"mode": "TaskSets"}})
    assert reason == "DeploymentControllerNotExternal"




def no_data(now: datetime) -> Measurement:
    return Measurement(metric="error-rate", verdict=Verdict.NO_DATA, message="error-rate: no data", time=now)


def held_at(production_weight: float, stage: str) -> list[Any]:
    """Twenty analysis intervals of no data while ECS holds the new revision at `production_weight`."""
    base, obs = start()
    spec = make_spec("2.0.0", CANARY, analysis=ANALYSIS)
    mid = drive(spec, obs, base.status, base.now, measure=healthy,
                until=lambda p: p.observation.service.native is not None)  # type: ignore[union-attr]
    service = mid.observation.service
    assert service is not None and service.native is not None
    held = replace(mid.observation, service=replace(service, native=replace(
        service.native, status="IN_PROGRESS", stage=stage, production_weight=production_weight, hooks=())))
    status, now = mid.status, mid.now
    actions: list[Any] = []
    for _ in range(20):
        now += timedelta(seconds=10)
        d = decide(spec, status, held, ctx(now, measurements=[no_data(now)]))
        status, actions = d.status, [*actions, *d.actions]
    return [status.phase, *actions]


def test_no_data_while_ecs_scales_the_new_revision_up_is_nobodys_fault() -> None:
    # Before ECS sends the new revision any traffic there is nothing to measure: held, not failed.
    phase, *actions = held_at(0.0, "SCALE_UP")
    assert phase == Phase.PROGRESSING and not [a for a in actions if isinstance(a, StopNativeDeployment)]
    # Once it serves 25% of production, no data about it is its fault (noDataLimit, then rolled back).
    phase, *actions = held_at(25.0, "PRODUCTION_TRAFFIC_SHIFT")
    assert phase == Phase.ROLLED_BACK and [a for a in actions if isinstance(a, StopNativeDeployment)]


# --------------------------------------------------------------------------- what serves, natively


def traffic_seen(run: Any, first: Observation) -> list[tuple[str, float | None]]:
    """(status.backend.traffic, the production weight ECS reported on the new revision in the
    observation that pass decided from) for every pass of `run`."""
    before = [first, *(p.observation for p in run.passes)]
    out = []
    for p, obs in zip(run.passes, before, strict=False):
        native = obs.service.native if obs.service is not None else None
        out.append((p.decision.status.backend.traffic, native.production_weight if native is not None else None))
    return out


def test_the_serving_figures_follow_the_weights_ecs_reports_through_a_native_canary() -> None:
    base, obs = start()
    run = drive(make_spec("2.0.0", CANARY, analysis=ANALYSIS), obs, base.status, base.now, measure=healthy)
    assert run.status.phase == Phase.SUCCEEDED
    seen = traffic_seen(run, obs)
    # ECS's PRIMARY deployment is 2.0.0 from the start; what serves is what ECS weighs, pass by pass.
    shown = list(dict.fromkeys(t for t, _ in seen))
    assert shown == ["1.0.0=100%", "1.0.0=75%,2.0.0=25%", "1.0.0=50%,2.0.0=50%", "2.0.0=75%,1.0.0=25%",
                     "2.0.0=100%"], shown
    for traffic, weight in seen:
        on_new = next((int(s.split("=")[1].rstrip("%")) for s in traffic.split(",") if s.startswith("2.0.0=")), 0)
        assert on_new == round(weight or 0.0), (traffic, weight)


def test_a_rolled_back_native_canary_shows_the_old_version_serving_it_all_again() -> None:
    base, obs = start()
    run = drive(make_spec("2.0.0", CANARY, analysis=ANALYSIS), obs, base.status, base.now, measure=failing)
    assert run.status.phase == Phase.ROLLED_BACK
    seen = [t for t, _ in traffic_seen(run, obs)]
    assert "1.0.0=50%,2.0.0=50%" in seen  # where the analysis failed
    # The pass that stopped ECS decided from the split it saw; the next one shows the way back.
    later = run.now + timedelta(seconds=30)
    d = decide(run.spec, run.status, run.observation, ctx(later, measurements=[measurement("error-rate", 0.01, later)]))
    assert d.status.backend.traffic == "1.0.0=100%"
    assert [s.model_dump() for s in d.status.backend.serving] == [{"version": "1.0.0", "weight": 100}]


def at(obs: Observation, status: str, stage: str, weight: float) -> Observation:
    """`obs` with ECS's deployment of 2.0.0 from 1.0.0 at `weight` percent of production, and the
    version the old observer read from the PRIMARY deployment (2.0.0 from the start)."""
    assert obs.service is not None
    old, new = make_spec("1.0.0", CANARY).backend.image, make_spec("2.0.0", CANARY).backend.image
    arn = obs.service.native.arn if obs.service.native is not None else "arn:service-deployment/9"
    native = NativeDeployment(arn, status, stage, "backend:2", production_weight=weight, target_image=new,
                              sources=(RevisionShare(old, 100.0 - weight),))
    return replace(obs, service=replace(obs.service, native=native, image=new), backend_version_serving="2.0.0")


def test_requires_backend_is_met_only_once_ecs_reports_success_with_all_production_on_the_new_version() -> None:
    _, obs = start()
    spec = make_spec("2.0.0", CANARY, frontend=FRONTEND | {"requiresBackend": ">=2.0.0"})
    cases = [  # (status, stage, production weight) -> requiresBackend met
        (("IN_PROGRESS", "PRE_PRODUCTION_TRAFFIC_SHIFT", 0.0), False),
        (("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 20.0), False),
        (("IN_PROGRESS", "BAKE_TIME", 100.0), False),  # all traffic, but ECS may still roll back
        (("SUCCESSFUL", "CLEAN_UP", 75.0), False),  # a snapshot of the weights behind the status
        (("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0.0), False),
        (("SUCCESSFUL", "CLEAN_UP", 100.0), True),
    ]
    got = [(case, frontend_step(spec, at(obs, *case), "1.0.0")) for case, _ in cases]
    assert [(case, step.compatible) for case, step in got] == cases
    assert "backend serving is 1.0.0" in got[1][1].message


def test_the_frontend_is_held_while_a_successful_deployment_still_reports_traffic_on_the_old_version() -> None:
    base, obs = start(frontend=FRONTEND | {"version": "1.0.0"})
    spec = make_spec("2.0.0", CANARY, analysis=ANALYSIS, frontend=FRONTEND | {"requiresBackend": ">=2.0.0"})
    mid = drive(spec, obs, base.status, base.now, measure=healthy,
                until=lambda p: p.observation.service.native is not None  # type: ignore[union-attr]
                and p.observation.service.native.succeeded)  # type: ignore[union-attr]
    status, now = mid.status, mid.now
    stale = at(mid.observation, "SUCCESSFUL", "CLEAN_UP", 75.0)
    for _ in range(3):  # promoted on SUCCESSFUL; the frontend waits for the weights to agree
        now += timedelta(seconds=10)
        d = decide(spec, status, stale, ctx(now, measurements=[measurement("error-rate", 0.01, now)]))
        status = d.status
        assert not [a for a in d.actions if isinstance(a, SetOriginPath)]
    assert status.backend.traffic == "2.0.0=75%,1.0.0=25%"
    compatible = next(c for c in status.conditions if c.type == ConditionType.COMPATIBLE)
    assert compatible.status == "False" and "backend serving is 1.0.0" in compatible.message
    now += timedelta(seconds=10)
    d = decide(spec, status, at(mid.observation, "SUCCESSFUL", "CLEAN_UP", 100.0),
               ctx(now, measurements=[measurement("error-rate", 0.01, now)]))
    assert [a.origin_path for a in d.actions if isinstance(a, SetOriginPath)] == ["/releases/2.0.0"]
