"""What a pass does to the status it read before deciding from it: the rollout's timers moved on by
the time nobody could act (an AWS outage, a gap in leadership), and a takeover's fresh start. Each
works on the Release's `Memory` and returns a new status; none changes AWS or the API server.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

from controller import planner
from controller.api.reasons import Reason
from controller.api.release import ConditionType, Phase, ReleaseStatus
from controller.kube.client import ObjectRef
from controller.planner.decision import Refusal
from controller.reconciler.memory import Memory
from controller.reconciler.ports import Key

log = logging.getLogger("controller.reconciler.driver")  # one logger for the pass's lines


def since(mem: Memory, refusal: Refusal | None, now: dt.datetime) -> Refusal | None:
    """`refusal` with when AWS stopped answering, for AwsUnreachable (remembered across passes)."""
    if refusal is None or refusal.reason != Reason.AWS_UNREACHABLE:
        return refusal
    mem.unreachable_since = mem.unreachable_since or now
    return replace(refusal, since=mem.unreachable_since)


def taken_over(mem: Memory, ref: ObjectRef, status: ReleaseStatus) -> ReleaseStatus:
    """A Release that waited in Conflict now holds what it names (its owner went, or an admin
    handed it over): what it remembers of a rollout is of a world someone else has moved since.
    Deciding from it, the world's version would look like drift and be "reverted" at once, all
    traffic in one step. So the pass starts from a fresh rollout state instead (revision, history,
    conditions, acknowledged requests and notifications kept): the planner adopts what runs and
    the Release's first change goes through its strategy, as a new Release's does."""
    waited, mem.waited_in_conflict = mem.waited_in_conflict, False
    ready = next((c for c in status.conditions if c.type == ConditionType.READY), None)
    waited = waited or (ready is not None and ready.reason == Reason.CONFLICT)  # also after a restart
    if not waited or status.target_hash is None and status.phase == Phase.PENDING:
        return status
    log.info("%s/%s took over what it names (it waited in Conflict): its first change goes through its "
             "strategy", ref.namespace, ref.name)
    return ReleaseStatus(revision=status.revision, history=status.history, conditions=status.conditions,
                         acknowledged=status.acknowledged, notifications=status.notifications)


def resumed(mem: Memory, key: Key, status: ReleaseStatus, now: dt.datetime) -> ReleaseStatus:
    """AWS answered this pass: after an outage, the rollout's timers move on by its length."""
    started, mem.unreachable_since = mem.unreachable_since, None
    if started is None:
        return status
    held = now - started
    log.info("%s/%s: AWS answers again after %.0fs; step timers moved on by that", key[0], key[1],
             held.total_seconds())
    return planner.resume(status, held)


def held_by_gap(mem: Memory, key: Key, status: ReleaseStatus, term: int | None, gap: float,
                began: dt.datetime | None = None) -> ReleaseStatus:
    """The first pass of a term that began after a gap in which no process acted (the API server
    could not be reached, or the leader was paused, and a process then renewed or took over the
    Lease: `Leadership.gap`, with what earlier terms owed: `memory.Owed`): the rollout's timers move
    on by the gap, as after an AWS outage. Only a rollout that was under way when the gap `began`:
    one started since (a Release created or changed after the term began) has timers the gap never
    stopped."""
    if term is None or not gap or mem.gap_term == term:
        return status
    mem.gap_term = term
    started = status.rollout_started_at
    if began is not None and (started is None or started >= began):
        mem.gap_moot = True
        return status
    held = planner.resume(status, dt.timedelta(seconds=gap))
    if held == status:
        mem.gap_moot = True
        return status
    log.info("%s/%s: nobody acted for %.0fs before this leadership term; step timers moved on by that",
             key[0], key[1], gap)
    return held
