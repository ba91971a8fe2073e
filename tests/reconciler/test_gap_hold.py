"""The hold of a leadership gap (`controller.reconciler.adjust.held_by_gap`): a rollout under way
when nobody could act has its timers moved on by the gap, once; one started after the gap has not
(a CI run: a Release created long after an API server outage got its 3-minute hold on its first
pass, and its 5 s pause said "76s left")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from controller.api.release import Phase, ReleaseStatus
from controller.fencing import NotLeading
from controller.operator.app import PurePlanner
from controller.reconciler.driver import Reconciler
from controller.reconciler.adjust import held_by_gap
from controller.reconciler.memory import Memory
from tests.planner.sim import apply, drive, make_spec, world
from tests.reconciler.test_reconciler_aws_unreachable import CANARY, Sink, Switch

GAP_ENDED = dt.datetime(2026, 12, 7, 19, 0, tzinfo=dt.timezone.utc)
GAP = 180.0
BEGAN = GAP_ENDED - dt.timedelta(seconds=GAP)


def rollout(started: dt.datetime) -> ReleaseStatus:
    return ReleaseStatus(phase=Phase.PROGRESSING, rollout_started_at=started, step_started_at=started)


def test_a_rollout_under_way_through_the_gap_is_held_by_it_once() -> None:
    mem = Memory()
    before = rollout(GAP_ENDED - dt.timedelta(seconds=GAP + 30))
    held = held_by_gap(mem, ("ns", "app"), before, 2, GAP, BEGAN)
    assert held.step_started_at == before.step_started_at + dt.timedelta(seconds=GAP)
    assert held_by_gap(mem, ("ns", "app"), held, 2, GAP, BEGAN) == held  # the same term: once


def test_a_rollout_started_after_the_gap_is_not_held() -> None:
    after = rollout(GAP_ENDED + dt.timedelta(minutes=10))
    assert held_by_gap(Memory(), ("ns", "app"), after, 2, GAP, BEGAN) == after


class Terms:
    """A fence played by the test: the term, its gap, and whether the next check stops the pass."""

    def __init__(self) -> None:
        self.term, self.gaps, self.stop_writes = 1, {1: 0.0}, False

    def begin(self) -> int:
        return self.term

    def check(self, term: int | None = None) -> None:
        if self.stop_writes or (term is not None and term != self.term):
            raise NotLeading(f"the pass began in leadership term {term}; this is term {self.term}")

    def gap(self, term: int) -> float:
        return self.gaps.get(term, 0.0)


def test_a_term_ended_before_its_hold_was_written_leaves_the_hold_to_the_next_term() -> None:
    """An e2e run: term 2 began after a 198 s API server outage; its renewal answered late, so term 3
    began 0.5 s later with a gap of 1.5 s, and term 2's pass was stopped before its status write. The
    pause must still be held by both gaps, and only once."""
    old, spec = make_spec("1.0.0", CANARY), make_spec("2.0.0", CANARY)
    base = drive(old, world("1.0.0"))
    clock = [base.now]
    sink = Sink({"metadata": {"namespace": "default", "name": "web", "uid": "u1", "generation": 1},
                 "spec": old.model_dump(mode="json", by_alias=True, exclude_none=True), "status": base.status.to_wire()})
    terms = Terms()
    switch = Switch(base.observation)

    def applier(actions: Any, observation: Any) -> None:
        switch.world = apply(switch.world, actions)

    rec = Reconciler(observer=switch, applier=applier, planner=PurePlanner(), sink=sink, clock=lambda: clock[0],
                     fence=terms)
    rec.reconcile(sink.obj)  # term 1 begins (without a gap) before the rollout does
    sink.obj = {**sink.obj, "metadata": {**sink.obj["metadata"], "generation": 2},
                "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True)}
    for _ in range(60):  # term 1: the rollout starts and reaches its pause
        clock[0] += dt.timedelta(seconds=1)
        rec.reconcile(sink.obj)
        now = ReleaseStatus.model_validate(sink.obj["status"])
        if now.current_step == 1 and now.backend.canary_weight == 20:
            break
    paused_at = now.step_started_at
    assert now.current_step == 1 and paused_at is not None
    assert now.rollout_started_at is not None and now.rollout_started_at > base.now
    before = sink.obj["status"]

    clock[0] += dt.timedelta(seconds=198)
    terms.term, terms.gaps[2], terms.stop_writes = 2, 198.0, True
    with pytest.raises(NotLeading):
        rec.reconcile(sink.obj)  # term 2 ends before its status write
    assert sink.obj["status"] == before

    clock[0] += dt.timedelta(seconds=1.5)
    terms.term, terms.gaps[3], terms.stop_writes = 3, 1.5, False
    rec.reconcile(sink.obj)
    held = ReleaseStatus.model_validate(sink.obj["status"])
    assert held.step_started_at == paused_at + dt.timedelta(seconds=199.5)
    assert held.current_step == 1  # the 60 s pause has not run down

    clock[0] += dt.timedelta(seconds=5)
    terms.term = 4  # a term without a gap: nothing owed any more, nothing held again
    rec.reconcile(sink.obj)
    assert ReleaseStatus.model_validate(sink.obj["status"]).step_started_at == held.step_started_at
