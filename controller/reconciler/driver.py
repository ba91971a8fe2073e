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

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from controller import logs, metrics
from controller.api.release import (
    ConditionType,
    Measurement,
    Phase,
    ReleaseSpec,
    ReleaseStatus,
)
from controller.api.reasons import Reason
from controller.api.types import explain
from controller.kube.claims import Holder, resources_of
from controller import fencing
from controller.aws import budget
from controller.errors import EffectError, ObjectGone, StaleStatus
from controller.gitops.rollback import SecretReader, with_revert_commit, write_back_due, write_back_rollback
from controller.gitops.writeback import GitWriteBackError, GitWriter
from controller.kube.client import REQUEST_ANNOTATIONS, ObjectRef
from controller.planner.phases.backend import hold_timers
from controller.planner.phases.hooks import due as hooks_due
from controller.planner import standing
from controller.planner.decision import Context, ContractCheck, Decision, Event, HookResult, Upstream
from controller.planner.decision import Outcome as PassOutcome
from controller.planner.phases.upstream import due as upstream_due
from controller.planner.tiers import contract_target
from controller.planner.world import Observation
from controller.reconciler.memory import Memory, _requests
from controller.reconciler.ports import (
    Applier, ClaimsLike, ContractChecker, HookRunner, Key, Measurer, NotificationPlanner, ObserverLike, Planner,
    StatusSink, TrafficCheck, UpstreamReader,
)

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0
"""The back-off between passes that fail, at most: a persistent AWS error is retried every minute."""
ON_DELETE_ANNOTATION = "delivery.pratiko.ai/on-delete"
"""`Orphan`: deleting the Release leaves AWS as it is, even mid-rollout (default: `Abort`)."""
WRITE_BACK_RETRY = 15.0
"""A rollback that could not be written back to Git is tried again this soon."""
REFUSED_RECHECK = 60.0
"""A Release refused for its traffic looks again this often (a fixed listener needs no new spec)."""
CONFLICT_RECHECK = 10.0
"""A Release in conflict looks again this often: its owner may be deleted or hand the service over."""
UNREACHABLE_AFTER = 8.0
"""Seconds AWS may fail to answer (a pass or two) before the Release says AwsUnreachable."""
UNREACHABLE_POLL = 5.0
"""The back-off's cap while AWS does not answer: the rollout goes on soon after it answers again."""
AFTER_SPEC_CHANGE = 0.5
"""A spec that changed twice within one pass is decided on the next pass, this soon."""

@dataclass(frozen=True)
class Outcome:
    requeue_after: float | None
    phase: str
    wrote_status: bool
    actions: int
    revision: int = 0
    step: int = 0
    blocked: bool = False  # AWS could not be read or changed: the retry is nobody's change (runtime lanes)


