"""`Decision.outcome`: what a pass amounted to, which the reconciler's metrics read (the rollback
counter counts exactly the passes whose Events said RolledBack before the outcome existed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from controller.api.release import ReleaseStatus
from controller.planner import Requests, decide
from controller.planner.decision import Outcome

from tests.planner.sim import Knobs, Run, ctx, drive, make_spec, world
from tests.planner.test_strategies import CANARY_PROMOTE, upgrade


def outcomes(run: Run) -> list[Outcome]:
    return [p.decision.outcome for p in run.passes]


def rolled_back_by_events(run: Run) -> list[bool]:
    return [any(e.reason == "RolledBack" for e in p.decision.events) for p in run.passes]


def test_a_rollout_progresses_then_succeeds_once_then_rests_unchanged() -> None:
    run = upgrade({"type": "Fast"})
    seen = outcomes(run)
    assert seen.count(Outcome.SUCCEEDED) == 1 and seen[0] == Outcome.PROGRESSED
    rest = decide(run.spec, run.status, run.observation, ctx(run.now + timedelta(hours=1)))
    assert rest.outcome == Outcome.UNCHANGED and rest.actions == ()


def test_abort_is_rolled_back_and_the_deadline_is_failed() -> None:
    waiting = upgrade(CANARY_PROMOTE)
    aborted = decide(waiting.spec, waiting.status, waiting.observation, ctx(waiting.now, Requests(abort="a")))
    assert aborted.outcome == Outcome.ROLLED_BACK
    late = upgrade({"type": "BlueGreen"}, spec={"progressDeadline": "1m"}, knobs=Knobs(stabilizing=True))
    assert Outcome.FAILED in outcomes(late) and Outcome.ROLLED_BACK not in outcomes(late)
    for run in (late, drive(waiting.spec, waiting.observation, waiting.status, now=waiting.now,
                            requests=Requests(abort="a"))):
        assert [o == Outcome.ROLLED_BACK for o in outcomes(run)] == rolled_back_by_events(run)


def test_refused_and_missing_world_are_named() -> None:
    obs = world("1.0.0", controller="ECS")
    base = drive(make_spec("1.0.0", {"type": "Canary"}), obs)
    refused = decide(make_spec("2.0.0", {"type": "Canary"}), base.status, obs, ctx(base.now))
    assert refused.outcome == Outcome.REFUSED
    missing = decide(make_spec("2.0.0"), ReleaseStatus(), replace(world("1.0.0"), service=None), ctx())
    assert missing.outcome == Outcome.WORLD_MISSING
