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
from controller.planner.world import Observation
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
