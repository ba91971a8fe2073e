"""The reconciler and a Release's IAM role (`RoleScope`): every AWS read and change of a pass happens
inside the Release's scope, and the resync's batched read leaves out Releases with a role of their
own, which are read each inside its own scope. Recording fakes; the real thing against an
IAM-enforcing moto is tests/aws/test_roles.py and tests/e2e/test_tenancy_roles.py."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from controller.operator.app import PurePlanner
from controller.reconciler.driver import Reconciler
from tests.planner import sim
from tests.reconciler.test_reconciler_acts_for_existing_object import SPEC, Api


@dataclass
class Roles:
    roles: dict[str, str | None]
    inside: list[tuple[str, str]] = field(default_factory=list)  # the scope entered now, innermost last
    forgotten: list[tuple[str, str]] = field(default_factory=list)

    @contextmanager
    def acting_for(self, namespace: str, name: str) -> Iterator[None]:
        self.inside.append((namespace, name))
        try:
            yield
        finally:
            self.inside.pop()

    def own(self, namespace: str) -> bool:
        return self.roles.get(namespace) is None

    def forget(self, namespace: str, name: str) -> None:
        self.forgotten.append((namespace, name))


@dataclass
class Observer:
    roles: Roles
    reads: list[tuple[Any, ...]] = field(default_factory=list)  # (keys, the scope they were read in)

    def observe(self, key: Any, spec: Any, fresh: bool) -> Any:
        self.reads.append(((key,), tuple(self.roles.inside)))
        return sim.world("1.0.0")

    def observe_many(self, items: Any) -> dict[Any, Any]:
        keys = tuple(key for key, _ in items)
        self.reads.append((keys, tuple(self.roles.inside)))
        return {key: sim.world("1.0.0") for key in keys}

    def forget(self, key: Any) -> None:
        pass


def body(namespace: str, name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "uid": f"u-{name}", "generation": 1},
            "spec": copy.deepcopy(SPEC), "status": {}}


def test_a_pass_reads_and_applies_inside_its_releases_scope_and_resync_reads_roles_apart() -> None:
    roles = Roles({"team-a": "arn:aws:iam::111122223333:role/release-team-a", "team-b": None})
    observer = Observer(roles)
    applied_in: list[tuple[tuple[str, str], ...]] = []
    reconciler = Reconciler(
        observer=observer, planner=PurePlanner(), sink=Api(body("team-a", "shop")), roles=roles,
        applier=lambda actions, observation: applied_in.append(tuple(roles.inside)),
        clock=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    )
    reconciler.reconcile(body("team-a", "shop"))
    assert observer.reads == [((("team-a", "shop"),), (("team-a", "shop"),))]
    assert applied_in and all(scope == (("team-a", "shop"),) for scope in applied_in)

    observer.reads.clear()
    reconciler.resync([(("team-b", "one"), body("team-b", "one")), (("team-a", "shop"), body("team-a", "shop")),
                       (("team-b", "two"), body("team-b", "two"))])
    batched, *alone = observer.reads
    assert batched == ((("team-b", "one"), ("team-b", "two")), ())  # the operator's own: one batch
    assert alone == [((("team-a", "shop"),), (("team-a", "shop"),))]  # its role's: apart, in its scope

    reconciler.release(("team-a", "shop"))
    assert roles.forgotten == [("team-a", "shop")]
