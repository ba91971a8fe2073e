"""The reconciler reads the Releases `spec.promotion.requires` names, only when a rollout may start,
and hands them to the planner: parsed, missing, or unreadable with the API server's status (a
missing RBAC grant shows as 403 Forbidden in the AwaitingUpstream message, nothing else of the
answer). The planner and the API server are small recording fakes of the reconciler's seams: what
is under test is what the reconciler reads and passes on; the real round trip is
tests/e2e/test_upstream.py."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Mapping

from kubernetes.client.exceptions import ApiException

from controller.api.release import ReleaseSpec, ReleaseStatus
from controller.planner.decision import Context, Decision
from controller.planner.strategy import target_hash
from controller.reconciler.driver import Reconciler
from tests.reconciler.test_reconciler_acts_for_existing_object import SPEC, Api

REQUIRES = {"requires": [{"release": {"namespace": "staging", "name": "app"}, "soak": "5s"},
                         {"release": {"namespace": "qa", "name": "app"}},
                         {"release": {"namespace": "locked", "name": "app"}}]}
STAGING = {"metadata": {"name": "app"}, "status": {"phase": "Succeeded", "backend": {"stableVersion": "2.0.0"}}}


@dataclass
class Planner:
    seen: list[Context] = field(default_factory=list)

    def decide(self, spec: Any, status: ReleaseStatus, observation: Any, ctx: Context) -> Decision:
        self.seen.append(ctx)
        return Decision(actions=(), status=status)

    def analysis_due(self, *args: Any) -> bool:
        return False


def read(namespace: str, name: str) -> Mapping[str, Any] | None:
    if namespace == "locked":
        raise ApiException(status=403, reason="Forbidden")
    return STAGING if namespace == "staging" else None


def run(status: dict[str, Any]) -> tuple[Context, list[tuple[str, str]]]:
    spec = copy.deepcopy(SPEC) | {"promotion": REQUIRES}
    obj = {"metadata": {"namespace": "production", "name": "app", "uid": "u", "generation": 1},
           "spec": spec, "status": status}
    reads: list[tuple[str, str]] = []

    def reader(namespace: str, name: str) -> Mapping[str, Any] | None:
        reads.append((namespace, name))
        return read(namespace, name)

    planner = Planner()
    Reconciler(
        observer=SimpleNamespace(observe=lambda key, spec, fresh: SimpleNamespace(errors=()),  # type: ignore[arg-type]
                                 forget=lambda key: None),
        applier=lambda actions, observation: None, planner=planner, sink=Api(obj), upstream=reader,
        clock=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    ).reconcile(obj)
    return planner.seen[0], reads


def test_upstream_releases_are_read_when_a_rollout_may_start() -> None:
    ctx, reads = run({})
    assert reads == [("staging", "app"), ("qa", "app"), ("locked", "app")]
    staging, qa, locked = ctx.upstream
    assert staging.status is not None and staging.status.backend.stable_version == "2.0.0" and staging.error is None
    assert qa.status is None and qa.error is None
    assert locked.status is None and locked.error == "403 Forbidden"


def test_not_read_once_the_rollout_to_this_spec_has_started() -> None:
    spec = ReleaseSpec.model_validate(copy.deepcopy(SPEC) | {"promotion": REQUIRES})
    ctx, reads = run({"revision": 1, "targetHash": target_hash(spec), "phase": "Progressing"})
    assert reads == [] and ctx.upstream == ()
