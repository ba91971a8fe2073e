"""The reconciler's refusals, given to the planner (`Context.refusal`): the conditions, Events and
next look each gets, decided in `planner/refusal.py` through `standing` like every other condition
(the reconciler builds none). Driven from a Release mid-rollout on the one fake world."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from controller.api.release import ConditionType, Phase, ReleaseStatus
from controller.planner import Outcome, Refusal, decide
from controller.planner.world import Observation

from tests.planner.sim import ctx, drive, make_spec, world

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "60s"}}]}}


def mid_rollout() -> tuple[ReleaseStatus, Observation, object]:
    base = drive(make_spec("1.0.0", CANARY), world("1.0.0"))
    spec = make_spec("2.0.0", CANARY)
    mid = drive(spec, base.observation, base.status, now=base.now,
                until=lambda p: p.decision.status.backend.canary_weight == 20)
    return mid.status, mid.observation, mid.now


def said(status: ReleaseStatus, type_: ConditionType) -> tuple[str, str]:
    c = next(c for c in status.conditions if c.type == type_)
    return c.status, c.reason


def test_each_refusal_is_said_in_the_conditions_with_its_own_next_look_and_nothing_moves() -> None:
    status, obs, now = mid_rollout()
    spec = make_spec("2.0.0", CANARY)
    cases = {
        "Conflict": (10.0, Outcome.REFUSED, ("True", "Conflict"), ("False", "Idle")),
        "InvalidTraffic": (60.0, Outcome.REFUSED, ("True", "InvalidTraffic"), ("False", "Idle")),
        "Throttling": (None, Outcome.BLOCKED, ("False", "Idle"), ("True", "Throttling")),
    }
    for reason, (after, outcome, stalled, reconciling) in cases.items():
        d = decide(spec, status, obs, replace(ctx(now), refusal=Refusal(reason, f"{reason} here")))
        assert d.actions == () and d.requeue_after == after and d.outcome == outcome, reason
        assert said(d.status, ConditionType.READY) == ("False", reason)
        assert said(d.status, ConditionType.STALLED) == stalled and said(d.status, ConditionType.RECONCILING) == reconciling
        assert d.status.phase == Phase.PROGRESSING and d.status.backend == status.backend  # where it stood
        assert [(e.reason, e.type) for e in d.events] == [(reason, "Warning")]
        again = decide(spec, d.status, obs, replace(ctx(now), refusal=Refusal(reason, f"{reason} here")))
        assert again.events == ()  # said once, not on every pass


def test_an_invalid_spec_fails_the_release_without_a_spec_and_says_so_on_every_pass() -> None:
    status, _, now = mid_rollout()
    d = decide(None, status, Observation(), replace(ctx(now), refusal=Refusal("InvalidSpec", "spec.backend: required")))
    assert d.status.phase == Phase.FAILED and d.requeue_after is None and d.actions == ()
    assert said(d.status, ConditionType.STALLED) == ("True", "InvalidSpec")
    assert d.status.message == "spec.backend: required" and [e.reason for e in d.events] == ["InvalidSpec"]


def test_aws_unreachable_is_a_blip_for_a_few_seconds_then_says_since_when() -> None:
    status, obs, now = mid_rollout()
    spec = make_spec("2.0.0", CANARY)
    down = Refusal("AwsUnreachable", "ECS: Read timeout", since=now)
    blip = decide(spec, status, obs, replace(ctx(now + timedelta(seconds=5)), refusal=down))
    assert blip.status == status and blip.events == () and blip.outcome == Outcome.BLOCKED
    said_ = decide(spec, status, obs, replace(ctx(now + timedelta(seconds=10)), refusal=down))
    assert said(said_.status, ConditionType.READY) == ("False", "AwsUnreachable")
    assert "has not answered since" in said_.status.message and "ECS: Read timeout" in said_.status.message


def test_an_action_refused_part_way_is_said_on_the_decision_it_interrupted() -> None:
    status, obs, now = mid_rollout()
    spec = make_spec("2.0.0", CANARY)
    later = ctx(now + timedelta(seconds=61))
    moved = decide(spec, status, obs, later)  # the pause is over: the next step
    assert moved.actions
    d = decide(spec, status, obs, replace(later, refusal=Refusal("Throttling", "Rate exceeded", during=moved)))
    assert d.actions == () and d.outcome == Outcome.BLOCKED
    assert d.status.current_step == moved.status.current_step  # what it decided is kept, AWS says the rest
    assert said(d.status, ConditionType.READY) == ("False", "Throttling")