@dataclass
class Reconciler:
    observer: ObserverLike
    applier: Applier
    planner: Planner
    sink: StatusSink
    measurer: Measurer | None = None
    contracts: ContractChecker | None = None
    claims: ClaimsLike | None = None
    traffic: TrafficCheck | None = None
    git: tuple[GitWriter, SecretReader] | None = None  # the GitOps write-back (spec.gitops)
    upstream: UpstreamReader | None = None
    notifications: NotificationPlanner | None = None
    hooks: HookRunner | None = None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.timezone.utc))
    # Leadership (controller/fencing.py): each pass runs in one term and every write checks it.
    fence: fencing.Fence | None = None
    # Seconds a pass may spend on AWS, retries included (controller/aws/budget.py); None: unbounded.
    aws_pass_limit: float | None = None
    _term: int | None = None  # the leadership term the memory belongs to
    _gap: float = 0.0  # seconds nobody acted before this term began (Leadership.gap)
    _term_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _memory: dict[Key, Memory] = field(default_factory=dict)

    def _mem(self, key: Key) -> Memory:
        return self._memory.setdefault(key, Memory())

    def forget(self, key: Key) -> None:
        """Drop what this process remembers of a Release (a new worker starts from the API's view)."""
        self._memory.pop(key, None)
        self.observer.forget(key)

    def forget_all(self) -> None:
        """A gap in leadership: nothing remembered from before it may be acted on; every Release is
        decided again from the API server's copy and a fresh read of AWS."""
        for key in list(self._memory):
            self.forget(key)

    def _enter(self, term: int | None) -> None:
        """A pass begins in `term`: the first pass of a new term drops what earlier terms remembered."""
        with self._term_lock:
            if term is None or term == self._term:
                return
            if self._term is not None:
                log.info("leadership term %d began: deciding every Release again from the API server", term)
            self._term = term
            self.forget_all()
            gap = getattr(self.fence, "gap", None)
            self._gap = float(gap(term)) if gap is not None else 0.0

    def release(self, key: Key) -> None:
        """A Release is no longer managed: its memory, its AWS snapshot and its metric series go."""
        self.forget(key)
        metrics.forget(*key)

    def released(self, namespace: str, name: str, uid: str | None) -> list[str]:
        """The Release is gone: free what it claimed, for another Release to take; returns those."""
        if self.claims is None or not uid:
            return []
        fencing.check(self.fence)
        return self.claims.release(Holder(namespace, name, uid))

    def finalize(self, obj: Mapping[str, Any]) -> bool:
        """One pass for a Release being deleted; True once it may go.

        A Release in the middle of a rollout (a canary task set, or a frontend canary step) is
        aborted first: all traffic back on the stable version, the canary removed, as `abort` does;
        it may go once a pass finds nothing left to change. A settled Release goes at once and AWS
        is left as it is. The annotation `delivery.pratiko.ai/on-delete: Orphan` leaves AWS as it is
        in every case. A deletion never touches the task set that serves traffic.
        """
        meta = obj.get("metadata", {})
        key = (meta["namespace"], meta["name"])
        if (meta.get("annotations") or {}).get(ON_DELETE_ANNOTATION) == "Orphan":
            return True
        try:
            status = ReleaseStatus.model_validate(self._raw_status(key, obj))
        except ValidationError:
            return True
        if not _in_flight(status):
            return True
        token = f"deleted:{meta.get('uid')}"
        if status.acknowledged.abort != token:
            self.sink.event(ObjectRef(key[0], key[1], meta.get("uid")), Reason.DELETING,
                            "Release deleted mid-rollout: all traffic goes back on the stable version and the "
                            "canary is removed before it goes (annotate delivery.pratiko.ai/on-delete=Orphan to "
                            "leave AWS as it is)", "Warning")
        annotations = {**(meta.get("annotations") or {}), REQUEST_ANNOTATIONS["abort"]: token}
        with fencing.in_term(self.fence) as term:
            self._enter(term)
            outcome = self._reconcile({**obj, "metadata": {**meta, "annotations": annotations}}, fresh=True)
        return outcome.actions == 0 and outcome.phase not in (Phase.PROGRESSING, Phase.PAUSED)

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
            settled = self._mem(key).settled
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
        cached = self._mem(key).spec
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            spec = ReleaseSpec.model_validate(obj.get("spec") or {})
        except ValidationError:
            return None
        self._mem(key).spec = (version, spec)
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
        """The status to decide from: what this process last wrote to this very object (same uid;
        a Release deleted and created again under its name starts afresh), else the API server's.

        What it wrote is only a guess that the watch lags: the status write is conditioned on the
        resourceVersion that write returned (`_basis_rv`), and the check before AWS is changed
        (`_current`) compares it with the API server's, so a status someone else wrote since wins.
        Memory is dropped whole after any gap in leadership (`forget_all`)."""
        mem = self._memory.get(key)
        if mem is not None and mem.written is not None and mem.written_uid == obj.get("metadata", {}).get("uid"):
            return mem.written
        return obj.get("status") or {}

    def _basis_rv(self, key: Key, obj: Mapping[str, Any]) -> str | None:
        """The resourceVersion of the status `_raw_status` returns."""
        mem = self._memory.get(key)
        if mem is not None and mem.written is not None and mem.written_uid == obj.get("metadata", {}).get("uid"):
            return mem.written_rv
        rv = obj.get("metadata", {}).get("resourceVersion")
        return str(rv) if rv else None

    def reconcile(self, obj: Mapping[str, Any], *, fresh: bool = True) -> Outcome:
        """One pass for one Release object as read from the API server."""
        started = time.perf_counter()
        meta = obj.get("metadata", {})
        with logs.release_context(meta.get("namespace", ""), meta.get("name", "")), fencing.in_term(self.fence) as term, \
                (budget.scope(self.aws_pass_limit) if self.aws_pass_limit else contextlib.nullcontext()):
            self._enter(term)
            try:
                outcome = self._decided_from_current(obj, fresh)
                metrics.RECONCILE_TOTAL.labels("ok").inc()
            except ObjectGone:
                metrics.RECONCILE_TOTAL.labels("gone").inc()
                raise
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

    def _decided_from_current(self, obj: Mapping[str, Any], fresh: bool) -> Outcome:
        """A pass; when its status write finds the object changed since the status it decided from,
        one more pass from the API server's copy (what this process remembered is dropped)."""
        meta = obj.get("metadata", {})
        key = (meta["namespace"], meta["name"])
        try:
            return self._reconcile(obj, fresh=fresh)
        except StaleStatus:
            self._stale(key)
        current = self.sink.current(*key)
        found_uid = (current or {}).get("metadata", {}).get("uid")
        if current is None or found_uid != meta.get("uid"):
            raise ObjectGone(key[0], key[1], meta.get("uid"), found_uid)
        try:
            return self._reconcile(current, fresh=True)
        except StaleStatus:
            self._stale(key)
            return Outcome(AFTER_SPEC_CHANGE, str((current.get("status") or {}).get("phase", "")), False, 0)

    def _stale(self, key: Key) -> None:
        log.info("%s/%s: the status changed since the one this pass decided from; deciding again from the "
                 "API server's copy", *key)
        mem = self._mem(key)
        mem.written = mem.written_rv = None
        mem.gap_term = None  # the pass that decides again holds the timers again, from the server's copy

    def _reconcile(self, obj: Mapping[str, Any], *, fresh: bool, again: bool = True) -> Outcome:
        meta = obj.get("metadata", {})
        namespace, name = meta["namespace"], meta["name"]
        key = (namespace, name)
        ref = ObjectRef(namespace, name, meta.get("uid"))
        generation = int(meta.get("generation", 1))
        now = self.clock()
        self._mem(key).settled = None
        inputs = self._inputs(key, obj)
        raw_status = self._raw_status(key, obj)
        self._mem(key).basis_rv = self._basis_rv(key, obj)
        try:
            status = ReleaseStatus.model_validate(raw_status)
        except ValidationError:
            log.warning("status of %s/%s is unreadable; starting from an empty one", namespace, name)
            status = ReleaseStatus()

        parsed = self._spec(key, obj)
        try:
            spec = parsed or ReleaseSpec.model_validate(obj.get("spec") or {})
        except ValidationError as exc:
            return self._invalid(ref, raw_status, status, generation, explain(list(exc.errors())), now)

        refused = self._claim(ref, raw_status, status, generation, spec, now)
        if refused is not None:
            return refused
        observation = self.observer.observe(key, spec, fresh)
        blocking = [e for e in observation.errors if not e.retryable] or list(observation.errors)
        if blocking:
            return self._blocked(ref, raw_status, status, generation, blocking[0].reason, blocking[0].message, now, spec)
        refused = self._check_traffic(ref, raw_status, status, generation, spec, observation, now)
        if refused is not None:
            return refused

        status = self._reachable(key, status, now)
        status = self._held_by_gap(key, status)
        measurements, contract = self._measure(namespace, spec, status, observation, now)
        ctx = Context(namespace, name, generation, now, _requests(meta.get("annotations") or {}), measurements,
                      contract, self._upstream(spec, status), self._hooks(namespace, name, ref.uid or "", spec, status, now))
        decision = self.planner.decide(spec, status, observation, ctx)
        if not raw_status:
            decision = replace(decision, events=(_accepted(spec), *decision.events))

        if decision.actions:
            current = self._current(ref, generation, raw_status)
            if current is not None:  # the spec or status changed under this pass: decide again from it, once
                if again:
                    return self._reconcile(current, fresh=fresh, again=False)
                return Outcome(AFTER_SPEC_CHANGE, status.phase, False, 0)

        try:
            fencing.check(self.fence)  # and again before each AWS request (controller/fencing.aws_hook)
            self.applier(decision.actions, observation)
        except EffectError as exc:
            return self._blocked(ref, raw_status, decision.status, generation, exc.reason, exc.message, now, spec)

        self._mem(key).failures = 0
        decision = self._applied(ref, spec, status, decision, now)
        wrote = self._write(ref, raw_status, decision.status, decision.events)
        self._record(namespace, name, decision.status)
        if decision.requeue_after is None and not decision.actions and not decision.events and not wrote:
            self._mem(key).settled = (inputs, observation)
        return Outcome(decision.requeue_after, decision.status.phase, wrote, len(decision.actions),
                       decision.status.revision, decision.status.current_step)

    def _invalid(self, ref: ObjectRef, raw_status: Mapping[str, Any], status: ReleaseStatus, generation: int,
                 message: str, now: dt.datetime) -> Outcome:
        """A spec the models refuse: Failed and Stalled, InvalidSpec naming the fields; AWS untouched."""
        new = status.model_copy(
            update={
                "phase": Phase.FAILED,
                "observed_generation": generation,
                "message": message,
                "conditions": _conditions(status, standing.invalid(message), now, generation),
            }
        )
        wrote = self._write(ref, raw_status, new, [Event(Reason.INVALID_SPEC, message, "Warning")])
        return Outcome(None, new.phase, wrote, 0, new.revision, new.current_step)

    def _claim(self, ref: ObjectRef, raw_status: Mapping[str, Any], status: ReleaseStatus, generation: int,
               spec: ReleaseSpec, now: dt.datetime) -> Outcome | None:
        """Claim what the spec names; None when this Release owns it all (controller/kube/claims.py)."""
        if self.claims is None or not ref.uid:
            return None
        conflict = self.claims.claim(Holder(ref.namespace, ref.name, ref.uid), resources_of(spec))
        if conflict is None:
            return None
        # Another Release owns what this one points at: change nothing, say who, look again now and
        # then (its owner's deletion, or a handover, frees the claim).
        return self._blocked(ref, raw_status, status, generation, Reason.CONFLICT, conflict.message, now, spec,
                             requeue_after=CONFLICT_RECHECK)

    def _check_traffic(self, ref: ObjectRef, raw_status: Mapping[str, Any], status: ReleaseStatus, generation: int,
                       spec: ReleaseSpec, observation: Observation, now: dt.datetime) -> Outcome | None:
        """Once per spec generation, before it adopts or changes anything: is this traffic its own?"""
        mem = self._mem((ref.namespace, ref.name))
        if self.traffic is None or mem.traffic_checked == (ref.uid, generation):
            return None
        try:
            refusal = self.traffic.refusal(spec, observation)
        except EffectError as exc:
            return self._blocked(ref, raw_status, status, generation, exc.reason, exc.message, now, spec)
        if refusal is not None:
            return self._blocked(ref, raw_status, status, generation, Reason.INVALID_TRAFFIC, refusal, now, spec,
                                 requeue_after=REFUSED_RECHECK)
        mem.traffic_checked = (ref.uid, generation)
        return None

    def _applied(self, ref: ObjectRef, spec: ReleaseSpec, status: ReleaseStatus, decision: Decision,
                 now: dt.datetime) -> Decision:
        """After AWS took the actions: metrics, the GitOps write-back, notifications of the moments."""
        namespace, name = ref.namespace, ref.name
        for resource in decision.drift:
            metrics.DRIFT_TOTAL.labels(namespace, name, resource).inc()
        if decision.outcome == PassOutcome.ROLLED_BACK:
            why = next((c.reason for c in decision.status.conditions if c.type == ConditionType.READY), Reason.ROLLED_BACK)
            metrics.ROLLBACKS_TOTAL.labels(namespace, name, why).inc()
        if self.git is not None and write_back_due(spec, decision.status):
            decision = self._write_back(namespace, name, spec, decision)
        if self.notifications is not None:
            decision = self.notifications.plan(ref, spec, status, decision, now)
        return decision

    def _write_back(self, namespace: str, name: str, spec: ReleaseSpec, decision: Decision) -> Decision:
        """Git learns of the rollback: the file names what serves again (controller/gitops).

        Asked on every pass while the status's rollback entry records no commit, so a crash between
        the rollback's status write and the push asks again, and the writer finds its own commit
        by its trailer instead of pushing a second one. A failure is an Event and a pass soon.
        """
        assert self.git is not None
        writer, secrets = self.git
        try:
            result = write_back_rollback(writer, secrets, namespace, name, spec, decision.status)
        except GitWriteBackError as exc:
            event = Event(exc.reason, f"writing the rollback back to Git: {exc.message}", "Warning")
            return replace(decision, events=(*decision.events, event),
                           requeue_after=min(decision.requeue_after or WRITE_BACK_RETRY, WRITE_BACK_RETRY))
        status = with_revert_commit(decision.status, result)
        if result is None:
            return replace(decision, status=status)
        said = (f"pushed {result.commit[:12]} to {result.ref}" if result.commit
                else "Git already names the versions that serve")
        return replace(decision, status=status, events=(*decision.events, Event(Reason.ROLLBACK_WRITTEN_BACK, said)))

    def _current(self, ref: ObjectRef, generation: int, raw_status: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Check, just before AWS is changed, that the object this pass decided for still exists.

        The body a worker holds can be old: the operator may have been paused (a long GC, a frozen
        node) while the Release was deleted or re-created. A watch event saying so may still be on
        its way, so ask the API server itself. Gone or replaced: raise ObjectGone, nothing is
        applied. The same object at a newer generation: return it, to be decided again.

        The same object with another status than the one this pass decided from (another process
        wrote it, or this one remembered a status from before a pause): return it, to be decided
        again from the API server's copy, without this process's memory of what it wrote. The same
        status at a newer resourceVersion (an annotation, a finalizer): the status write is
        conditioned on that version.
        """
        found = self.sink.current(ref.namespace, ref.name)
        found_uid = (found or {}).get("metadata", {}).get("uid")
        if found is None or found_uid != ref.uid:
            raise ObjectGone(ref.namespace, ref.name, ref.uid, found_uid)
        if int(found["metadata"].get("generation", 1)) != generation:
            return found
        mem = self._mem((ref.namespace, ref.name))
        found_rv = found["metadata"].get("resourceVersion")
        if found_rv is not None and mem.basis_rv is not None and found_rv != mem.basis_rv:
            if _comparable(found.get("status") or {}) != _comparable(raw_status):
                self._stale((ref.namespace, ref.name))
                return found
            mem.basis_rv = found_rv
        return None

    def _measure(
        self, namespace: str, spec: ReleaseSpec, status: ReleaseStatus, observation: Observation, now: dt.datetime,
    ) -> tuple[tuple[Measurement, ...], ContractCheck | None]:
        """The networked inputs of a pass, when due: analysis measurements and the API-contract check."""
        measurements: tuple[Measurement, ...] = ()
        if self.measurer is not None and spec.analysis.metrics and self.planner.analysis_due(spec, status, now):
            measurements = self.measurer(spec, status, now)
            for m in measurements:
                metrics.ANALYSIS_TOTAL.labels(m.verdict.value).inc()
        contract: ContractCheck | None = None
        version = contract_target(spec, status, observation) if self.contracts is not None else None
        if self.contracts is not None and version is not None:
            contract = self.contracts(namespace, spec, version)
        return measurements, contract

    def _upstream(self, spec: ReleaseSpec, status: ReleaseStatus) -> tuple[Upstream, ...]:
        """The Releases `spec.promotion.requires` names, read when a rollout may start."""
        if self.upstream is None or not upstream_due(spec, status):
            return ()
        found: list[Upstream] = []
        for req in spec.promotion.requires:
            ref = req.release
            try:
                obj = self.upstream(ref.namespace, ref.name)
                up = ReleaseStatus.model_validate((obj or {}).get("status") or {}) if obj is not None else None
                found.append(Upstream(ref.namespace, ref.name, up))
            except ValidationError:
                found.append(Upstream(ref.namespace, ref.name, error="its status is unreadable"))
            except Exception as exc:  # the API server's answer, named for the condition (no body: it may be long)
                found.append(Upstream(ref.namespace, ref.name, error=_api_error(exc)))
        return tuple(found)

    def _hooks(self, namespace: str, name: str, uid: str, spec: ReleaseSpec, status: ReleaseStatus,
               now: dt.datetime) -> tuple[HookResult, ...]:
        """The hook runs the planner asked for (`phases.hooks.due`, any point), made now."""
        if self.hooks is None:
            return ()
        return tuple(self.hooks(namespace, name, uid, spec, status, point, hook)
                     for point, hook in hooks_due(spec, status, now))

    def _blocked(
        self, ref: ObjectRef, raw_status: Mapping[str, Any], status: ReleaseStatus, generation: int,
        reason: str, message: str, now: dt.datetime, spec: ReleaseSpec | None = None,
        requeue_after: float | None = None,
    ) -> Outcome:
        """AWS cannot be read or changed as asked: say why, change nothing, retry with backoff (or
        after `requeue_after`, for a refusal that only a change elsewhere lifts)."""
        key = (ref.namespace, ref.name)
        mem = self._mem(key)
        mem.failures += 1
        attempts = mem.failures
        backoff = min(2.0**attempts, MAX_BACKOFF_SECONDS)
        if reason == Reason.AWS_UNREACHABLE:
            since = mem.unreachable_since = mem.unreachable_since or now
            if (self.clock() - since).total_seconds() < UNREACHABLE_AFTER:
                return Outcome(min(backoff, UNREACHABLE_POLL), status.phase, False, 0, blocked=True)  # a blip, so far
            message = (f"AWS has not answered since {since.isoformat(timespec='seconds')}; the rollout's step and "
                       f"pause timers are held until it does. Last error: {message}")
            backoff = min(backoff, UNREACHABLE_POLL)
        if self.notifications is not None:
            status = self.notifications.carry(ref, status)
        new = status.model_copy(
            update={
                "observed_generation": generation,
                "message": message,
                "conditions": _conditions(status, standing.blocked(reason, message), now, generation),
            }
        )
        previous_reason = next(
            (c.get("reason") for c in raw_status.get("conditions", []) if c.get("type") == "Ready"), None
        )
        events = [Event(reason, message, "Warning")] if previous_reason != reason else []
        if events and reason == Reason.AWS_UNREACHABLE:
            log.warning("%s/%s: %s", ref.namespace, ref.name, message)
        if not raw_status and spec is not None:
            events.insert(0, _accepted(spec))
        wrote = self._write(ref, raw_status, new, events)
        after = backoff if requeue_after is None else requeue_after
        return Outcome(after, new.phase, wrote, 0, new.revision, new.current_step, blocked=True)

    def _held_by_gap(self, key: Key, status: ReleaseStatus) -> ReleaseStatus:
        """The first pass of a term that began after a gap in which no process acted (the API
        server could not be reached, or this process was paused, and it then renewed its own
        Lease): the rollout's timers move on by the gap, as after an AWS outage."""
        mem = self._mem(key)
        if self._term is None or not self._gap or mem.gap_term == self._term:
            return status
        mem.gap_term = self._term
        if status.phase != Phase.PROGRESSING:
            return status
        log.info("%s/%s: nobody acted for %.0fs before this leadership term; step timers moved on by that",
                 key[0], key[1], self._gap)
        return hold_timers(status, dt.timedelta(seconds=self._gap))

    def _reachable(self, key: Key, status: ReleaseStatus, now: dt.datetime) -> ReleaseStatus:
        """AWS answered this pass: after an outage, the rollout's timers move on by its length."""
        mem = self._mem(key)
        since, mem.unreachable_since = mem.unreachable_since, None
        if since is None:
            return status
        held = now - since
        log.info("%s/%s: AWS answers again after %.0fs; step timers moved on by that", key[0], key[1],
                 held.total_seconds())
        return hold_timers(status, held) if status.phase == Phase.PROGRESSING else status

    def _write(self, ref: ObjectRef, raw_status: Mapping[str, Any], status: ReleaseStatus, events: Sequence[Event]) -> bool:
        wire = status.to_wire()
        changed = wire != _comparable(raw_status)
        mem = self._mem((ref.namespace, ref.name))
        if changed:
            fencing.check(self.fence)
            rv = self.sink.replace_status(ref.namespace, ref.name, wire, ref.uid, resource_version=mem.basis_rv)
            mem.written, mem.written_uid, mem.written_rv = wire, ref.uid, rv
            mem.basis_rv = rv
        for event in events:
            fencing.check(self.fence)
            self.sink.event(ref, event.reason, event.message, event.type)
        return changed

    @staticmethod
    def _record(namespace: str, name: str, status: ReleaseStatus) -> None:
        metrics.record_phase(namespace, name, status.phase.value)
        metrics.CANARY_WEIGHT.labels(namespace, name, "backend").set(status.backend.canary_weight)
        metrics.CANARY_WEIGHT.labels(namespace, name, "frontend").set(status.frontend.canary_weight)


def _conditions(status: ReleaseStatus, stood: standing.Standing, now: dt.datetime, generation: int) -> list[Any]:
    """The status' conditions as `stood` says, for `generation` (the planner's derivation, reused)."""
    return standing.stamp(standing.apply(status.conditions, stood, now), generation)


def _in_flight(status: ReleaseStatus) -> bool:
    """A rollout has something that a deletion must put back: a backend or frontend canary."""
    return (status.phase in (Phase.PROGRESSING, Phase.PAUSED) or status.backend.canary_image is not None
            or status.frontend.current_step is not None)


def _api_error(exc: Exception) -> str:
    status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
    if status is not None:
        return f"{status} {reason or ''}".strip()
    return type(exc).__name__


def _accepted(spec: ReleaseSpec) -> Event:
    tiers = f"backend {spec.backend.version}" + (f", frontend {spec.frontend.version}" if spec.frontend else "")
    return Event(Reason.ACCEPTED, f"Release accepted: {tiers}, strategy {spec.strategy.type.value}")


def _comparable(raw_status: Mapping[str, Any]) -> dict[str, Any]:
    """The stored status as our own models would write it, so equal content compares equal."""
    try:
        return ReleaseStatus.model_validate(raw_status).to_wire()
    except ValidationError:
        return dict(raw_status)
