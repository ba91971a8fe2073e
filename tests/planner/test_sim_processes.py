"""Two operator processes over one world (tests/planner/sim_processes.py): the real Reconciler and
Leadership, pauses, API server outages and clocks 10 minutes off; a few hundred seeds here, 10,000
with `python -m tests.planner.sim_processes 0 10000` (figures in the closing note of the branch)."""

from __future__ import annotations

import logging

import pytest

from tests.planner.sim_processes import Sim, run_seeds


@pytest.fixture(autouse=True)
def quiet() -> None:
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


def test_two_processes_never_both_write_keep_pauses_and_finish() -> None:
    report = run_seeds(range(0, 60))
    assert report.failures == {}
    assert report.handovers > 0, "no seed changed the writer: the faults did not bite"


def test_a_process_paused_mid_pass_past_its_renew_deadline_acts_on_nothing_it_decided() -> None:
    """The leader decides, then stops for 30 s before acting; the other takes over meanwhile. On
    resuming, the fence stops every action it had decided."""
    sim = Sim(3)
    sim.faults_until = 0.0  # no random faults: only this one
    while not sim.procs[0].lead.leading and not sim.procs[1].lead.leading:
        sim._tick()
    leader = next(p for p in sim.procs if p.lead.leading)
    leader.pause_mid_pass = 30.0
    assert sim.run() == []
    writers = [w[1] for w in sim.aws.writes]
    assert sim.done() and len(set(writers)) == 2, writers
    # After the other process first wrote, the paused one never wrote again.
    other = next(p.name for p in sim.procs if p is not leader)
    first = writers.index(other)
    assert leader.name not in writers[first:]
