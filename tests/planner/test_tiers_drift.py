"""Planner tables: drift of a steady Release is detected, named, and reverted (or only reported);
a rollout in progress is never drift."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from controller.api.release import ConditionType, Phase
from controller.planner import decide
from controller.planner.actions import (
    DeleteTaskSet,
    EnsureTaskSet,
    PublishFlags,
    ScaleTaskSet,
    SetListenerWeights,
    SetOriginPath,
    SetPrimaryTaskSet,
)
from controller.planner.conditions import find
from controller.planner.world import Listener, Observation, TaskSet

from tests.planner.sim import BLUE, DIST, GREEN, LISTENER, ctx, drive, image, make_spec, world

FE = {"version": "1.0.0", "cloudfront": {"distributionId": DIST, "originId": "web"}}
CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "5m"}}]}}


def steady(on_drift: str = "Revert", strategy: dict[str, Any] | None = None) -> Any:
    spec = make_spec("1.0.0", strategy or {"type": "Fast"}, frontend=FE, featureFlags={"a": True},
                     rollback={"onDrift": on_drift})
    run = drive(spec, world("1.0.0", frontend_path="/releases/1.0.0"))
    assert run.status.phase == Phase.SUCCEEDED and run.passes[-1].decision.actions == ()
    return run


def weights(obs: Observation) -> Observation:
    return replace(obs, listener=Listener(LISTENER, {BLUE: 70, GREEN: 30}))


def stranger(obs: Observation) -> Observation:
    svc = obs.service
    assert svc is not None
    hand = TaskSet(id="ts-hand", arn="arn:ts-hand", external_id=None, task_definition="backend:9", image=image("9.9.9"),
                   scale_percent=100.0, status="PRIMARY", target_group_arn=BLUE)
    ours = tuple(replace(t, status="ACTIVE") for t in svc.task_sets)
    return replace(obs, service=replace(svc, task_sets=(*ours, hand)))


def scaled(obs: Observation) -> Observation:
    svc = obs.service
    assert svc is not None
    return replace(obs, service=replace(svc, task_sets=tuple(replace(t, scale_percent=50.0) for t in svc.task_sets)))


def origin(obs: Observation) -> Observation:
    assert obs.frontend is not None
    return replace(obs, frontend=replace(obs.frontend, origin_path="/releases/0.9.0"))


def flags(obs: Observation) -> Observation:
    return replace(obs, flags={"a": False})


CASES = [
    (weights, "listener", "listener weights blue 70, green 30", [SetListenerWeights]),
    (stranger, "taskset", "unexpected task set ts-hand", [SetPrimaryTaskSet, ScaleTaskSet, DeleteTaskSet]),
    (scaled, "taskset", "at 50% scale, want 100%", [ScaleTaskSet]),
    (origin, "origin", "path is /releases/0.9.0, want /releases/1.0.0", [SetOriginPath]),
    (flags, "flags", "published flags differ from the spec in: a", [PublishFlags]),
]


@pytest.mark.parametrize("edit, resource, text, revert", CASES, ids=[c[1] + "-" + c[0].__name__ for c in CASES])
def test_drift_is_named_and_reverted(edit: Any, resource: str, text: str, revert: list[type]) -> None:
    base = steady()
    drifted = edit(base.observation)
    d = decide(base.spec, base.status, drifted, ctx(base.now))
    assert [type(a) for a in d.actions] == revert
    assert d.drift == (resource,)
    c = find(d.status.conditions, ConditionType.DRIFTED)
    assert c is not None and (c.status, c.reason) == ("True", "DriftReverting") and text in c.message
    assert [e.reason for e in d.events] == ["DriftDetected"] and d.events[0].type == "Warning"
    assert d.status.phase == Phase.SUCCEEDED and d.requeue_after is not None  # look again soon: did it land?
    # Converges, and says so.
    run = drive(base.spec, drifted, d.status, now=base.now)
    assert run.observation == base.observation or (
        run.observation.listener == base.observation.listener and run.observation.flags == base.observation.flags
        and run.observation.frontend == base.observation.frontend
        and [(t.image, t.scale_percent, t.status) for t in run.observation.service.task_sets]  # type: ignore[union-attr]
        == [(image("1.0.0"), 100.0, "PRIMARY")]
    )
    c = find(run.status.conditions, ConditionType.DRIFTED)
    assert c is not None and (c.status, c.reason) == ("False", "InSync")
    assert "DriftResolved" in run.events and run.passes[-1].decision.requeue_after is None


@pytest.mark.parametrize("edit, resource, text, revert", CASES, ids=[c[1] + "-" + c[0].__name__ for c in CASES])
def test_drift_under_report_changes_nothing(edit: Any, resource: str, text: str, revert: list[type]) -> None:
    base = steady("Report")
    drifted = edit(base.observation)
    d = decide(base.spec, base.status, drifted, ctx(base.now))
    assert d.actions == () and d.drift == (resource,)
    c = find(d.status.conditions, ConditionType.DRIFTED)
    assert c is not None and (c.status, c.reason) == ("True", "DriftDetected") and text in c.message
    again = decide(base.spec, d.status, drifted, ctx(base.now))
    assert again.actions == () and again.events == () and again.drift == ()  # reported once
    assert again.requeue_after is None and again.status.phase == Phase.SUCCEEDED
    # Someone puts it back by hand: Drifted goes False.
    clean = decide(base.spec, again.status, base.observation, ctx(base.now))
    assert find(clean.status.conditions, ConditionType.DRIFTED).status == "False"  # type: ignore[union-attr]


def test_deleted_task_set_is_recreated_before_traffic_moves() -> None:
    base = steady()
    svc = base.observation.service
    hand = TaskSet(id="ts-hand", arn="arn:ts-hand", external_id=None, task_definition="backend:9", image=image("9.9.9"),
                   scale_percent=100.0, status="PRIMARY", target_group_arn=BLUE)
    obs = replace(base.observation, service=replace(svc, task_sets=(hand,)))
    d = decide(base.spec, base.status, obs, ctx(base.now))
    assert [type(a) for a in d.actions] == [EnsureTaskSet]
    ensure = d.actions[0]
    assert isinstance(ensure, EnsureTaskSet) and ensure.image == image("1.0.0") and ensure.scale_percent == 100.0
    run = drive(base.spec, obs, d.status, now=base.now)
    assert [(t.image, t.status) for t in run.observation.service.task_sets] == [(image("1.0.0"), "PRIMARY")]  # type: ignore[union-attr]


def test_a_rollout_in_progress_is_not_drift() -> None:
    base = steady(strategy=CANARY)
    spec = make_spec("2.0.0", CANARY, frontend=FE, featureFlags={"a": True})
    mid = drive(spec, base.observation, base.status, now=base.now,
                until=lambda p: p.decision.status.backend.canary_weight == 20)
    assert mid.status.phase == Phase.PROGRESSING
    d = decide(spec, mid.status, mid.observation, ctx(mid.now))
    assert find(d.status.conditions, ConditionType.DRIFTED) is None and d.drift == ()
    assert not any(e.reason == "DriftDetected" for e in d.events)
    run = drive(spec, mid.observation, mid.status, now=mid.now)
    assert "DriftDetected" not in run.events and run.status.phase == Phase.SUCCEEDED


def test_the_warm_previous_version_is_not_drift() -> None:
    base = steady(strategy=CANARY)
    spec = make_spec("2.0.0", CANARY, frontend=FE, featureFlags={"a": True})
    run = drive(spec, base.observation, base.status, now=base.now,
                until=lambda p: p.decision.status.phase == Phase.SUCCEEDED)
    assert len(run.observation.service.task_sets) == 2  # type: ignore[union-attr]
    d = decide(spec, run.status, run.observation, ctx(run.now))
    assert d.drift == () and find(d.status.conditions, ConditionType.DRIFTED) is None
