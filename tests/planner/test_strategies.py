"""Planner tables: each strategy end to end through the world simulator, and the rollout controls."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.api.release import ConditionType, Phase, ReleaseStatus, StrategyType
from controller.planner import Requests, decide, resolve
from controller.planner.actions import (
    DeleteTaskSet,
    EnsureTaskSet,
    ScaleTaskSet,
    SetListenerWeights,
    SetPrimaryTaskSet,
    UpdateServiceImage,
)
from controller.planner.conditions import find

from tests.planner.sim import BLUE, GREEN, T0, Knobs, Run, ctx, drive, image, make_spec, settled, world

CANARY_PROMOTE = {"type": "Canary", "canary": {"steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 40}]}}
CANARY_TIMED = {"type": "Canary", "canary": {"steps": [{"setWeight": 10}, {"pause": {"duration": "30s"}},
                                                       {"setWeight": 50}, {"pause": {"duration": "30s"}}]}}


def upgrade(strategy: dict[str, Any], to: str = "2.0.0", spec: dict[str, Any] | None = None, **kw: Any) -> Run:
    base = settled("1.0.0", strategy)
    return drive(make_spec(to, strategy, **(spec or {})), base.observation, base.status, now=base.now, **kw)


def cond(status: ReleaseStatus, type_: ConditionType) -> tuple[str, str] | None:
    c = find(status.conditions, type_)
    return (c.status, c.reason) if c else None


# --------------------------------------------------------------------------- every strategy, end to end


@pytest.mark.parametrize(
    "strategy, green_weights, events",
    [
        ({"type": "Fast"}, [0, 100], ["RolloutStarted", "Promoted", "Succeeded"]),
        ({"type": "Rolling", "rolling": {"interval": "5s"}}, [0, 25, 50, 75, 100],
         ["RolloutStarted", "SetWeight", "Pause", "SetWeight", "Pause", "SetWeight", "Pause", "SetWeight", "Pause",
          "Promoted", "Succeeded"]),
        (CANARY_TIMED, [0, 10, 50, 100], ["RolloutStarted", "SetWeight", "Pause", "SetWeight", "Pause", "Promoted",
                                          "Succeeded"]),
        ({"type": "BlueGreen", "blueGreen": {"previewDuration": "20s", "scaleDownDelay": "1m"}}, [0, 100],
         ["RolloutStarted", "Preview", "Pause", "Promoted", "Succeeded"]),
        ({"type": "Auto", "changeClass": "minor"}, [0, 100], ["RolloutStarted", "Promoted", "Succeeded"]),
    ],
    ids=["fast", "rolling", "canary", "bluegreen", "auto-minor"],
)
def test_strategy_walks_its_steps_and_ends_on_one_task_set(
    strategy: dict[str, Any], green_weights: list[int], events: list[str]
) -> None:
    run = upgrade(strategy)
    assert run.weight_trace(GREEN) == green_weights
    assert [e for e in run.events if e not in ("ScaledDown", "Promoting")] == events
    assert all(p.decision.requeue_after for p in run.passes if p.decision.status.phase == Phase.PROGRESSING)
    svc = run.observation.service
    assert svc is not None and len(svc.task_sets) == 1
    (only,) = svc.task_sets
    assert (only.image, only.status, only.scale_percent, only.target_group_arn) == (image("2.0.0"), "PRIMARY", 100, GREEN)
    assert run.observation.listener is not None and run.observation.listener.weights[GREEN] == 100
    st = run.status
    assert st.phase == Phase.SUCCEEDED
    assert (st.backend.stable_version, st.backend.stable_target_group_arn, st.backend.canary_weight) == ("2.0.0", GREEN, 0)
    assert [(h.revision, h.backend_version, h.result) for h in st.history] == [(1, "1.0.0", "Succeeded"),
                                                                             (2, "2.0.0", "Succeeded")]
    assert cond(st, ConditionType.READY) == ("True", "Succeeded")
    assert cond(st, ConditionType.PROGRESSING) == ("False", "RolloutCompleted")
    assert run.passes[-1].decision.requeue_after is None


def test_rolling_scales_old_down_as_new_scales_up() -> None:
    run = upgrade({"type": "Rolling"})
    seen = []
    for p in run.passes:
        sets = {ts.target_group_arn: ts.scale_percent for ts in p.observation.service.task_sets}  # type: ignore[union-attr]
        if GREEN in sets and BLUE in sets and p.weights[GREEN] == sets[GREEN]:
            seen.append((sets[GREEN], sets[BLUE]))
    assert sorted(set(seen)) == [(25, 75), (50, 50), (75, 25), (100, 0)]


def test_target_groups_alternate_roles_on_each_promotion() -> None:
    second = upgrade({"type": "Fast"})
    third = drive(make_spec("3.0.0"), second.observation, second.status, now=second.now)
    (only,) = third.observation.service.task_sets  # type: ignore[union-attr]
    assert only.target_group_arn == BLUE and third.status.backend.stable_target_group_arn == BLUE
    assert third.observation.listener.weights == {BLUE: 100, GREEN: 0}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "strategy, change_class, expected",
    [("Auto", "infrastructure", "BlueGreen"), ("Auto", "api", "Canary"), ("Auto", "core", "Rolling"),
     ("Auto", "minor", "Fast"), ("Canary", None, "Canary")],
)
def test_auto_resolves_by_change_class(strategy: str, change_class: str | None, expected: str) -> None:
    s: dict[str, Any] = {"type": strategy, **({"changeClass": change_class} if change_class else {})}
    spec = make_spec("2.0.0", s)
    assert resolve(spec) == StrategyType(expected)
    d = decide(spec, settled("1.0.0", s).status, world("1.0.0"), ctx())
    assert d.status.strategy == StrategyType(expected)


def test_canary_timed_pause_waits_its_duration() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    run = drive(make_spec("2.0.0", CANARY_TIMED), base.observation, base.status, now=base.now,
                until=lambda p: p.decision.status.current_step == 1)
    started = run.passes[-1].now
    d = decide(run.spec, run.status, run.observation, ctx(started + timedelta(seconds=29)))
    assert d.actions == () and d.status.current_step == 1 and d.requeue_after == pytest.approx(1.0)
    d = decide(run.spec, run.status, run.observation, ctx(started + timedelta(seconds=30)))
    assert d.status.current_step == 2
    canary = next(ts for ts in run.observation.service.task_sets if ts.external_id)  # type: ignore[union-attr]
    assert d.actions == (ScaleTaskSet("prod", "backend", canary.external_id or "", 50.0, task_set_id=canary.id),)


# --------------------------------------------------------------------------- promote, abort, retry, paused


def test_pause_without_duration_waits_for_promote_then_continues() -> None:
    run = upgrade(CANARY_PROMOTE)
    assert run.status.phase == Phase.PAUSED and run.status.current_step == 1
    assert cond(run.status, ConditionType.PROGRESSING) == ("Unknown", "WaitingForPromote")
    assert run.weight_trace(GREEN) == [0, 10] and run.passes[-1].decision.requeue_after is None
    later = drive(run.spec, run.observation, run.status, now=run.now + timedelta(hours=1),
                  requests=Requests(promote="t1"))
    assert later.weight_trace(GREEN) == [10, 40, 100]
    assert later.status.phase == Phase.SUCCEEDED and later.status.acknowledged.promote == "t1"


def test_promote_full_skips_every_remaining_step() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    run = drive(make_spec("2.0.0", CANARY_TIMED), base.observation, base.status, now=base.now,
                until=lambda p: p.weights[GREEN] == 10)
    rest = drive(run.spec, run.observation, run.status, now=run.now, requests=Requests(promote="p#full"))
    assert rest.weight_trace(GREEN) == [10, 100]
    assert "PromoteFull" in rest.events and rest.status.phase == Phase.SUCCEEDED


@pytest.mark.parametrize("strategy", [CANARY_TIMED, CANARY_PROMOTE], ids=["timed-pause", "indefinite-pause"])
def test_promote_ends_the_current_pause_and_goes_to_the_next_step(strategy: dict[str, Any]) -> None:
    """At a pause, timed or not, plain promote ends that pause only: the next step runs (40% or 50%),
    and a later pause holds again; it never skips further."""
    base = settled("1.0.0", strategy)
    run = drive(make_spec("2.0.0", strategy), base.observation, base.status, now=base.now,
                until=lambda p: p.decision.status.current_step == 1 and p.weights[GREEN] == 10)
    first = decide(run.spec, run.status, run.observation, ctx(run.now, Requests(promote="p1")))
    assert first.status.current_step >= 2 and "PromoteFull" not in [e.reason for e in first.events]
    nxt = drive(run.spec, run.observation, run.status, now=run.now, requests=Requests(promote="p1"),
                until=lambda p: p.decision.status.current_step == 3 or p.decision.status.phase == Phase.SUCCEEDED)
    top = 50 if strategy is CANARY_TIMED else 40
    assert nxt.weight_trace(GREEN)[:2] == [10, top]
    if strategy is CANARY_TIMED:  # the second pause holds: one promote ended one pause
        assert nxt.status.current_step == 3 and nxt.status.phase == Phase.PROGRESSING


def test_abort_puts_traffic_back_in_one_change_and_retry_restarts() -> None:
    run = upgrade(CANARY_PROMOTE)  # waiting at the pause, canary at 10%
    d = decide(run.spec, run.status, run.observation, ctx(run.now, Requests(abort="a1")))
    weights = [a for a in d.actions if isinstance(a, SetListenerWeights)]
    assert weights == [SetListenerWeights(weights[0].listener_arn, {BLUE: 100, GREEN: 0})]
    assert d.actions.index(weights[0]) < next(i for i, a in enumerate(d.actions) if isinstance(a, DeleteTaskSet))
    assert d.status.phase == Phase.ROLLED_BACK and d.status.history[-1].result == "Aborted"
    assert cond(d.status, ConditionType.PROGRESSING) == ("False", "Aborted")
    held = drive(run.spec, run.observation, run.status, now=run.now, requests=Requests(abort="a1"))
    assert held.status.phase == Phase.ROLLED_BACK
    assert [ts.image for ts in held.observation.service.task_sets] == [image("1.0.0")]  # type: ignore[union-attr]
    # The same spec is not tried again by itself ...
    again = decide(run.spec, held.status, held.observation, ctx(held.now + timedelta(hours=1), Requests(abort="a1")))
    assert again.actions == () and again.status.phase == Phase.ROLLED_BACK
    # ... until retry.
    retried = drive(run.spec, held.observation, held.status, now=held.now,
                    requests=Requests(abort="a1", retry="r1", promote="p2#full"))
    assert retried.status.revision == 3 and retried.status.phase == Phase.SUCCEEDED
    assert retried.status.backend.stable_version == "2.0.0"


def test_paused_spec_freezes_the_pause_timer() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    run = drive(make_spec("2.0.0", CANARY_TIMED), base.observation, base.status, now=base.now,
                until=lambda p: p.decision.status.current_step == 1)
    t = run.passes[-1].now
    paused_spec = make_spec("2.0.0", CANARY_TIMED, paused=True)
    d = decide(paused_spec, run.status, run.observation, ctx(t + timedelta(seconds=10)))
    assert d.actions == () and d.status.phase == Phase.PAUSED and d.requeue_after is None
    # An hour later, unpaused: 20s of the 30s pause are still to go.
    d2 = decide(run.spec, d.status, run.observation, ctx(t + timedelta(hours=1)))
    assert d2.status.current_step == 1 and d2.actions == ()
    assert d2.requeue_after == pytest.approx(20.0)


def test_spec_change_mid_rollout_supersedes_and_restarts_from_stable() -> None:
    run = upgrade(CANARY_PROMOTE)  # 2.0.0 at 10%
    old_canary = run.observation.service.task_sets[1]  # type: ignore[union-attr]
    spec3 = make_spec("3.0.0", CANARY_PROMOTE)
    d = decide(spec3, run.status, run.observation, ctx(run.now))
    assert d.status.history[-1].result == "Superseded" and d.status.history[-1].backend_version == "2.0.0"
    assert SetListenerWeights(run.observation.listener.arn, {BLUE: 100, GREEN: 0}) in d.actions  # type: ignore
    assert DeleteTaskSet("prod", "backend", old_canary.id) in d.actions
    assert any(isinstance(a, EnsureTaskSet) and a.image == image("3.0.0") for a in d.actions)
    rest = drive(spec3, run.observation, run.status, now=run.now, requests=Requests(promote="go#full"))
    assert rest.status.phase == Phase.SUCCEEDED and rest.status.backend.stable_version == "3.0.0"
    assert [ts.image for ts in rest.observation.service.task_sets] == [image("3.0.0")]  # type: ignore[union-attr]


def test_spec_reverted_mid_rollout_tears_the_canary_down() -> None:
    run = upgrade(CANARY_PROMOTE)
    back = drive(make_spec("1.0.0", CANARY_PROMOTE), run.observation, run.status, now=run.now)
    assert back.status.phase == Phase.SUCCEEDED
    assert [ts.image for ts in back.observation.service.task_sets] == [image("1.0.0")]  # type: ignore[union-attr]
    assert back.observation.listener.weights[BLUE] == 100  # type: ignore[union-attr]


def test_progress_deadline_fails_and_returns_traffic() -> None:
    run = upgrade({"type": "BlueGreen"}, spec={"progressDeadline": "1m"}, knobs=Knobs(stabilizing=True))
    st = run.status
    assert st.phase == Phase.FAILED and cond(st, ConditionType.PROGRESSING) == ("False", "ProgressDeadlineExceeded")
    assert st.history[-1].result == "Failed"
    started = next(p.now for p in run.passes if p.decision.actions)
    assert timedelta(minutes=1) < run.now - started < timedelta(minutes=1, seconds=5)
    assert [ts.image for ts in run.observation.service.task_sets] == [image("1.0.0")]  # type: ignore[union-attr]
    assert run.observation.listener.weights == {BLUE: 100, GREEN: 0}  # type: ignore[union-attr]


# --------------------------------------------------------------------------- adoption, idempotence, bad input


def test_adoption_records_the_running_version_without_actions() -> None:
    d = decide(make_spec("1.0.0"), ReleaseStatus(), world("1.0.0"), ctx())
    assert d.actions == ()
    assert d.status.phase == Phase.SUCCEEDED and d.status.revision == 1
    assert [(h.revision, h.result) for h in d.status.history] == [(1, "Succeeded")]
    assert d.status.backend.stable_version == "1.0.0" and d.status.backend.stable_target_group_arn == BLUE


def test_first_pass_on_a_different_image_rolls_out() -> None:
    d = decide(make_spec("2.0.0", {"type": "Canary"}), ReleaseStatus(), world("1.0.0"), ctx())
    # What ran before the Release is its revision 1 (the way back); this rollout is revision 2.
    assert d.status.phase == Phase.PROGRESSING and d.status.revision == 2
    (before,) = d.status.history
    assert (before.revision, before.backend_version, before.backend_image, before.result) == (
        1, "1.0.0", image("1.0.0"), "Succeeded")
    (ensure,) = d.actions
    assert isinstance(ensure, EnsureTaskSet) and ensure.target_group_arn == GREEN and ensure.scale_percent == 10


def test_the_first_bluegreen_rollout_keeps_the_version_that_ran_before_warm() -> None:
    """A Release created on a running service at a new version: the old (untagged) task set is the
    way back, kept warm for scaleDownDelay like any later rollout's, not deleted as drift."""
    spec = make_spec("2.0.0", {"type": "BlueGreen", "blueGreen": {"previewDuration": "0s", "scaleDownDelay": "5m"}})
    run = drive(spec, world("1.0.0"), until=lambda p: p.decision.status.phase == Phase.SUCCEEDED)
    assert run.status.phase == Phase.SUCCEEDED and run.status.revision == 2
    assert run.status.promoted_at is not None
    images = sorted(ts.image or "" for ts in run.observation.service.task_sets)  # type: ignore[union-attr]
    assert images == [image("1.0.0"), image("2.0.0")]
    later = drive(spec, run.observation, run.status, now=run.now)
    deleted_at = next(p.now for p in later.passes if any(isinstance(a, DeleteTaskSet) for a in p.decision.actions))
    assert deleted_at >= run.status.promoted_at + timedelta(minutes=5)
    assert not any(e.reason == "DriftDetected" for r in (run, later) for p in r.passes for e in p.decision.events)
    assert [ts.image for ts in later.observation.service.task_sets] == [image("2.0.0")]  # type: ignore[union-attr]


