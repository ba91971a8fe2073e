"""The pass: observe -> gather what the planner needs -> decide -> apply -> write status once.

The one place where effects are sequenced. A pass reads the Release and the world (`_observe`: the
spec, the claim of what it names, AWS, whether the traffic is its own; any of them may refuse the
pass with a `Refusal`), fetches what `planner.needs` names (`gather`), asks the pure planner to
`decide` (the refusal is one of its inputs: the conditions are built only there), applies the
actions (each idempotent), then the Git write-back and the notification ledger, and writes the
whole status in one patch, skipped when unchanged. When to look again is `backoff.requeue_after`'s
to say. A pass can be interrupted at any line: the next one re-observes AWS and the planner
derives progress from what it sees, so repeating a pass never duplicates an effect.

Settled Releases (the last pass found nothing to do and asked for no timer) are checked in bulk
by `Reconciler.resync`: one batched read of AWS for all of them, and a full pass only for those
whose object or world differs from what that last pass saw. The planner is pure, so the same inputs
would give the same empty decision; skipping it is what keeps a fleet of steady Releases cheap.

Must not: import kopf (the operator calls `Reconciler.reconcile` from a worker thread), build a
condition, or import the planner's phases or standing (an import-linter contract).
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

from controller import logs, metrics, planner
from controller.api.release import ConditionType, Phase, ReleaseSpec, ReleaseStatus
from controller.api.reasons import Reason
from controller.api.types import explain
from controller import fencing
from controller.aws import budget
from controller.errors import EffectError, ObjectGone, StaleStatus
from controller.gitops.rollback import SecretReader, write_back_due
from controller.gitops.writeback import GitWriter
from controller.kube.claims import Holder, resources_of
from controller.kube.client import REQUEST_ANNOTATIONS, ObjectRef
from controller.planner.decision import Context, Decision, Refusal
from controller.planner.decision import Outcome as PassOutcome
from controller.planner.world import Observation
from controller.reconciler import adjust, basis, gates
from controller.reconciler.apply import Applied, accepted, rollback_line, in_flight, record, write_back
from controller.reconciler.backoff import PassResult, requeue_after
from controller.reconciler.gather import Gathered, Sources, gather
from controller.reconciler.memory import Memory, Owed, _requests, joined
from controller.reconciler.ports import (
    Applier, Outcome, ClaimsLike, ContractChecker, HookRunner, Key, Measurer, NotificationPlanner, ObserverLike, Planner,
    RoleScope, StatusSink, TenancyCheck, TrafficCheck, UpstreamReader,
)

log = logging.getLogger(__name__)

ON_DELETE_ANNOTATION = "delivery.pratiko.ai/on-delete"
"""`Orphan`: deleting the Release leaves AWS as it is, even mid-rollout (default: `Abort`)."""


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
    tenancy: TenancyCheck | None = None  # --tenancy strict: ReleasePolicies and Secret annotations
    # Whose credentials a Release's AWS calls use (a ReleasePolicy's roleArn); None: the clients' own.
    roles: RoleScope | None = None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.timezone.utc))
    # Leadership (controller/fencing.py): each pass runs in one term and every write checks it.
    fence: fencing.Fence | None = None
    # Seconds a pass may spend on AWS, retries included (controller/aws/budget.py); None: unbounded.
    aws_pass_limit: float | None = None
    _term: int | None = None  # the leadership term the memory belongs to
    _gap: float = 0.0  # seconds nobody acted before this term began (Leadership.gap)
    _gap_ended: dt.datetime | None = None  # when this term's first pass began (on `clock`)
    _term_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _owed: Owed = field(default_factory=Owed)  # gaps of earlier terms whose hold was not written
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
                self._owed.term_ended((self._gap, self._gap_began()), self._memory, self._term)
            self._term = term
            self.forget_all()
            gap = getattr(self.fence, "gap", None)
            self._gap = float(gap(term)) if gap is not None else 0.0
            self._gap_ended = self.clock()

    def _gap_began(self) -> dt.datetime | None:
        return self._gap_ended - dt.timedelta(seconds=self._gap) if self._gap_ended is not None else None

    def _held(self, key: Key) -> tuple[float, dt.datetime | None]:
        """The gap a Release's first pass of this term holds its timers by: this term's and what it owes."""
        return joined((self._gap, self._gap_began()), self._owed.of(key))

    def release(self, key: Key) -> None:
        """A Release is no longer managed: its memory, its AWS snapshot, its role's clients and its
        metric series go."""
        self.forget(key)
        self._owed.forget(key)
        if self.roles is not None:
            self.roles.forget(*key)
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
            status = ReleaseStatus.model_validate(basis.raw_status(self._memory.get(key), obj))
        except ValidationError:
            return True
        if not in_flight(status):
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
            outcome = self._reconcile({**obj, "metadata": {**meta, "annotations": annotations}}, fresh=True,
                                      finalizing=True)
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
            spec = self._mem(key).parsed_spec(obj)
            if spec is None or gates.refused(self.tenancy, key[0], spec):  # a policy revoked under a settled Release
                need.append(key)
            else:
                specs.append((key, spec))
        if not specs:
            return need
        # Releases acting with a role of their own are read each with its own credentials, outside
        # the batch (and its round of reused parses); one whose world changed is read again by its pass.
        own = [(key, spec) for key, spec in specs if self.roles is None or self.roles.own(key[0])]
        seen = dict(self.observer.observe_many(own)) if own else {}
        for key, spec in specs:
            if key not in seen and self.roles is not None:
                with self.roles.acting_for(*key):
                    seen[key] = self.observer.observe(key, spec, True)
        bodies = dict(items)
        for key, _ in specs:
            settled = self._mem(key).settled
            if settled is not None and settled == (self._inputs(key, bodies[key]), seen.get(key)):
                self.observer.forget(key)
                metrics.RECONCILE_TOTAL.labels("unchanged").inc()
            else:
                need.append(key)
        return need

    def _inputs(self, key: Key, obj: Mapping[str, Any]) -> tuple[Any, ...]:
        """Everything a pass decides from besides the world and the clock."""
        meta = obj.get("metadata", {})
        annotations = meta.get("annotations") or {}
        return (
            meta.get("uid"), meta.get("generation"), meta.get("deletionTimestamp"),
            tuple(annotations.get(a) for a in REQUEST_ANNOTATIONS.values()),
            basis.raw_status(self._memory.get(key), obj),
        )

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
            basis.stale(self._mem(key), key)
        current = self.sink.current(*key)
        found_uid = (current or {}).get("metadata", {}).get("uid")
        if current is None or found_uid != meta.get("uid"):
            raise ObjectGone(key[0], key[1], meta.get("uid"), found_uid)
        try:
            return self._reconcile(current, fresh=True)
        except StaleStatus:
            basis.stale(self._mem(key), key)
            return Outcome(requeue_after(PassResult(spec_changed=True)),
                           str((current.get("status") or {}).get("phase", "")), False, 0)

    def _reconcile(self, obj: Mapping[str, Any], *, fresh: bool, again: bool = True,
                   finalizing: bool = False) -> Outcome:
        """The pass, every AWS call of it made with the Release's credentials (`roles`)."""
        meta = obj.get("metadata", {})
        scope = (self.roles.acting_for(meta["namespace"], meta["name"]) if self.roles is not None
                 else contextlib.nullcontext())
        with scope:
            return self._pass(obj, fresh=fresh, again=again, finalizing=finalizing)

    def _pass(self, obj: Mapping[str, Any], *, fresh: bool, again: bool = True,
              finalizing: bool = False) -> Outcome:
        """The pass: observe -> gather what the planner needs -> decide -> apply -> write status once."""
        meta = obj.get("metadata", {})
        namespace, name = meta["namespace"], meta["name"]
        key = (namespace, name)
        ref = ObjectRef(namespace, name, meta.get("uid"))
        generation = int(meta.get("generation", 1))
        now = self.clock()
        mem = self._mem(key)
        mem.settled = None
        inputs = self._inputs(key, obj)
        raw_status = basis.raw_status(self._memory.get(key), obj)
        mem.basis_rv = basis.basis_rv(self._memory.get(key), obj)
        try:
            status = ReleaseStatus.model_validate(raw_status)
        except ValidationError:
            log.warning("status of %s/%s is unreadable; starting from an empty one", namespace, name)
            status = ReleaseStatus()

        # Observe: the spec, what it claims, the world, whether the traffic is its own. Each may
        # refuse the pass; the refusal goes to the planner like any other input.
        spec, observation, refusal = self._observe(ref, obj, generation, fresh, finalizing)
        refusal = adjust.since(mem, refusal, now)
        if refusal is None:
            status = adjust.taken_over(mem, ref, status)
            status = adjust.resumed(mem, key, status, now)
            status = adjust.held_by_gap(mem, key, status, self._term, *self._held(key))

        # Gather what the planner says it needs, then decide.
        gathered = Gathered()
        if refusal is None and spec is not None:
            gathered = gather(planner.needs(spec, status, observation, now), self._sources(), namespace, name,
                              ref.uid or "", spec, status, now)
        ctx = Context(namespace, name, generation, now, _requests(meta.get("annotations") or {}),
                      gathered.measurements, gathered.contract, gathered.upstream, gathered.hooks, refusal)
        decision = self.planner.decide(spec, status, observation, ctx)

        # Apply: AWS first (the object must still be the one decided for), then Git and notifications.
        if decision.actions:
            current = basis.current(self.sink, mem, ref, generation, raw_status)
            if current is not None:  # the spec or status changed under this pass: decide again from it, once
                if again:
                    return self._pass(current, fresh=fresh, again=False, finalizing=finalizing)
                return Outcome(requeue_after(PassResult(spec_changed=True)), status.phase, False, 0)
            try:
                fencing.check(self.fence)  # and again before each AWS request (controller/fencing.aws_hook)
                self.applier(decision.actions, observation)
            except EffectError as exc:  # AWS refused part way: the planner says so on what it decided
                refusal = adjust.since(mem, Refusal(exc.reason, exc.message, during=decision), now)
                assert refusal is not None
                decision = self.planner.decide(spec, status, observation, replace(ctx, refusal=refusal))
        if refusal is None:
            mem.failures = 0
        elif refusal.reason != Reason.INVALID_SPEC:
            mem.failures += 1
        applied = self._after(ref, spec, status, decision, refusal, now)
        decision = applied.decision
        if any(e.reason == Reason.AWS_UNREACHABLE for e in decision.events):
            log.warning("%s/%s: %s", namespace, name, decision.status.message)

        # Write the status, once (skipped when unchanged), and the Events.
        events = decision.events
        if not raw_status and spec is not None and decision.status != status:
            events = (accepted(spec), *events)
        wrote = basis.write(self.sink, self.fence, mem, ref, raw_status, decision.status, events)
        if refusal is None:
            record(namespace, name, decision.status)
            if decision.requeue_after is None and not decision.actions and not decision.events and not wrote:
                self._mem(key).settled = (inputs, observation)
        after = requeue_after(PassResult(
            decision.requeue_after, blocked=decision.outcome == PassOutcome.BLOCKED, failures=mem.failures,
            unreachable=refusal is not None and refusal.reason == Reason.AWS_UNREACHABLE,
            write_back_failed=applied.write_back_failed,
        ))
        return Outcome(after, decision.status.phase, wrote, len(decision.actions), decision.status.revision,
                       decision.status.current_step, blocked=decision.outcome == PassOutcome.BLOCKED)

    def _observe(self, ref: ObjectRef, obj: Mapping[str, Any], generation: int, fresh: bool,
                 finalizing: bool = False) -> tuple[ReleaseSpec | None, Observation, Refusal | None]:
        """The spec, what tenancy permits, the claim of what it names, the world, the traffic check;
        the first refusal."""
        key = (ref.namespace, ref.name)
        spec = self._mem(key).parsed_spec(obj)
        if spec is None:
            try:
                spec = ReleaseSpec.model_validate(obj.get("spec") or {})
            except ValidationError as exc:
                return None, Observation(), Refusal(Reason.INVALID_SPEC, explain(list(exc.errors())))
        permitted = None if finalizing else gates.permitted(self.tenancy, ref.namespace, spec)
        if permitted is not None:  # before any claim or AWS call
            return spec, Observation(), permitted
        if self.claims is not None and ref.uid:
            conflict = self.claims.claim(Holder(ref.namespace, ref.name, ref.uid), resources_of(spec))
            if conflict is not None:  # another Release owns what this one points at (controller/kube/claims.py)
                self._mem(key).waited_in_conflict = True
                return spec, Observation(), Refusal(Reason.CONFLICT, conflict.message)
        observation = self.observer.observe(key, spec, fresh)
        blocking = [e for e in observation.errors if not e.retryable] or list(observation.errors)
        if blocking:
            return spec, observation, Refusal(blocking[0].reason, blocking[0].message)
        return spec, observation, gates.traffic(self.traffic, self._mem(key), ref, generation, spec, observation)

    def _sources(self) -> Sources:
        return Sources(self.measurer, self.contracts, self.upstream, self.hooks)

    def _after(self, ref: ObjectRef, spec: ReleaseSpec | None, before: ReleaseStatus, decision: Decision,
               refusal: Refusal | None, now: dt.datetime) -> Applied:
        """After AWS took the actions: metrics, the GitOps write-back, the notification ledger."""
        if refusal is not None or spec is None:  # nothing was planned: what a sink accepted is recorded
            if self.notifications is not None:
                decision = replace(decision, status=self.notifications.carry(ref, decision.status))
            return Applied(decision)
        namespace, name = ref.namespace, ref.name
        for resource in decision.drift:
            metrics.DRIFT_TOTAL.labels(namespace, name, resource).inc()
        if decision.outcome == PassOutcome.ROLLED_BACK:
            why = next((c.reason for c in decision.status.conditions if c.type == ConditionType.READY), Reason.ROLLED_BACK)
            metrics.ROLLBACKS_TOTAL.labels(namespace, name, why).inc()
            log.warning("%s", rollback_line(namespace, name, why, before, decision.status))
        applied = Applied(decision)
        if self.git is not None and write_back_due(spec, decision.status):
            writer, secrets = self.git
            applied = write_back(writer, secrets, namespace, name, spec, decision)
        if self.notifications is not None:
            applied = replace(applied, decision=self.notifications.plan(ref, spec, applied.decision, now))
        return applied
