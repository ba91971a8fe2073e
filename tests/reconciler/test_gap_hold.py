"""The hold of a leadership gap (`controller.reconciler.adjust.held_by_gap`): a rollout under way
when nobody could act has its timers moved on by the gap, once; one started after the gap has not
(a CI run: a Release created long after an API server outage got its 3-minute hold on its first
pass, and its 5 s pause said "76s left")."""

from __future__ import annotations

import datetime as dt

from controller.api.release import Phase, ReleaseStatus
from controller.reconciler.adjust import held_by_gap
from controller.reconciler.memory import Memory

GAP_ENDED = dt.datetime(2026, 12, 7, 19, 0, tzinfo=dt.timezone.utc)
GAP = 180.0


def rollout(started: dt.datetime) -> ReleaseStatus:
    return ReleaseStatus(phase=Phase.PROGRESSING, rollout_started_at=started, step_started_at=started)


def test_a_rollout_under_way_through_the_gap_is_held_by_it_once() -> None:
    mem = Memory()
    before = rollout(GAP_ENDED - dt.timedelta(seconds=GAP + 30))
    held = held_by_gap(mem, ("ns", "app"), before, 2, GAP, GAP_ENDED)
    assert held.step_started_at == before.step_started_at + dt.timedelta(seconds=GAP)
    assert held_by_gap(mem, ("ns", "app"), held, 2, GAP, GAP_ENDED) == held  # the same term: once


def test_a_rollout_started_after_the_gap_is_not_held() -> None:
    after = rollout(GAP_ENDED + dt.timedelta(minutes=10))
    assert held_by_gap(Memory(), ("ns", "app"), after, 2, GAP, GAP_ENDED) == after
