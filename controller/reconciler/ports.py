"""The reconciler's ports: the small interfaces through which a pass observes, applies, measures,
claims and writes, and what a pass returns to the operator (`Outcome`). The operator process
(`controller.operator.app`) plugs the real effectors in; the tests and the simulation plug in fakes.
Must not: hold logic (each is a Protocol or a plain value).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from controller.api.release import Hook, Measurement, ReleaseSpec, ReleaseStatus
from controller.kube.claims import Conflict, Holder
from controller.kube.client import ObjectRef
from controller.planner.actions import Action
from controller.planner.decision import Context, ContractCheck, Decision, HookResult
from controller.planner.world import Observation

Key = tuple[str, str]


@dataclass(frozen=True)
class Outcome:
    """What one pass amounted to, for the operator's worker (its next wake-up, its lane)."""

    requeue_after: float | None
    phase: str
    wrote_status: bool
    actions: int
    revision: int = 0
    step: int = 0
    blocked: bool = False  # AWS could not be read or changed: the retry is nobody's change (runtime lanes)


class ObserverLike(Protocol):
    def observe(self, key: Key, spec: ReleaseSpec, fresh: bool) -> Observation: ...

    def observe_many(self, items: Sequence[tuple[Key, ReleaseSpec]]) -> Mapping[Key, Observation]:
        """Many worlds in batched reads; each is kept as that Release's snapshot (`fresh=False`)."""
        ...

    def forget(self, key: Key) -> None:
        """Drop the snapshot of a Release."""
        ...


class Applier(Protocol):
    def __call__(self, actions: Sequence[Action], observation: Observation) -> None: ...


class Measurer(Protocol):
    def __call__(self, spec: ReleaseSpec, status: ReleaseStatus, now: dt.datetime,
                 namespace: str = "") -> tuple[Measurement, ...]: ...


class ContractChecker(Protocol):
    """The API-contract gate's I/O: the backend's OpenAPI document (and a ConfigMap) read and checked."""

    def __call__(self, namespace: str, spec: ReleaseSpec, backend_version: str) -> ContractCheck: ...


class UpstreamReader(Protocol):
    """Reads another Release (`spec.promotion.requires`): the object, None when it does not exist;
    raises when it cannot be read (no RBAC grant in that namespace, say)."""

    def __call__(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...


class NotificationPlanner(Protocol):
    """`controller.notify.Notifications`, the ledger: queues the deliveries of the moments the
    decision produced (never blocking), and again the pending ones no worker holds, and returns the
    decision with them recorded in its status (pending until a sink accepted them, then sent).
    `carry`, for a refused pass: only what a sink accepted meanwhile moves to sent."""

    def plan(self, ref: ObjectRef, spec: ReleaseSpec, decision: Decision, now: dt.datetime) -> Decision: ...

    def carry(self, ref: ObjectRef, status: ReleaseStatus) -> ReleaseStatus: ...


class HookRunner(Protocol):
    """`controller.hooks.HookCalls`: one hook call, its result for the planner."""

    def __call__(self, namespace: str, name: str, uid: str, spec: ReleaseSpec, status: ReleaseStatus, point: str,
                 hook: Hook) -> HookResult: ...


class ClaimsLike(Protocol):
    def claim(self, holder: Holder, resources: Iterable[str]) -> Conflict | None:
        """Claim the resources for `holder`; a Conflict names the first owned by another Release."""
        ...

    def release(self, holder: Holder) -> list[str]:
        """Drop every claim of `holder`; returns the resources it held."""
        ...


class TenancyCheck(Protocol):
    """`controller.tenancy.gate.TenancyGate`: why this Release may not act at all (a ReleasePolicy or a
    Secret does not allow what it names); None when it may. May raise when the policies cannot be read."""

    def refusal(self, namespace: str, spec: ReleaseSpec) -> str | None: ...


class RoleScope(Protocol):
    """`controller.aws.roles.ReleaseRoles`: whose credentials a Release's AWS calls are made with (the
    IAM role its ReleasePolicy names, or the operator's own)."""

    def acting_for(self, namespace: str, name: str) -> AbstractContextManager[None]:
        """Every AWS call made inside is made with the Release's credentials (none is sent when they
        cannot be told)."""
        ...

    def own(self, namespace: str) -> bool:
        """Do this namespace's Releases use the operator's own credentials (so the batched read serves them)?"""
        ...

    def forget(self, namespace: str, name: str) -> None: ...


class TrafficCheck(Protocol):
    def refusal(self, spec: ReleaseSpec, observation: Observation) -> str | None:
        """Why the Release must not change the traffic it names (the wrong ARN named); None if its own."""
        ...


class Planner(Protocol):
    """`controller.planner.decide`; `spec` None: it does not validate (`ctx.refusal` says so)."""

    def decide(self, spec: ReleaseSpec | None, status: ReleaseStatus, observation: Observation,
               ctx: Context) -> Decision: ...


class StatusSink(Protocol):
    def current(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The object as the API server holds it now, None when it does not exist."""
        ...

    def replace_status(self, namespace: str, name: str, status: dict[str, Any], uid: str | None = None,
                       resource_version: str | None = None) -> str | None:
        """Write the status of the object with `uid`, at `resource_version` when given; raise
        ObjectGone when it does not exist, StaleStatus when it changed since that version; returns
        the object's new resourceVersion (None when the sink does not know it)."""
        ...

    def event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None: ...
