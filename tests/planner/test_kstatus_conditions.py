"""Ready, Reconciling and Stalled as kstatus (Flux, Helm) and our health.lua read them, pass by pass.

The invariants hold on every pass of a rollout: never Reconciling=True and Stalled=True together,
every condition carries the generation it was written for, Ready=True only when the spec is live,
and the phase never contradicts the conditions (docs/gitops.md).
"""

from __future__ import annotations

from datetime import timedelta

from controller.api.release import ConditionType, Phase, ReleaseStatus
from controller.planner import decide
from controller.planner.conditions import find
from controller.planner.decision import Requests
from tests.planner.sim import DIST, Run, ctx, drive, make_spec, world

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}},
                                                 {"setWeight": 60}]}}
FRONTEND = {"version": "2.0.0", "cloudfront": {"distributionId": DIST, "originId": "web"}}


def said(status: ReleaseStatus, type_: ConditionType) -> tuple[str, str] | None:
    c = find(status.conditions, type_)
    return (c.status, c.reason) if c else None


def assert_kstatus_invariants(run: Run) -> None:
    for p in run.passes:
        st = p.decision.status
        assert {c.observed_generation for c in st.conditions} == {1}, st.conditions
        rec, stalled = said(st, ConditionType.RECONCILING), said(st, ConditionType.STALLED)
        assert rec is not None and stalled is not None
        assert not (rec[0] == "True" and stalled[0] == "True"), (st.phase, rec, stalled)
        ready = said(st, ConditionType.READY)
        assert (ready is not None and ready[0] == "True") == (st.phase == Phase.SUCCEEDED), (st.phase, ready)
        if st.phase in (Phase.PROGRESSING, Phase.PAUSED) and stalled[0] == "False":
            assert rec[0] == "True", (st.phase, rec)
        if st.phase in (Phase.ROLLED_BACK, Phase.FAILED):
            assert stalled[0] == "True", (st.phase, stalled)
        for inactive in (rec, stalled):
            assert inactive[0] == "True" or inactive[1] == "Idle"


def test_a_canary_reconciles_until_live_then_is_ready_and_idle() -> None:
    base = drive(make_spec("1.0.0", CANARY), world("1.0.0"))
    run = drive(make_spec("2.0.0", CANARY), base.observation, base.status, now=base.now)
    assert_kstatus_invariants(run)
    phases = {p.decision.status.phase for p in run.passes}
    assert Phase.PROGRESSING in phases and run.status.phase == Phase.SUCCEEDED
    assert said(run.status, ConditionType.READY) == ("True", "Succeeded")
    assert said(run.status, ConditionType.RECONCILING) == ("False", "Idle")
    assert said(run.status, ConditionType.STALLED) == ("False", "Idle")


def test_abort_stalls_and_a_new_rollout_clears_it() -> None:
    base = drive(make_spec("1.0.0", CANARY), world("1.0.0"))
    running = drive(make_spec("2.0.0", CANARY), base.observation, base.status, now=base.now,
                    until=lambda p: p.decision.status.backend.canary_weight == 20)
    aborted = drive(make_spec("2.0.0", CANARY), running.observation, running.status, now=running.now,
                    requests=Requests(abort="1"))
    assert_kstatus_invariants(aborted)
    assert aborted.status.phase == Phase.ROLLED_BACK
    assert said(aborted.status, ConditionType.STALLED) == ("True", "Aborted")
    # A new spec: the previous rollout's Stalled and Progressing=False/Aborted are replaced at once.
    d = decide(make_spec("3.0.0", CANARY), aborted.status, aborted.observation,
               ctx(aborted.now + timedelta(seconds=1), requests=Requests(abort="1")))
    assert d.status.phase == Phase.PROGRESSING
    assert said(d.status, ConditionType.STALLED) == ("False", "Idle")
    assert said(d.status, ConditionType.RECONCILING) == ("True", "RolloutStarted") or \
        said(d.status, ConditionType.RECONCILING)[0] == "True"  # type: ignore[index]
    assert said(d.status, ConditionType.PROGRESSING)[0] == "True"  # type: ignore[index]
    assert said(d.status, ConditionType.READY) is not None and said(d.status, ConditionType.READY)[0] == "False"  # type: ignore[index]


def test_an_incompatible_frontend_stalls_with_phase_and_progressing_agreeing() -> None:
    base = drive(make_spec("1.0.0", {"type": "Fast"}, frontend=FRONTEND), world("1.0.0", frontend_path="/releases/2.0.0"))
    spec = make_spec("2.0.0", {"type": "Fast"}, frontend={**FRONTEND, "version": "3.0.0", "requiresBackend": ">=3.0.0"})
    run = drive(spec, base.observation, base.status, now=base.now, max_passes=20,
                until=lambda p: said(p.decision.status, ConditionType.STALLED) == ("True", "IncompatibleBackend"))
    assert_kstatus_invariants(run)
    st = run.status
    # The rollout is open (the backend is live, the frontend waits for a spec it can serve): phase
    # Progressing with Progressing=True, and Stalled=True because only a new spec moves it.
    assert st.phase == Phase.PROGRESSING
    assert said(st, ConditionType.PROGRESSING) == ("True", "IncompatibleBackend")
    assert said(st, ConditionType.READY) == ("False", "IncompatibleBackend")
    assert said(st, ConditionType.RECONCILING) == ("False", "Idle")


def test_a_paused_rollout_is_reconciling_not_stalled() -> None:
    base = drive(make_spec("1.0.0", CANARY), world("1.0.0"))
    run = drive(make_spec("2.0.0", CANARY, paused=True), base.observation, base.status, now=base.now, max_passes=5,
                exact=True)
    assert_kstatus_invariants(run)
    assert run.status.phase == Phase.PAUSED
    assert said(run.status, ConditionType.RECONCILING) == ("True", "Paused")
    assert said(run.status, ConditionType.STALLED) == ("False", "Idle")
