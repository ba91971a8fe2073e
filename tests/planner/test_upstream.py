"""Verified-upstream promotion (`spec.promotion.requires`): a new version waits, with AwaitingUpstream
and the time it will be satisfied, until the upstream Release has had it Succeeded and live for the
soak, then starts by itself; what is not a new version is never held."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from controller.api.release import ConditionType, HistoryEntry, ReleaseStatus
from controller.planner import decide
from controller.planner.conditions import find
from controller.planner.decision import Upstream

from tests.planner.sim import T0, ctx, drive, make_spec, settled

REQUIRES = {"promotion": {"requires": [{"release": {"namespace": "staging", "name": "pratiko"}, "soak": "1h"}]}}


def staging(*entries: tuple[str, str, datetime, datetime], stable: str | None = None) -> ReleaseStatus:
    """An upstream status whose history is (backend version, result, started, finished) entries."""
    history = [HistoryEntry(revision=i + 1, backend_version=v, result=r, started_at=s, finished_at=f)  # type: ignore[arg-type]
               for i, (v, r, s, f) in enumerate(entries)]
    last_ok = next((h.backend_version for h in reversed(history) if h.result == "Succeeded"), None)
    return ReleaseStatus.model_validate({
        "phase": "Succeeded", "history": [h.to_wire() for h in history],
        "backend": {"stableVersion": stable or last_ok},
    })


def upstream_of(status: ReleaseStatus | None, error: str | None = None) -> tuple[Upstream, ...]:
    return (Upstream("staging", "pratiko", status, error),)


def ready(status: ReleaseStatus) -> tuple[str, str, str]:
    c = find(status.conditions, ConditionType.READY)
    assert c is not None
    return c.status, c.reason, c.message


def production(version: str = "2.0.0", **over: Any) -> Any:
    return make_spec(version, **{**REQUIRES, **over})


def test_a_new_version_waits_for_the_soak_then_starts_by_itself_at_that_time() -> None:
    base = settled("1.0.0")
    up = upstream_of(staging(("2.0.0", "Succeeded", T0 - timedelta(minutes=20), T0 - timedelta(minutes=10))))
    first = decide(production(), base.status, base.observation, _ctx(base.now, up))
    assert first.actions == ()
    status, reason, message = ready(first.status)
    assert (status, reason) == ("False", "AwaitingUpstream")
    assert "staging/pratiko" in message and "backend 2.0.0" in message and "until 2025-01-01T12:50:00Z" in message
    assert first.requeue_after == (T0 + timedelta(minutes=50) - base.now).total_seconds()
    assert [e.reason for e in first.events] == ["AwaitingUpstream"]

    run = drive(production(), base.observation, base.status, now=base.now, upstream=lambda now: up)
    started = next(p for p in run.passes if p.decision.actions)
    assert started.now == T0 + timedelta(minutes=50)
    assert all(not p.decision.actions for p in run.passes if p.now < started.now)
    assert run.status.phase.value == "Succeeded" and run.status.backend.stable_version == "2.0.0"
    # Once, not per look: the Event says it when the wait begins.
    assert sum(e == "AwaitingUpstream" for e in run.events) == 1


def test_an_upstream_still_rolling_it_out_is_looked_at_again_until_it_succeeds() -> None:
    base = settled("1.0.0")
    done_at = T0 + timedelta(minutes=3)

    def seen(now: datetime) -> tuple[Upstream, ...]:
        if now < done_at:  # staging runs 2.0.0 as a canary: not verified
            return upstream_of(staging(("1.0.0", "Succeeded", T0 - timedelta(days=1), T0 - timedelta(days=1))))
        return upstream_of(staging(("1.0.0", "Succeeded", T0 - timedelta(days=1), T0 - timedelta(days=1)),
                                   ("2.0.0", "Succeeded", T0, done_at)))

    spec = make_spec("2.0.0", promotion={"requires": [{"release": {"namespace": "staging", "name": "pratiko"},
                                                       "soak": "5s"}]})
    run = drive(spec, base.observation, base.status, now=base.now, upstream=seen)
    waiting = run.passes[0]
    assert "has not had backend 2.0.0 Succeeded" in ready(waiting.decision.status)[2]
    assert waiting.decision.requeue_after == 10.0
    started = next(p for p in run.passes if p.decision.actions)
    assert done_at + timedelta(seconds=5) <= started.now <= done_at + timedelta(seconds=15)
    assert run.status.backend.stable_version == "2.0.0"


def test_a_version_replaced_after_the_soak_counts_one_rolled_back_before_it_never_does() -> None:
    base = settled("1.0.0")
    soaked = staging(("2.0.0", "Succeeded", T0 - timedelta(hours=5), T0 - timedelta(hours=4)),
                     ("3.0.0", "Succeeded", T0 - timedelta(hours=2), T0 - timedelta(hours=1)))
    go = decide(production(), base.status, base.observation, _ctx(base.now, upstream_of(soaked)))
    assert go.actions and ready(go.status)[1] != "AwaitingUpstream"

    undone = staging(("1.0.0", "Succeeded", T0 - timedelta(days=1), T0 - timedelta(days=1)),
                     ("2.0.0", "Succeeded", T0 - timedelta(hours=5), T0 - timedelta(hours=4)),
                     ("2.0.0", "RolledBack", T0 - timedelta(hours=5), T0 - timedelta(hours=4, minutes=-10)),
                     stable="1.0.0")
    held = decide(production(), base.status, base.observation, _ctx(base.now, upstream_of(undone)))
    assert held.actions == () and ready(held.status)[1] == "AwaitingUpstream"
    assert "has not had backend 2.0.0 Succeeded and live" in ready(held.status)[2]


def test_a_missing_or_unreadable_upstream_is_named_and_nothing_moves() -> None:
    base = settled("1.0.0")
    for given, said in ((upstream_of(None), "staging/pratiko not found"),
                        (upstream_of(None, "Forbidden"), "staging/pratiko cannot be read: Forbidden"),
                        ((), "staging/pratiko was not read")):
        d = decide(production(), base.status, base.observation, _ctx(base.now, given))
        assert d.actions == () and said in ready(d.status)[2]
        assert d.status.backend.stable_version == "1.0.0" and d.status.target_hash == base.status.target_hash


def test_the_frontend_version_must_match_too() -> None:
    fe = {"frontend": {"version": "2.0.0", "bucket": "b", "cloudfront": {"distributionId": "E2ABCDEF",
                                                                         "originId": "web"}}}
    base = settled("1.0.0")
    other_frontend = staging(("2.0.0", "Succeeded", T0 - timedelta(hours=5), T0 - timedelta(hours=4)))
    other_frontend = other_frontend.model_copy(update={"history": [
        h.model_copy(update={"frontend_version": "1.9.0"}) for h in other_frontend.history]})
    spec = production(**fe)
    d = decide(spec, base.status, base.observation, _ctx(base.now, upstream_of(other_frontend)))
    assert ready(d.status)[1] == "AwaitingUpstream" and "frontend 2.0.0" in ready(d.status)[2]


def test_adoption_and_a_flags_only_change_are_not_held() -> None:
    adopted = drive(production("1.0.0"), settled("1.0.0").observation)  # runs the spec already
    assert adopted.status.phase.value == "Succeeded"
    flags = production("1.0.0", featureFlags={"beta": True})
    d = decide(flags, adopted.status, adopted.observation, _ctx(adopted.now, upstream_of(None)))
    assert ready(d.status)[1] != "AwaitingUpstream"


def _ctx(now: datetime, upstream: tuple[Upstream, ...]) -> Any:
    base = ctx(now)
    return base.__class__(**{**base.__dict__, "upstream": upstream})
