"""observe -> decide -> apply -> status: the one place where effects are sequenced.

A pass reads the Release and the world, asks the pure planner what to do, applies the actions
(each idempotent), then writes the whole status in one patch, skipped when unchanged. A pass can be
interrupted at any line: the next one re-observes AWS and the planner derives progress from what it
sees, so repeating a pass never duplicates an effect.

This module must not import kopf; the operator calls `Reconciler.reconcile` from a worker thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pydantic import ValidationError

from controller import metrics
from controller.api.release import (
    ConditionType,
    Measurement,
    Phase,
    ReleaseSpec,
    ReleaseStatus,
)
from controller.api.types import explain
from controller.errors import EffectError
from controller.kube import REQUEST_ANNOTATIONS, ObjectRef
from controller.planner.actions import Action
from controller.planner.conditions import set_condition
from controller.planner.decision import Context, ContractCheck, Decision, Event, Requests
from controller.planner.tiers import contract_target
from controller.planner.world import Observation

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300.0


class ObserverLike(Protocol):
    def observe(self, key: tuple[str, str], spec: ReleaseSpec, fresh: bool) -> Observation: ...


class Applier(Protocol):
    def __call__(self, actions: Sequence[Action], observation: Observation) -> None: ...


class Measurer(Protocol):
    def __call__(self, spec: ReleaseSpec, status: ReleaseStatus, now: dt.datetime) -> tuple[Measurement, ...]: ...


class ContractChecker(Protocol):
    """The API-contract gate's I/O: the backend's OpenAPI document (and a ConfigMap) read and checked."""

    def __call__(self, namespace: str, spec: ReleaseSpec, backend_version: str) -> ContractCheck: ...


class Planner(Protocol):
    def decide(self, spec: ReleaseSpec, status: ReleaseStatus, observation: Observation, ctx: Context) -> Decision: ...

    def analysis_due(self, spec: ReleaseSpec, status: ReleaseStatus, now: dt.datetime) -> bool: ...


class StatusSink(Protocol):
    def replace_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...

    def event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None: ...


@dataclass(frozen=True)
class Outcome:
    requeue_after: float | None
    phase: str
    wrote_status: bool
    actions: int


def _requests(annotations: Mapping[str, str]) -> Requests:
    return Requests(**{kind: annotations.get(key) for kind, key in REQUEST_ANNOTATIONS.items()})


@dataclass
class Reconciler:
    observer: ObserverLike
    applier: Applier
    planner: Planner
    sink: StatusSink
    measurer: Measurer | None = None
    contracts: ContractChecker | None = None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.timezone.utc))
    _failures: dict[tuple[str, str], int] = field(default_factory=dict)
    # The status this process last wrote, per Release: the watch may not have delivered it yet, and
    # deciding from an older status would repeat a step. Read-your-writes without an extra GET.
    _written: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def forget(self, key: tuple[str, str]) -> None:
        """Drop what this process remembers of a Release (a new worker starts from the API's view)."""
        self._failures.pop(key, None)
        self._written.pop(key, None)

    def reconcile(self, obj: Mapping[str, Any], *, fresh: bool = True) -> Outcome:
        """One pass for one Release object as read from the API server."""
        started = time.perf_counter()
        try:
            outcome = self._reconcile(obj, fresh=fresh)
            metrics.RECONCILE_TOTAL.labels("ok").inc()
            return outcome
        except Exception:
            metrics.RECONCILE_TOTAL.labels("error").inc()
            raise
        finally:
            metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)

    def _reconcile(self, obj: Mapping[str, Any], *, fresh: bool) -> Outcome:
        meta = obj.get("metadata", {})
        namespace, name = meta["namespace"], meta["name"]
        key = (namespace, name)
        ref = ObjectRef(namespace, name, meta.get("uid"))
        generation = int(meta.get("generation", 1))
        now = self.clock()
        raw_status = self._written.get(key) or obj.get("status") or {}
        try:
            status = ReleaseStatus.model_validate(raw_status)
        except ValidationError:
            log.warning("status of %s/%s is unreadable; starting from an empty one", namespace, name)
            status = ReleaseStatus()

        try:
            spec = ReleaseSpec.model_validate(obj.get("spec") or {})
        except ValidationError as exc:
            message = explain(list(exc.errors()))
            new = status.model_copy(
                update={
                    "phase": Phase.FAILED,
                    "observed_generation": generation,
                    "message": message,
                    "conditions": set_condition(status.conditions, ConditionType.READY, "False", "InvalidSpec", message, now),
                }
            )
            wrote = self._write(ref, raw_status, new, [Event("InvalidSpec", message, "Warning")])
            return Outcome(None, new.phase, wrote, 0)

        observation = self.observer.observe(key, spec, fresh)
        blocking = [e for e in observation.errors if not e.retryable] or list(observation.errors)
        if blocking:
            return self._blocked(ref, raw_status, status, generation, blocking[0].reason, blocking[0].message, now, spec)

        measurements: tuple[Measurement, ...] = ()
        if self.measurer is not None and spec.analysis.metrics and self.planner.analysis_due(spec, status, now):
            measurements = self.measurer(spec, status, now)
            for m in measurements:
                metrics.ANALYSIS_TOTAL.labels(m.verdict.value).inc()

        contract: ContractCheck | None = None
        version = contract_target(spec, status, observation) if self.contracts is not None else None
        if self.contracts is not None and version is not None:
            contract = self.contracts(namespace, spec, version)

        ctx = Context(namespace, name, generation, now, _requests(meta.get("annotations") or {}), measurements,
                      contract)
        decision = self.planner.decide(spec, status, observation, ctx)
        if not raw_status:
            decision = replace(decision, events=(_accepted(spec), *decision.events))

        try:
            self.applier(decision.actions, observation)
        except EffectError as exc:
            return self._blocked(ref, raw_status, decision.status, generation, exc.reason, exc.message, now, spec)

        self._failures.pop(key, None)
        for resource in decision.drift:
            metrics.DRIFT_TOTAL.labels(namespace, name, resource).inc()
        if any(event.reason == "RolledBack" for event in decision.events):
            why = next((c.reason for c in decision.status.conditions if c.type == ConditionType.READY), "RolledBack")
            metrics.ROLLBACKS_TOTAL.labels(namespace, name, why).inc()
        wrote = self._write(ref, raw_status, decision.status, decision.events)
        self._record(namespace, name, decision.status)
        return Outcome(decision.requeue_after, decision.status.phase, wrote, len(decision.actions))

    def _blocked(
        self, ref: ObjectRef, raw_status: Mapping[str, Any], status: ReleaseStatus, generation: int,
        reason: str, message: str, now: dt.datetime, spec: ReleaseSpec | None = None,
    ) -> Outcome:
        """AWS cannot be read or changed as asked: say why, change nothing, retry with backoff."""
        key = (ref.namespace, ref.name)
        attempts = self._failures.get(key, 0) + 1
        self._failures[key] = attempts
        new = status.model_copy(
            update={
                "observed_generation": generation,
                "message": message,
                "conditions": set_condition(status.conditions, ConditionType.READY, "False", reason, message, now),
            }
        )
        previous_reason = next(
            (c.get("reason") for c in raw_status.get("conditions", []) if c.get("type") == "Ready"), None
        )
        events = [Event(reason, message, "Warning")] if previous_reason != reason else []
        if not raw_status and spec is not None:
            events.insert(0, _accepted(spec))
        wrote = self._write(ref, raw_status, new, events)
        return Outcome(min(2.0**attempts, MAX_BACKOFF_SECONDS), new.phase, wrote, 0)

    def _write(self, ref: ObjectRef, raw_status: Mapping[str, Any], status: ReleaseStatus, events: Sequence[Event]) -> bool:
        wire = status.to_wire()
        changed = wire != _comparable(raw_status)
        if changed:
            self.sink.replace_status(ref.namespace, ref.name, wire)
            self._written[(ref.namespace, ref.name)] = wire
        for event in events:
            self.sink.event(ref, event.reason, event.message, event.type)
        return changed

    @staticmethod
    def _record(namespace: str, name: str, status: ReleaseStatus) -> None:
        metrics.record_phase(namespace, name, status.phase.value)
        metrics.CANARY_WEIGHT.labels(namespace, name, "backend").set(status.backend.canary_weight)
        metrics.CANARY_WEIGHT.labels(namespace, name, "frontend").set(status.frontend.canary_weight)


def _accepted(spec: ReleaseSpec) -> Event:
    tiers = f"backend {spec.backend.version}" + (f", frontend {spec.frontend.version}" if spec.frontend else "")
    return Event("Accepted", f"Release accepted: {tiers}, strategy {spec.strategy.type.value}")


def _comparable(raw_status: Mapping[str, Any]) -> dict[str, Any]:
    """The stored status as our own models would write it, so equal content compares equal."""
    try:
        return ReleaseStatus.model_validate(raw_status).to_wire()
    except ValidationError:
        return dict(raw_status)
