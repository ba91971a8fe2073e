"""A Release's strategy as ECS's own deployment configuration (the native mode). Pure.

ECS on the `ECS` deployment controller runs BLUE_GREEN, CANARY and LINEAR itself
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-blue-green.html,
.../canary-deployment.html, .../linear-deployment.html). It takes one canary percentage then all
traffic, or equal steps to 100%, and whole minutes of bake. Our steps carry pauses of any length,
analysis and approval gates, so the mapping keeps ECS's own bakes between shifts at 0 and puts a
`PAUSE` lifecycle hook (API_DeploymentLifecycleHook, targetType PAUSE) where we must decide: ECS
then waits at each gate until the operator answers ContinueServiceDeployment CONTINUE (the step's
pause is over and its analysis passed) or ROLLBACK. A PRE_PRODUCTION_TRAFFIC_SHIFT hook fires
before every production step of a canary or linear shift, each time with a new hook id.

Worked examples (`native_plan`):

    Canary [setWeight 10, pause 1m]         CANARY 10%, canary bake 0; gates before 10% (start)
                                            and before 100% (hold 1m, analysed, promotes)
    Canary [25, pause 30s, 50, pause 30s, 75, pause {}]
                                            LINEAR 25%, step bake 0; gates before 25, 50 (30s),
                                            75 (30s), 100 (until promote)
    Canary [10, pause 30s, 50, pause 30s]   refused: ECS takes one percentage (CANARY) or equal
                                            steps to 100% (LINEAR)
    BlueGreen previewDuration 60s           BLUE_GREEN with the test listener rule; gates after
                                            the test traffic shift (hold 60s, analysed) and before
                                            production (promotes)
    Rolling / Fast                          ROLLING, no gate (as on the ECS controller today)

After the full shift ECS bakes `bakeTimeInMinutes` (the rollback window, in whole minutes, up to
ECS's 1440) with both revisions running, so a rollback is one traffic shift, as with task sets.

A gate's hook times out after `hook_timeout_minutes` (its action ROLLBACK): if the operator is gone
for that long, ECS puts production back by itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from controller.api.release import CanaryStep, EcsMode, ReleaseSpec, StrategyType
from controller.planner import canary as canary_plan
from controller.planner.world import Service

PRE_PRODUCTION = "PRE_PRODUCTION_TRAFFIC_SHIFT"
POST_TEST = "POST_TEST_TRAFFIC_SHIFT"
POST_SCALE_UP = "POST_SCALE_UP"

MAX_BAKE_MINUTES = 1440  # DeploymentConfiguration.bakeTimeInMinutes, Canary/LinearConfiguration bakes
MAX_HOOK_MINUTES = 20160  # DeploymentLifecycleHookTimeoutConfiguration.timeoutInMinutes
UNTIL_PROMOTE_HOOK_MINUTES = 1440  # ECS's default hook timeout: a day for a person to promote
HOOK_MARGIN_MINUTES = 30  # past a timed pause: time for the analysis and for an operator restart
MIN_LINEAR_STEP = 3  # LinearConfiguration.stepPercent: 3.0 to 100.0


@dataclass(frozen=True)
class Gate:
    """One PAUSE hook firing the operator answers: CONTINUE once `hold` has passed (with a Passed
    analysis when `analysed`; None: until promote) and, when `promotes`, the promotion gates pass."""

    stage: str
    index: int  # which firing at `stage` (PRE_PRODUCTION fires once per production step)
    production_weight: float  # the production percentage on the new revision while it waits
    hold: timedelta | None
    analysed: bool
    promotes: bool
    label: str


@dataclass(frozen=True)
class NativePlan:
    strategy: str  # ECS's DeploymentStrategy
    percent: float | None  # canaryPercent or stepPercent
    bake_minutes: int
    hook_stages: tuple[str, ...]
    hook_timeout_minutes: int
    gates: tuple[Gate, ...]
    uses_test_listener: bool = False

    def deployment_configuration(self, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """UpdateService's deploymentConfiguration; `base` keeps the service's other settings."""
        out = {k: v for k, v in (base or {}).items()
               if k not in ("strategy", "canaryConfiguration", "linearConfiguration", "lifecycleHooks",
                            "bakeTimeInMinutes")}
        out["strategy"] = self.strategy
        if self.strategy == "ROLLING":
            return out
        out["bakeTimeInMinutes"] = self.bake_minutes
        if self.strategy == "CANARY":
            out["canaryConfiguration"] = {"canaryPercent": self.percent, "canaryBakeTimeInMinutes": 0}
        elif self.strategy == "LINEAR":
            out["linearConfiguration"] = {"stepPercent": self.percent, "stepBakeTimeInMinutes": 0}
        if self.hook_stages:
            out["lifecycleHooks"] = [{
                "targetType": "PAUSE", "lifecycleStages": list(self.hook_stages),
                "timeoutConfiguration": {"timeoutInMinutes": self.hook_timeout_minutes, "action": "ROLLBACK"},
            }]
        return out

    def gate(self, stage: str | None, production_weight: float) -> Gate | None:
        """The gate a hook waiting at `stage` with this production weight is (None: not ours)."""
        return next((g for g in self.gates if g.stage == stage and abs(g.production_weight - production_weight) < 0.05),
                    None)


NATIVE_PREVIEW_HINT = ("{what} runs on task sets (ecs.mode: TaskSets, the EXTERNAL deployment controller), where the "
                       "controller places the preview rule; natively, ECS routes a preview itself through the test "
                       "listener of loadBalancers[].advancedConfiguration: leave the preview out, or set ecs.mode: TaskSets")


@dataclass(frozen=True)
class NativeRefusal:
    """Steps ECS cannot run natively; `message` says what to write instead."""

    message: str


def minutes_up(duration: timedelta) -> int:
    """Whole minutes, rounded up: ECS counts bakes and timeouts in minutes.

    >>> minutes_up(timedelta(seconds=30)), minutes_up(timedelta(minutes=5)), minutes_up(timedelta(0))
    (1, 5, 0)
    """
    return math.ceil(duration.total_seconds() / 60 - 1e-9)


def _stages(steps: Sequence[CanaryStep]) -> list[tuple[int, timedelta | None, bool]]:
    """[(weight, pause after it, whether any pause was written)] from written steps.

    Consecutive pauses add up; a pause with no duration makes the hold last until promote.
    Steps at 0 or repeating the previous weight are folded into the one before.
    """
    out: list[tuple[int, timedelta | None, bool]] = []
    for step in steps:
        if step.set_weight is not None:
            if out and out[-1][0] == step.set_weight or step.set_weight == 0:
                continue
            out.append((step.set_weight, timedelta(0), False))
            continue
        if not out:
            continue  # a pause before any weight: nothing is exposed yet
        weight, held, _ = out[-1]
        duration = step.pause.duration if step.pause is not None else None
        out[-1] = (weight, None if held is None or duration is None else held + duration, True)
    return out


def _weights_text(weights: Sequence[int]) -> str:
    return "[" + ", ".join(str(w) for w in weights) + "]"


def native_plan(spec: ReleaseSpec, strategy: StrategyType, *, has_test_listener: bool) -> NativePlan | NativeRefusal:
    """The native deployment for `spec` under `strategy`; the module docstring has worked examples."""
    analysed = bool(spec.analysis.metrics)
    bake = min(MAX_BAKE_MINUTES, minutes_up(spec.rollback.window))
    if strategy == StrategyType.BLUE_GREEN and spec.strategy.blue_green and spec.strategy.blue_green.preview_header:
        return NativeRefusal(NATIVE_PREVIEW_HINT.format(what="strategy.blueGreen.previewHeader"))
    if strategy == StrategyType.CANARY and spec.strategy.canary and any(s.preview for s in spec.strategy.canary.steps):
        return NativeRefusal(NATIVE_PREVIEW_HINT.format(what="a preview step"))
    if strategy == StrategyType.BLUE_GREEN:
        bg = spec.strategy.blue_green
        preview = bg.preview_duration if bg is not None else timedelta(seconds=60)
        bake = min(MAX_BAKE_MINUTES, minutes_up(bg.scale_down_delay if bg is not None else timedelta(minutes=5)))
        preview_stage = POST_TEST if has_test_listener else POST_SCALE_UP
        preview_gates = (
            Gate(preview_stage, 0, 0.0, preview, analysed, False, f"Preview {preview_stage}"),
            Gate(PRE_PRODUCTION, 0, 0.0, timedelta(0), False, True, "Promote"),
        )
        return NativePlan("BLUE_GREEN", None, bake, (preview_stage, PRE_PRODUCTION),
                          _timeout([preview]), preview_gates, uses_test_listener=has_test_listener)
    if strategy != StrategyType.CANARY:
        return NativePlan("ROLLING", None, 0, (), 0, ())

    written = spec.strategy.canary.steps if spec.strategy.canary and spec.strategy.canary.steps else None
    stages = _stages(written or canary_plan.DEFAULT_STEPS)
    exposed = [s for s in stages if s[0] < 100]
    weights = [w for w, _, _ in exposed]
    if not exposed:
        return NativeRefusal(
            "strategy.canary.steps never send less than 100% to the new version: write a first step below 100 "
            "(e.g. [{setWeight: 10}, {pause: {duration: 5m}}]) or use strategy.type: BlueGreen")
    if written is None and weights == [10, 50]:
        # The task-set default (10%, 50%) is not ECS-shaped: natively the default is its canary half.
        exposed, weights = exposed[:1], weights[:1]
    holds = [held for _, held, _ in exposed]
    if len(weights) == 1:
        ecs_strategy, percent = "CANARY", float(weights[0])
    else:
        step = weights[0]
        expected = list(range(step, 100, step))
        if weights != expected or step < MIN_LINEAR_STEP:
            return NativeRefusal(
                f"strategy.canary.steps {_weights_text(weights)} cannot run on the ECS deployment controller: ECS "
                "shifts one canary percentage then all traffic (CANARY), or equal steps up to 100% (LINEAR, steps "
                f"of at least {MIN_LINEAR_STEP}%). Write one setWeight (e.g. [{{setWeight: {weights[0]}}}, "
                "{pause: {duration: 5m}}]) or equal steps (e.g. [25, 50, 75] with pauses between), or release "
                "this service through task sets (the EXTERNAL deployment controller)")
        ecs_strategy, percent = "LINEAR", float(step)
    gates = [Gate(PRE_PRODUCTION, 0, 0.0, timedelta(0), False, False, "Start")]
    for i, (weight, held) in enumerate(zip(weights, holds, strict=True)):
        last = i == len(weights) - 1
        gates.append(Gate(PRE_PRODUCTION, i + 1, float(weight), held, analysed and held is not None, last,
                          "Promote" if last else f"SetWeight {weights[i + 1]}"))
    return NativePlan(ecs_strategy, percent, bake, (PRE_PRODUCTION,), _timeout(holds), tuple(gates))


def _timeout(holds: Sequence[timedelta | None]) -> int:
    """The hook timeout: the longest hold plus a margin; a day when a hold waits for promote.

    >>> _timeout([timedelta(minutes=5)]), _timeout([None])
    (35, 1440)
    """
    if any(h is None for h in holds):
        return UNTIL_PROMOTE_HOOK_MINUTES
    longest = max((minutes_up(h) for h in holds if h is not None), default=0)
    return min(MAX_HOOK_MINUTES, longest + HOOK_MARGIN_MINUTES)


def runs_natively(spec: ReleaseSpec, strategy: StrategyType, service: Service | None) -> bool:
    """Whether ECS itself runs this rollout: a Canary or BlueGreen on an ECS-controller service,
    by `backend.ecs.mode: Native`, or (mode unset) when the service has ECS's own routing."""
    if service is None or service.deployment_controller != "ECS":
        return False
    if strategy not in (StrategyType.CANARY, StrategyType.BLUE_GREEN):
        return False
    mode = spec.backend.ecs.mode
    if mode == EcsMode.TASK_SETS:
        return False
    return mode == EcsMode.NATIVE or service.native_routing
