"""Planner tables: the API-contract gate holds the frontend until the backend that serves traffic
is known to serve every operation the frontend uses."""

from __future__ import annotations

from typing import Any

from controller.api.release import ConditionType, Phase, ReleaseStatus
from controller.planner.actions import SetOriginPath
from controller.planner.conditions import find
from controller.planner.tiers import contract_target

from tests.planner.sim import DIST, contracts, drive, make_spec, world

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}}]}}
CONTRACT = {"openapiUrl": "http://api-{{version}}/openapi.json",
            "operations": [{"method": "POST", "path": "/api/v1/chat", "fields": ["answer"]}]}


def frontend(version: str, **extra: Any) -> dict[str, Any]:
    return {"version": version, "cloudfront": {"distributionId": DIST, "originId": "web"}, "apiContract": CONTRACT,
            **extra}


def settled() -> Any:
    return drive(make_spec("1.0.0", CANARY, frontend=frontend("1.0.0")), world("1.0.0", frontend_path="/releases/1.0.0"))


def test_the_contract_is_checked_once_the_new_backend_serves_and_then_the_frontend_moves() -> None:
    base = settled()
    spec = make_spec("2.0.0", CANARY, frontend=frontend("2.0.0"))
    asked: list[tuple[str, str | None]] = []

    def check(version: str) -> Any:
        asked.append((version, None))
        return contracts()(version)

    run = drive(spec, base.observation, base.status, now=base.now, contract=check)
    assert run.status.phase == Phase.SUCCEEDED
    assert asked and {v for v, _ in asked} == {"2.0.0"}  # never the old backend, never during the canary
    c = find(run.status.conditions, ConditionType.COMPATIBLE)
    assert c is not None and c.status == "True" and "backend 2.0.0 serves every API operation" in c.message
    assert run.observation.frontend.origin_path == "/releases/2.0.0"  # type: ignore[union-attr]


def test_a_broken_contract_holds_the_frontend_and_names_each_problem() -> None:
    base = settled()
    spec = make_spec("2.0.0", CANARY, frontend=frontend("2.0.0"))
    problems = {"2.0.0": ["POST /api/v1/chat: operation missing", "GET /api/v1/me: response field plan missing"]}
    run = drive(spec, base.observation, base.status, now=base.now, contract=contracts(problems), max_passes=40,
                until=lambda p: (c := find(p.decision.status.conditions, ConditionType.COMPATIBLE)) is not None
                and c.reason == "ApiContractBroken")
    again = drive(spec, run.observation, run.status, now=run.now, contract=contracts(problems), max_passes=3,
                  exact=True)
    st = again.status
    c = find(st.conditions, ConditionType.COMPATIBLE)
    assert c is not None and (c.status, c.reason) == ("False", "ApiContractBroken")
    assert "POST /api/v1/chat: operation missing" in c.message and "GET /api/v1/me: response field plan missing" in c.message
    assert "backend 2.0.0" in c.message
    ready = find(st.conditions, ConditionType.READY)
    assert ready is not None and ready.reason == "ApiContractBroken"
    assert not any(isinstance(a, SetOriginPath) for a in run.actions + again.actions)
    assert again.observation.frontend.origin_path == "/releases/1.0.0"  # type: ignore[union-attr]
    assert st.backend.stable_version == "2.0.0" and st.phase == Phase.PROGRESSING
    assert sum(e == "ApiContractBroken" for e in run.events + again.events) == 1  # said once, not every pass


def test_without_a_result_the_frontend_waits() -> None:
    base = settled()
    spec = make_spec("1.0.0", CANARY, frontend=frontend("2.0.0"))
    run = drive(spec, base.observation, base.status, now=base.now, contract=None, max_passes=5, exact=True)
    assert not any(isinstance(a, SetOriginPath) for a in run.actions)
    c = find(run.status.conditions, ConditionType.PROGRESSING)
    assert c is not None and "checking frontend 2.0.0's API contract against backend 1.0.0" in c.message


def test_an_unreachable_document_is_neither_pass_nor_fail() -> None:
    base = settled()
    spec = make_spec("1.0.0", CANARY, frontend=frontend("2.0.0"))
    run = drive(spec, base.observation, base.status, now=base.now, max_passes=3, exact=True,
                contract=contracts(error="GET http://api-1.0.0/openapi.json: ConnectError"))
    c = find(run.status.conditions, ConditionType.COMPATIBLE)
    assert c is not None and (c.status, c.reason) == ("Unknown", "ApiContractUnavailable") and "ConnectError" in c.message
    assert not any(isinstance(a, SetOriginPath) for a in run.actions)
    assert all(p.decision.requeue_after == 10.0 for p in run.passes)
    # Once the document is readable and fine, the frontend moves.
    ok = drive(spec, run.observation, run.status, now=run.now, contract=contracts())
    assert ok.observation.frontend.origin_path == "/releases/2.0.0"  # type: ignore[union-attr]


def test_contract_target_is_due_only_when_the_frontend_is_about_to_move() -> None:
    base = settled()
    obs, st = base.observation, base.status
    assert contract_target(make_spec("1.0.0", CANARY, frontend=frontend("1.0.0")), st, obs) is None  # nothing moves
    assert contract_target(make_spec("1.0.0", CANARY, frontend=frontend("2.0.0")), st, obs) == "1.0.0"
    # The backend changes too: it goes first, the contract is checked against it later.
    assert contract_target(make_spec("2.0.0", CANARY, frontend=frontend("2.0.0")), st, obs) is None
    in_canary = st.model_copy(update={"phase": Phase.PROGRESSING, "backend": st.backend.model_copy(
        update={"canary_image": "x:2.0.0"})})
    assert contract_target(make_spec("2.0.0", CANARY, frontend=frontend("2.0.0")), in_canary, obs) is None
    no_contract = {"version": "2.0.0", "cloudfront": {"distributionId": DIST, "originId": "web"}}
    assert contract_target(make_spec("1.0.0", CANARY, frontend=no_contract), st, obs) is None
    assert contract_target(make_spec("1.0.0", CANARY, frontend=frontend("2.0.0")), ReleaseStatus(), obs) == "1.0.0"
