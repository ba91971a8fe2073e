"""A Release of several services through the reconciler (the pass as the operator runs it: the spec
parsed from the object, observed, decided, applied, one status write): the tier rolls out in order
and is promoted, and its status names every service. The world is tests/planner/sim.py's (the
observer against moto: tests/aws/test_observe_services.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from controller.api.release import Phase, ReleaseStatus
from controller.operator.app import PurePlanner
from controller.reconciler.driver import Reconciler
from tests.planner.sim import T0, apply, drive, tier_arns, tier_spec, tier_world
from tests.reconciler.test_reconciler_aws_unreachable import Sink, Switch

TIMED = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}}]}}


def green(obs: Any, name: str) -> int:
    listener = obs.services[name].listener
    return listener.weight(tier_arns(name)[2]) if listener is not None else -1


def test_a_tier_rolls_out_in_order_through_the_reconciler() -> None:
    base = drive(tier_spec("1.0.0", TIMED), tier_world("1.0.0"))
    spec = tier_spec("2.0.0", TIMED)
    switch = Switch(base.observation)
    sink = Sink({"metadata": {"namespace": "production", "name": "pratiko", "uid": "u1", "generation": 2},
                 "spec": spec.to_wire(), "status": base.status.to_wire()})
    assert "services" in sink.obj["spec"]["backend"] and "image" not in sink.obj["spec"]["backend"]
    clock = [base.now]
    seen: list[tuple[int, int]] = []

    def applier(actions: Any, observation: Any) -> None:
        switch.world = apply(switch.world, actions)
        seen.append((green(switch.world, "api"), green(switch.world, "mcp")))

    rec = Reconciler(observer=switch, applier=applier, planner=PurePlanner(), sink=sink, clock=lambda: clock[0])
    for _ in range(60):
        rec.reconcile(sink.obj)
        status = ReleaseStatus.model_validate(sink.obj["status"])
        if status.phase == Phase.SUCCEEDED and status.observed_generation == 2:
            break
        clock[0] += dt.timedelta(seconds=2)
    assert status.phase == Phase.SUCCEEDED and status.backend.stable_version == "2.0.0", status.message
    assert all(mcp <= api for api, mcp in seen)  # mcp never ahead of api
    assert any(api > 0 for api, _ in seen) and any(mcp == 100 for _, mcp in seen)
    entries = {e.name: e for e in status.backend.services}
    assert set(entries) == {"api", "mcp", "worker"}
    assert all(e.stable_image and e.stable_image.endswith(":2.0.0") for e in entries.values())
    assert clock[0] - T0 >= dt.timedelta(seconds=30)  # the pause ran