def test_empty_service_deploys_directly() -> None:
    run = drive(make_spec("1.0.0", {"type": "Canary"}), world(empty=True))
    assert run.status.phase == Phase.SUCCEEDED and run.status.strategy == StrategyType.FAST
    assert [ts.image for ts in run.observation.service.task_sets] == [image("1.0.0")]  # type: ignore[union-attr]


def _midway_states() -> list[tuple[Any, Any, Any]]:
    out = []
    for strategy in ({"type": "Fast"}, {"type": "Rolling"}, CANARY_TIMED, {"type": "BlueGreen"}):
        base = settled("1.0.0", strategy)
        run = drive(make_spec("2.0.0", strategy), base.observation, base.status, now=base.now)
        for p in run.passes:
            out.append((run.spec, p.decision.status, p.observation, p.now))
    return out


def test_same_inputs_same_decision_and_lost_actions_are_reissued() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    spec = make_spec("2.0.0", CANARY_TIMED)
    run = drive(spec, base.observation, base.status, now=base.now)
    obs, st = base.observation, base.status
    checked = 0
    for p in run.passes:
        c = ctx(p.now)
        first = decide(spec, st, obs, c)
        assert decide(spec, st, obs, c) == first
        if first.actions:
            # The actions did not land: the next pass, with the new status, asks again.
            assert decide(spec, first.status, obs, c).actions == first.actions
            checked += 1
        obs, st = p.observation, p.decision.status
    assert checked >= 4


