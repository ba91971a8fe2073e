"""A status written before the frontend had its own step timer (`status.frontend.stepStartedAt`)
is decided the same: the previous version kept the frontend canary's timer in `status.stepStartedAt`."""

from __future__ import annotations

from controller.api.release import ConditionType, Phase, ReleaseStatus
from controller.planner.conditions import find

from tests.planner.test_tiers_canary import FAST, base, frontend
from tests.planner.sim import make_spec
from tests.planner.sim import drive


def as_previous_version(status: ReleaseStatus) -> ReleaseStatus:
    """The same rollout as the previous version wrote it: one timer, moved by the frontend's steps."""
    assert status.frontend.step_started_at is not None
    return status.model_copy(update={
        "step_started_at": status.frontend.step_started_at,
        "frontend": status.frontend.model_copy(update={"step_started_at": None}),
    })


def test_a_frontend_pause_in_a_previous_versions_status_lasts_as_long() -> None:
    b = base()
    spec = make_spec("1.0.0", FAST, frontend=frontend("2.0.0"))

    def pausing(p: object) -> bool:
        st = p.decision.status  # type: ignore[attr-defined]
        cond = find(st.conditions, ConditionType.PROGRESSING)
        return st.frontend.current_step == 1 and cond is not None and cond.reason == "Pausing"

    first = drive(spec, b.observation, b.status, now=b.now, until=pausing)
    assert first.status.frontend.current_step == 1
    new = drive(spec, first.observation, first.status, now=first.now)
    old = drive(spec, first.observation, as_previous_version(first.status), now=first.now)
    assert new.status.phase == old.status.phase == Phase.SUCCEEDED
    assert [p.now for p in new.passes] == [p.now for p in old.passes]  # the pause ends at the same time
    assert new.actions == old.actions and new.events == old.events
