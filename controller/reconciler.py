"""observe -> decide -> apply -> status: the one place where effects are sequenced.

A pass reads the Release and the world, asks the pure planner what to do, applies the actions
(each idempotent), then writes the whole status in one patch, skipped when unchanged. A pass can be
interrupted at any line: the next one re-observes AWS and the planner derives progress from what it
sees, so repeating a pass never duplicates an effect.

Settled Releases (the last pass found nothing to do and asked for no timer) are checked in bulk
by `Reconciler.resync`: one batched read of AWS for all of them, and a full pass only for those
whose object or world differs from what that last pass saw. The planner is pure, so the same inputs
would give the same empty decision; skipping it is what keeps a fleet of steady Releases cheap.

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

from controller import logs, metrics
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

Key = tuple[str, str]


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
    revision: int = 0
    step: int = 0


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
    _failures: dict[Key, int] = field(default_factory=dict)
    # The status this process last wrote, per Release: the watch may not have delivered it yet, and
    # deciding from an older status would repeat a step. Read-your-writes without an extra GET.
    _written: dict[Key, dict[str, Any]] = field(default_factory=dict)
    # Per Release, the inputs and the world of its last pass that found nothing to do (see resync).
    _settled: dict[Key, tuple[tuple[Any, ...], Observation]] = field(default_factory=dict)
    # The parsed spec per (uid, generation): a spec never changes without a new generation.
    _specs: dict[Key, tuple[tuple[Any, Any], ReleaseSpec]] = field(default_factory=dict)

    def forget(self, key: Key) -> None:
        """Drop what this process remembers of a Release (a new worker starts from the API's view)."""
        self._failures.pop(key, None)
        self._written.pop(key, None)
        self._settled.pop(key, None)
        self._specs.pop(key, None)
        self.observer.forget(key)

    def resync(self, items: Sequence[tuple[Key, Mapping[str, Any]]]) -> list[Key]:
        """The periodic check of settled Releases; returns those that need a full pass.

        One batched read of AWS serves them all. A Release whose object (generation, status, user
        requests) and world are exactly what its last pass saw, when that pass found nothing to do
        and asked for no timer, is done: counted as an `unchanged` reconcile, its snapshot dropped.
        Every other one (drift, a new status, an invalid spec) is returned; its worker runs a full
        pass on the snapshot just read, without reading AWS again.
        """
        need: list[Key] = []
        specs: list[tuple[Key, ReleaseSpec]] = []
        for key, obj in items:
            spec = self._spec(key, obj)
            if spec is None:
                need.append(key)
            else:
                specs.append((key, spec))
        if not specs:
            return need
        seen = self.observer.observe_many(specs)
        bodies = dict(items)
        for key, _ in specs:
            settled = self._settled.get(key)
            if settled is not None and settled == (self._inputs(key, bodies[key]), seen.get(key)):
                self.observer.forget(key)
                metrics.RECONCILE_TOTAL.labels("unchanged").inc()
            else:
                need.append(key)
        return need

    def _spec(self, key: Key, obj: Mapping[str, Any]) -> ReleaseSpec | None:
        """The spec of `obj`, parsed once per generation; None when it does not validate."""
        meta = obj.get("metadata", {})
        version = (meta.get("uid"), meta.get("generation"))
        cached = self._specs.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            spec = ReleaseSpec.model_validate(obj.get("spec") or {})
        except ValidationError:
            return None
        self._specs[key] = (version, spec)
        return spec

    def _inputs(self, key: Key, obj: Mapping[str, Any]) -> tuple[Any, ...]:
        """Everything a pass decides from besides the world and the clock."""
        meta = obj.get("metadata", {})
        annotations = meta.get("annotations") or {}
        return (
            meta.get("uid"), meta.get("generation"), meta.get("deletionTimestamp"),
            tuple(annotations.get(a) for a in REQUEST_ANNOTATIONS.values()),
            self._raw_status(key, obj),
        )

    def _raw_status(self, key: Key, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """The status to decide from: what this process last wrote, else what the API server holds."""
        return self._written.get(key) or obj.get("status") or {}

    def reconcile(self, obj: Mapping[str, Any], *, fresh: bool = True) -> Outcome:
        """One pass for one Release object as read from the API server."""
        started = time.perf_counter()
        meta = obj.get("metadata", {})
        with logs.release_context(meta.get("namespace", ""), meta.get("name", "")):
            try:
                outcome = self._reconcile(obj, fresh=fresh)
                metrics.RECONCILE_TOTAL.labels("ok").inc()
            except Exception:
                metrics.RECONCILE_TOTAL.labels("error").inc()
                raise
            finally:
                metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
            # One line per pass, for log pipelines (controller/logs.py adds the Release and the
            # AWS request id of the pass's last change).
            logs.note(revision=outcome.revision, phase=str(outcome.phase), step=outcome.step)
            log.info("pass", extra={
                "actions": outcome.actions, "wrote_status": outcome.wrote_status,
                "requeue_after": outcome.requeue_after, "fresh": fresh,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            })
            return outcome

    def _reconcile(self, obj: Mapping[str, Any], *, fresh: bool) -> Outcome:
        meta = obj.get("metadata", {})
        namespace, name = meta["namespace"], meta["name"]
        key = (namespace, name)
        ref = ObjectRef(namespace, name, meta.get("uid"))
        generation = int(meta.get("generation", 1))
        now = self.clock()
        self._settled.pop(key, None)
        inputs = self._inputs(key, obj)
        raw_status = self._raw_status(key, obj)
        try:
            status = ReleaseStatus.model_validate(raw_status)
        except ValidationError:
            log.warning("status of %s/%s is unreadable; starting from an empty one", namespace, name)
            status = ReleaseStatus()

        parsed = self._spec(key, obj)
        try:
            spec = parsed or ReleaseSpec.model_validate(obj.get("spec") or {})
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
            return Outcome(None, new.phase, wrote, 0, new.revision, new.current_step)

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
        if decision.requeue_after is None and not decision.actions and not decision.events and not wrote:
            self._settled[key] = (inputs, observation)
        return Outcome(decision.requeue_after, decision.status.phase, wrote, len(decision.actions),
                       decision.status.revision, decision.status.current_step)

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
        return Outcome(min(2.0**attempts, MAX_BACKOFF_SECONDS), new.phase, wrote, 0, new.revision, new.current_step)

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