def test_lost_actions_still_converge() -> None:
    lost: set[int] = set()

    def lose(a: Any) -> bool:  # every action is lost the first time it is asked for
        key = hash(repr(a))
        if key in lost:
            return False
        lost.add(key)
        return True

    run = upgrade(CANARY_TIMED, knobs=Knobs(lose=lose))
    assert run.status.phase == Phase.SUCCEEDED
    assert [ts.image for ts in run.observation.service.task_sets] == [image("2.0.0")]  # type: ignore[union-attr]
    assert sum(isinstance(a, EnsureTaskSet) for a in run.actions) == 2


def test_missing_service_changes_nothing_and_backs_off() -> None:
    from dataclasses import replace

    obs = replace(world("1.0.0"), service=None)
    d1 = decide(make_spec("2.0.0"), ReleaseStatus(), obs, ctx())
    assert d1.actions == () and cond(d1.status, ConditionType.READY) == ("False", "ServiceNotFound")
    d2 = decide(make_spec("2.0.0"), d1.status, obs, ctx(T0 + timedelta(seconds=60)))
    assert d1.requeue_after == 5 and d2.requeue_after == 60 and d2.events == ()


# --------------------------------------------------------------------------- ECS deployment controller


def test_ecs_controller_rolling_uses_update_service() -> None:
    base = drive(make_spec("1.0.0", {"type": "Rolling"}), world("1.0.0", controller="ECS"))
    run = drive(make_spec("2.0.0", {"type": "Rolling"}), base.observation, base.status, now=base.now)
    assert run.actions == [UpdateServiceImage("prod", "backend", "api", image("2.0.0"))]
    assert run.status.phase == Phase.SUCCEEDED and run.status.backend.stable_version == "2.0.0"


