"""A Release's strategy as ECS's native deploymentConfiguration (controller.planner.native): tables."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.api.release import ReleaseSpec, StrategyType
from controller.planner.native import Gate, NativePlan, NativeRefusal, native_plan
from controller.testing.specs import release_spec

ANALYSIS = {"interval": "10s",
            "metrics": [{"name": "error-rate", "prometheus": {"address": "http://p:9090", "query": "q"}, "max": 0.05}]}


def spec(strategy: dict[str, Any], *, analysed: bool = True, window: str = "10m") -> ReleaseSpec:
    more: dict[str, Any] = {"rollback": {"window": window}}
    if analysed:
        more["analysis"] = ANALYSIS
    return ReleaseSpec.model_validate(release_spec(version="2.0.0", image="repo/app:2.0.0", cluster="c", service="s",
                                                   strategy=strategy, **more))


def w(weight: int) -> dict[str, Any]:
    return {"setWeight": weight}


def p(duration: str | None = None) -> dict[str, Any]:
    return {"pause": {"duration": duration} if duration else {}}


S30, M1, M5 = timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=5)
PRE = "PRE_PRODUCTION_TRAFFIC_SHIFT"

# (strategy, ECS strategy, percent, [(production weight at the gate, hold, promotes)])
CASES = [
    ({"type": "Canary", "canary": {"steps": [w(10), p("1m")]}}, "CANARY", 10.0,
     [(0.0, timedelta(0), False), (10.0, M1, True)]),
    ({"type": "Canary", "canary": {"steps": [w(5), p("2m"), p("3m")]}}, "CANARY", 5.0,
     [(0.0, timedelta(0), False), (5.0, M5, True)]),
    ({"type": "Canary", "canary": {"steps": [w(20), p()]}}, "CANARY", 20.0,
     [(0.0, timedelta(0), False), (20.0, None, True)]),
    ({"type": "Canary", "canary": {"steps": [w(25), p("30s"), w(50), p("30s"), w(75), p()]}}, "LINEAR", 25.0,
     [(0.0, timedelta(0), False), (25.0, S30, False), (50.0, S30, False), (75.0, None, True)]),
    ({"type": "Canary", "canary": {"steps": [w(30), p("1m"), w(60), p("1m"), w(90), p("1m"), w(100)]}}, "LINEAR", 30.0,
     [(0.0, timedelta(0), False), (30.0, M1, False), (60.0, M1, False), (90.0, M1, True)]),
    # Unwritten steps: the task-set default (10%, 50%) is not ECS-shaped; natively it is a 10% canary.
    ({"type": "Canary"}, "CANARY", 10.0, [(0.0, timedelta(0), False), (10.0, S30, True)]),
]


@pytest.mark.parametrize(("strategy", "ecs_strategy", "percent", "gates"), CASES)
def test_canary_steps_map_to_canary_or_linear(strategy: dict[str, Any], ecs_strategy: str, percent: float,
                                              gates: list[tuple[float, timedelta | None, bool]]) -> None:
    plan = native_plan(spec(strategy), StrategyType.CANARY, has_test_listener=False)
    assert isinstance(plan, NativePlan)
    assert (plan.strategy, plan.percent) == (ecs_strategy, percent)
    assert [(g.production_weight, g.hold, g.promotes) for g in plan.gates] == gates
    assert all(g.stage == PRE for g in plan.gates)
    assert [g.analysed for g in plan.gates] == [False] + [h is not None for _, h, _ in gates[1:]]
    config = plan.deployment_configuration({"maximumPercent": 200, "strategy": "ROLLING"})
    assert config["strategy"] == ecs_strategy and config["maximumPercent"] == 200
    assert config["bakeTimeInMinutes"] == 10  # the rollback window
    key, percent_key = (("canaryConfiguration", "canaryPercent") if ecs_strategy == "CANARY"
                        else ("linearConfiguration", "stepPercent"))
    assert config[key][percent_key] == percent
    assert config["lifecycleHooks"] == [{"targetType": "PAUSE", "lifecycleStages": [PRE], "timeoutConfiguration": {
        "timeoutInMinutes": plan.hook_timeout_minutes, "action": "ROLLBACK"}}]


@pytest.mark.parametrize(("steps", "says"), [
    ([w(10), p("30s"), w(50), p("30s")], "[10, 50] cannot run on the ECS deployment controller"),
    ([w(20), p("1m"), w(40), p("1m")], "[20, 40] cannot run"),  # equal, but ECS would go on to 60 and 80
    ([w(2), w(4), w(6)], "steps of at least 3%"),
    ([w(100)], "never send less than 100%"),
    ([{"preview": {"duration": "1m"}}, w(10), p("1m")], "a preview step runs on task sets"),
])
def test_steps_ecs_cannot_express_are_refused_with_what_to_write(steps: list[dict[str, Any]], says: str) -> None:
    plan = native_plan(spec({"type": "Canary", "canary": {"steps": steps}}), StrategyType.CANARY,
                       has_test_listener=False)
    assert isinstance(plan, NativeRefusal)
    assert says in plan.message


def test_a_blue_green_preview_header_is_refused_natively_with_what_to_write() -> None:
    strategy = {"type": "BlueGreen", "blueGreen": {"previewDuration": "90s", "previewHeader": {}}}
    plan = native_plan(spec(strategy), StrategyType.BLUE_GREEN, has_test_listener=True)
    assert isinstance(plan, NativeRefusal) and "ecs.mode: TaskSets" in plan.message


def test_blue_green_previews_on_the_test_listener_and_bakes_the_scale_down_delay() -> None:
    strategy = {"type": "BlueGreen", "blueGreen": {"previewDuration": "90s", "scaleDownDelay": "3m"}}
    plan = native_plan(spec(strategy), StrategyType.BLUE_GREEN, has_test_listener=True)
    assert isinstance(plan, NativePlan) and plan.uses_test_listener
    assert plan.gates == (
        Gate("POST_TEST_TRAFFIC_SHIFT", 0, 0.0, timedelta(seconds=90), True, False, "Preview POST_TEST_TRAFFIC_SHIFT"),
        Gate(PRE, 0, 0.0, timedelta(0), False, True, "Promote"),
    )
    config = plan.deployment_configuration()
    assert (config["strategy"], config["bakeTimeInMinutes"]) == ("BLUE_GREEN", 3)
    assert config["lifecycleHooks"][0]["lifecycleStages"] == ["POST_TEST_TRAFFIC_SHIFT", PRE]
    # No test listener: the preview is held after the scale-up, with no test traffic.
    bare = native_plan(spec(strategy, analysed=False), StrategyType.BLUE_GREEN, has_test_listener=False)
    assert isinstance(bare, NativePlan) and bare.gates[0].stage == "POST_SCALE_UP" and not bare.gates[0].analysed


@pytest.mark.parametrize("strategy", [StrategyType.ROLLING, StrategyType.FAST])
def test_rolling_and_fast_stay_rolling_with_no_gate(strategy: StrategyType) -> None:
    plan = native_plan(spec({"type": strategy.value}), strategy, has_test_listener=False)
    assert isinstance(plan, NativePlan)
    assert plan.deployment_configuration({"strategy": "CANARY", "canaryConfiguration": {}, "maximumPercent": 200}) == {
        "strategy": "ROLLING", "maximumPercent": 200}
    assert plan.gates == ()


def test_a_long_window_is_capped_at_ecs_bake_limit_and_the_gate_is_found_by_weight() -> None:
    plan = native_plan(spec({"type": "Canary", "canary": {"steps": [w(10), p("2h")]}}, window="48h"),
                       StrategyType.CANARY, has_test_listener=False)
    assert isinstance(plan, NativePlan)
    assert plan.bake_minutes == 1440
    assert plan.hook_timeout_minutes == 120 + 30
    gate = plan.gate(PRE, 10.0)
    assert gate is not None and gate.promotes and gate.hold == timedelta(hours=2)
    assert plan.gate("POST_SCALE_UP", 0.0) is None
