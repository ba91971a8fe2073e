"""AWS that does not answer for longer than a few polls: Ready=False / Reconciling=True with reason
AwsUnreachable (the last error, naming the endpoint), one Warning Event, the timers held; when AWS
answers again the rollout goes on from where it stood and the condition clears.

The planner is the real one over the simulated world of tests/planner/sim.py; the observer is a
switch between that world and the error a dead endpoint gives (what tests/aws/test_unreachable.py
shows the real observer returns), so the clock can be driven. The e2e version stops moto.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from controller.api.release import ReleaseStatus
from controller.operator.app import PurePlanner
from controller.planner.world import Observation, ObservationError
from controller.reconciler.driver import Reconciler
from tests.planner.sim import apply, drive, make_spec, world

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "60s"}},
                                                 {"setWeight": 60}]}}
ERROR = ObservationError("AwsUnreachable", 'ECS cluster c: Read timeout on endpoint URL: "http://127.0.0.1:5999/"', True)


@dataclass
class Sink:
    obj: dict[str, Any]
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def current(self, namespace: str, name: str) -> dict[str, Any]:
        return self.obj

    def replace_status(self, namespace: str, name: str, status: dict[str, Any], uid: str | None = None,
                       resource_version: str | None = None) -> None:
        self.obj = {**self.obj, "status": status}

    def event(self, ref: Any, reason: str, message: str, type_: str = "Normal") -> None:
        self.events.append((reason, message, type_))


@dataclass
class Switch:
    world: Observation
    down: bool = False

    def observe(self, key: Any, spec: Any, fresh: bool) -> Observation:
        return Observation(errors=(ERROR,)) if self.down else self.world

    def forget(self, key: Any) -> None:
        pass


def cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def test_an_outage_says_aws_unreachable_holds_the_pause_and_clears_when_aws_answers() -> None:
    spec = make_spec("2.0.0", CANARY)
    base = drive(make_spec("1.0.0", CANARY), world("1.0.0"))
    mid = drive(spec, base.observation, base.status, now=base.now,
                until=lambda p: p.decision.status.current_step == 1 and p.decision.status.backend.canary_weight == 20)
    status: ReleaseStatus = mid.status
    assert status.step_started_at is not None
    clock = [mid.now]
    switch = Switch(mid.observation)
    sink = Sink({"metadata": {"namespace": "default", "name": "web", "uid": "u1", "generation": 1},
                 "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True), "status": status.to_wire()})

    def applier(actions: Any, observation: Any) -> None:
        switch.world = apply(switch.world, actions)

    rec = Reconciler(observer=switch, applier=applier, planner=PurePlanner(), sink=sink, clock=lambda: clock[0])

    switch.down = True
    rec.reconcile(sink.obj)  # one failed poll: a blip, nothing said yet
    assert cond(sink.obj, "Ready")["reason"] != "AwsUnreachable" and sink.events == []
    for _ in range(14):  # 70 s: longer than the 60 s pause
        clock[0] += dt.timedelta(seconds=5)
        rec.reconcile(sink.obj)
    ready, reconciling, stalled = (cond(sink.obj, t) for t in ("Ready", "Reconciling", "Stalled"))
    assert (ready["status"], ready["reason"]) == ("False", "AwsUnreachable")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "AwsUnreachable")
    assert stalled["status"] == "False"
    assert "http://127.0.0.1:5999/" in ready["message"] and "timers are held" in ready["message"]
    assert "timers are held" in sink.obj["status"]["message"]
    assert [(r, t) for r, _, t in sink.events] == [("AwsUnreachable", "Warning")]  # once, not per poll
    outage = clock[0] - mid.now

    switch.down = False
    clock[0] += dt.timedelta(seconds=1)
    rec.reconcile(sink.obj)
    after = ReleaseStatus.model_validate(sink.obj["status"])
    # The outage (first failed poll to the first answer) does not count against the pause.
    assert after.step_started_at == status.step_started_at + outage + dt.timedelta(seconds=1)
    assert cond(sink.obj, "Ready")["reason"] != "AwsUnreachable"
    assert cond(sink.obj, "Reconciling")["reason"] != "AwsUnreachable"
    assert after.current_step == 1 and after.backend.canary_weight == 20  # the 60 s pause has not run down
