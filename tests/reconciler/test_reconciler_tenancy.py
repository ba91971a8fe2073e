"""The reconciler's tenancy gate: a Release no ReleasePolicy allows is refused before any claim or
AWS read (Ready=False, Stalled=True, NotPermitted, a Warning Event), a policy that cannot be read
refuses too (fail closed), and a deletion's abort is let through. The seams are recording fakes; the
real round trip, as a client-certificate user, is tests/e2e/test_tenancy.py."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from controller.api.release import ReleaseSpec
from controller.kube.claims import Conflict, Holder
from controller.operator.app import PurePlanner
from controller.reconciler.driver import Reconciler
from tests.reconciler.test_reconciler_acts_for_existing_object import SPEC, Api


@dataclass
class Gate:
    answer: str | None = None
    error: Exception | None = None
    asked: list[str] = field(default_factory=list)

    def refusal(self, namespace: str, spec: ReleaseSpec) -> str | None:
        self.asked.append(namespace)
        if self.error is not None:
            raise self.error
        return self.answer


@dataclass
class Events(Api):
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def event(self, ref: Any, reason: str, message: str, type_: str = "Normal") -> None:
        self.events.append((reason, message, type_))


@dataclass
class Claims:
    claimed: list[Holder] = field(default_factory=list)

    def claim(self, holder: Holder, resources: Any) -> Conflict | None:
        self.claimed.append(holder)
        return None

    def release(self, holder: Holder) -> list[str]:
        return []


def run(gate: Gate) -> tuple[Events, Claims, list[Any]]:
    obj = {"metadata": {"namespace": "team-a", "name": "app", "uid": "u", "generation": 1},
           "spec": copy.deepcopy(SPEC), "status": {}}
    api, claims, observed = Events(obj), Claims(), []

    def observe(key: Any, spec: Any, fresh: bool) -> Any:
        observed.append(key)
        return SimpleNamespace(errors=())

    # The real planner: the refusal reaches it as an input (it builds the conditions and the Event);
    # the observer and the claims above record that nothing read AWS or claimed anything.
    Reconciler(
        observer=SimpleNamespace(observe=observe, forget=lambda key: None),  # type: ignore[arg-type]
        applier=lambda actions, observation: None, planner=PurePlanner(), sink=api, claims=claims, tenancy=gate,  # type: ignore[arg-type]
        clock=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    ).reconcile(obj)
    return api, claims, observed


def conditions(api: Api) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in api.writes[-1]["conditions"]}


def test_a_refused_release_claims_nothing_and_reads_no_aws() -> None:
    message = "spec.backend.ecs 'prod/api' is not allowed for namespace team-a: a ReleasePolicy must allow it"
    api, claims, observed = run(Gate(message))
    assert claims.claimed == [] and observed == []
    got = conditions(api)
    assert (got["Ready"]["status"], got["Ready"]["reason"], got["Ready"]["message"]) == ("False", "NotPermitted", message)
    assert (got["Stalled"]["status"], got["Stalled"]["reason"]) == ("True", "NotPermitted")
    assert ("NotPermitted", message, "Warning") in api.events


def test_policies_that_cannot_be_read_refuse() -> None:
    api, claims, observed = run(Gate(error=PermissionError("403 with a long body")))
    assert claims.claimed == [] and observed == []
    ready = conditions(api)["Ready"]
    assert ready["reason"] == "NotPermitted" and "ReleasePolicies cannot be read (PermissionError)" in ready["message"]
    assert "long body" not in ready["message"]
