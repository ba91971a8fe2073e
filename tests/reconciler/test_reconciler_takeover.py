"""Takeover through the front door: a Release that waited in Conflict and then holds what it names
(its owner was deleted, or an admin handed it over) makes its first change through its strategy,
never as a drift revert of what the previous owner left running. The real planner decides; the
world is the planner simulation's (tests/planner/sim.py); the claims let the Release in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from controller.api.release import ConditionType
from controller.kube.claims import Conflict, Holder
from controller.operator.app import PurePlanner
from controller.planner.actions import Action, EnsureTaskSet, SetListenerWeights
from controller.reconciler.driver import Reconciler
from controller.testing.specs import release_spec
from tests.planner import sim
from tests.reconciler.test_reconciler_acts_for_existing_object import Api

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}


@dataclass
class Recorded(Api):
    events: list[str] = field(default_factory=list)

    def event(self, ref: Any, reason: str, message: str, type_: str = "Normal") -> None:
        self.events.append(reason)


class Claims:
    def claim(self, holder: Holder, resources: Any) -> Conflict | None:
        return None  # the owner is gone, or handed it over: this Release now holds it

    def release(self, holder: Holder) -> list[str]:
        return []


def test_a_release_that_waited_in_conflict_takes_over_through_its_strategy() -> None:
    # It had released 1.0.0 here once (Succeeded); then another Release took the service over and
    # moved it to 2.0.0 while this one waited in Conflict.
    before = sim.settled("1.0.0", CANARY)
    assert before.status.phase == "Succeeded"
    waited = before.status.model_copy(update={"conditions": [
        c.model_copy(update={"status": "False", "reason": "Conflict", "message": "owned by ns/other"})
        if c.type == ConditionType.READY else c for c in before.status.conditions]})
    spec = release_spec(version="1.0.0", image=sim.image("1.0.0"), cluster="prod", service="backend",
                        traffic=(sim.LISTENER, sim.BLUE, sim.GREEN), strategy=CANARY)
    obj = {"metadata": {"namespace": "ns", "name": "app", "uid": "u", "generation": 1},
           "spec": spec, "status": waited.to_wire()}
    api, applied = Recorded(obj), list[Action]()

    def apply(actions: Any, observation: Any) -> None:
        applied.extend(actions)

    Reconciler(
        observer=type("O", (), {"observe": lambda self, key, spec, fresh: sim.world("2.0.0"),  # someone else's
                                "forget": lambda self, key: None})(),
        applier=apply, planner=PurePlanner(), sink=api, claims=Claims(),
        clock=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    ).reconcile(obj)

    assert "DriftDetected" not in api.events, api.events
    assert any(isinstance(a, EnsureTaskSet) and a.image == sim.image("1.0.0") for a in applied), applied
    # No step puts all the traffic on it: the first weight is the canary's first step, at most.
    weights = [a.weights for a in applied if isinstance(a, SetListenerWeights)]
    assert all(w.get(sim.GREEN, 0) <= 20 and w.get(sim.BLUE, 0) <= 100 for w in weights), weights
    written = api.writes[-1]
    assert written["phase"] == "Progressing", written
    drifted = [c for c in written["conditions"] if c["type"] == "Drifted" and c["status"] == "True"]
    assert not drifted, written["conditions"]


@dataclass
class Switch:
    """Claims and a tenancy gate whose answers the test changes between passes."""

    conflict: bool = True
    refusal: str | None = None

    def claim(self, holder: Holder, resources: Any) -> Conflict | None:
        return Conflict("ecs-service:prod/backend", Holder("ns", "other", "u2"), "ns") if self.conflict else None

    def release(self, holder: Holder) -> list[str]:
        return []

    def refusal_for(self, namespace: str, spec: Any) -> str | None:
        return self.refusal


def test_the_takeover_is_remembered_when_another_refusal_came_in_between() -> None:
    before = sim.settled("1.0.0", CANARY)
    spec = release_spec(version="1.0.0", image=sim.image("1.0.0"), cluster="prod", service="backend",
                        traffic=(sim.LISTENER, sim.BLUE, sim.GREEN), strategy=CANARY)
    obj = {"metadata": {"namespace": "ns", "name": "app", "uid": "u", "generation": 1},
           "spec": spec, "status": before.status.to_wire()}
    api, applied, switch = Recorded(obj), list[Action](), Switch()
    gate = type("G", (), {"refusal": lambda self, ns, spec: switch.refusal_for(ns, spec)})()
    reconciler = Reconciler(
        observer=type("O", (), {"observe": lambda self, key, spec, fresh: sim.world("2.0.0"),
                                "forget": lambda self, key: None})(),
        applier=lambda actions, observation: applied.extend(actions), planner=PurePlanner(), sink=api,
        claims=switch, tenancy=gate, clock=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    )
    reconciler.reconcile(obj)  # waits in Conflict
    assert any(c["reason"] == "Conflict" for c in api.writes[-1]["conditions"] if c["type"] == "Ready")
    switch.conflict, switch.refusal = False, "a ReleasePolicy is being changed"
    reconciler.reconcile(obj)  # refused for another reason: Ready no longer says Conflict
    assert not any(c["reason"] == "Conflict" for c in api.writes[-1]["conditions"] if c["type"] == "Ready")
    switch.refusal = None
    reconciler.reconcile(obj)  # holds it now: through the strategy, not a drift revert
    assert "DriftDetected" not in api.events, api.events
    assert any(isinstance(a, EnsureTaskSet) and a.image == sim.image("1.0.0") for a in applied), applied
    assert api.writes[-1]["phase"] == "Progressing"