def test_ecs_controller_failed_deployment_is_rolled_back_once() -> None:
    base = drive(make_spec("1.0.0", {"type": "Fast"}), world("1.0.0", controller="ECS"))
    run = drive(make_spec("2.0.0", {"type": "Fast"}), base.observation, base.status, now=base.now,
                knobs=Knobs(ecs_rollout_state="FAILED"))
    assert run.status.phase == Phase.ROLLED_BACK and run.status.history[-1].result == "RolledBack"
    assert sum(isinstance(a, UpdateServiceImage) for a in run.actions) == 1


def test_canary_on_ecs_controller_is_refused_with_a_condition() -> None:
    obs = world("1.0.0", controller="ECS")
    base = drive(make_spec("1.0.0", {"type": "Canary"}), obs)
    d = decide(make_spec("2.0.0", {"type": "Canary"}), base.status, obs, ctx(base.now))
    assert d.actions == ()
    assert cond(d.status, ConditionType.PROGRESSING) == ("False", "DeploymentControllerNotExternal")
    # A refused spec is Failed and Stalled (phase and conditions agree; docs/gitops.md); what runs stays.
    assert d.status.phase == Phase.FAILED and d.status.backend.stable_version == "1.0.0"
    assert cond(d.status, ConditionType.STALLED) == ("True", "DeploymentControllerNotExternal")
    assert cond(d.status, ConditionType.READY) == ("False", "DeploymentControllerNotExternal")
    fresh = decide(make_spec("2.0.0", {"type": "Canary"}), ReleaseStatus(), obs, ctx())
    assert fresh.actions == () and fresh.status.phase == Phase.FAILED  # refused before it began: Failed, Stalled


def test_scale_and_primary_use_task_set_id_for_adopted_task_sets() -> None:
    run = upgrade({"type": "Rolling"})
    scales = [a for a in run.actions if isinstance(a, ScaleTaskSet) and a.external_id == ""]
    assert scales and all(a.task_set_id == "ts-0" for a in scales)
    assert all(a.external_id for a in run.actions if isinstance(a, SetPrimaryTaskSet))
