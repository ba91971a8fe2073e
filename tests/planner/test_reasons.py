"""Every reason the planner writes (conditions and Events) is a member of `api.reasons.Reason`,
and so is listed in the CRD's description of status.conditions."""

from __future__ import annotations

from controller.api.reasons import CONDITION_REASONS_DOC, Reason
from controller.api.release import ReleaseStatus
from controller.planner import Requests

from tests.planner.sim import Knobs, Run, drive, make_spec
from tests.planner.test_strategies import CANARY_PROMOTE, CANARY_TIMED, upgrade
from tests.planner.test_tiers_canary import FAST, base, frontend
from tests.planner.sim import drive as tiers_drive


def reasons(run: Run) -> set[str]:
    out: set[str] = set()
    for p in run.passes:
        out |= {e.reason for e in p.decision.events}
        out |= {c.reason for c in p.decision.status.conditions}
    return out


def test_the_planners_reasons_are_named_and_documented() -> None:
    waiting = upgrade(CANARY_PROMOTE)
    runs = [
        upgrade(CANARY_TIMED), upgrade({"type": "BlueGreen"}), waiting,
        drive(waiting.spec, waiting.observation, waiting.status, now=waiting.now, requests=Requests(abort="a")),
        upgrade({"type": "BlueGreen"}, spec={"progressDeadline": "1m"}, knobs=Knobs(stabilizing=True)),
    ]
    b = base()
    runs.append(tiers_drive(make_spec("1.0.0", FAST, frontend=frontend("2.0.0")), b.observation, b.status, now=b.now))
    seen = set().union(*(reasons(r) for r in runs))
    assert {"RolloutStarted", "Promoted", "Succeeded", "Aborted", "ProgressDeadlineExceeded", "FrontendCanary"} <= seen
    assert seen <= {r.value for r in Reason}
    assert all(r.value in CONDITION_REASONS_DOC for r in Reason)
    assert ReleaseStatus.model_fields["conditions"].description == CONDITION_REASONS_DOC
