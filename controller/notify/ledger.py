"""`Notifications`: the reconciler's side of notifications. It plans a pass's deliveries, keeps the
pending ones in the status that pass writes, queues again what no worker holds, and records what a
sink accepted (see `controller.notify` for the guarantees).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from controller import metrics
from controller.api.reasons import Reason
from controller.api.release import NotificationsStatus, PendingNotification, ReleaseSpec, ReleaseStatus
from controller.kube.client import ObjectRef
from controller.notify.moments import Delivery, _kind, complete, delivery_id, document, moments
from controller.notify.worker import (
    DELIVERED, EXPIRE_AFTER, HELD, IDLE, PENDING_LIMIT, PENDING_RECHECK, RETRY_AFTER, SENT_LIMIT, Notifier, _hours,
)
from controller.planner.decision import Decision, Event


@dataclass
class Notifications:
    """The reconciler's side: plan this pass's deliveries, keep the pending ones in the status, queue
    again what no worker holds, and record what a sink accepted."""

    notifier: Notifier

    def plan(self, ref: ObjectRef, spec: ReleaseSpec, before: ReleaseStatus, decision: Decision,
             now: datetime) -> Decision:
        status = decision.status
        notes = status.notifications or NotificationsStatus()
        if not spec.notifications and not notes.pending:
            return decision
        sinks = {sink.name: sink for sink in spec.notifications}
        sent = list(notes.sent)
        pending: list[PendingNotification] = []
        events: list[Event] = []
        again: list[Delivery] = []
        for entry in notes.pending:
            state = self.notifier.state(ref, entry.key)
            sink = sinks.get(entry.key.split("/", 1)[0])
            if entry.key in sent:
                continue
            if state == DELIVERED:
                sent.append(entry.key)
            elif sink is None:  # the sink left the spec: nothing to deliver to
                metrics.NOTIFICATIONS_TOTAL.labels("unknown", "dropped").inc()
            elif state != HELD and now - entry.at > EXPIRE_AFTER:
                sent.append(entry.key)  # given up: never planned again
                metrics.NOTIFICATIONS_TOTAL.labels(_kind(sink), "expired").inc()
                events.append(Event(Reason.NOTIFICATION_EXPIRED, f"notification {entry.key} given up: no sink "
                                    f"accepted it within {_hours(EXPIRE_AFTER)} of {entry.at.isoformat()}", "Warning"))
            else:
                pending.append(entry)
                if state == IDLE:
                    again.append(Delivery(entry.key, ref, sink, complete(entry.document)))
        new: list[Delivery] = []
        for moment, step in moments(before, decision, spec) if spec.notifications else ():
            doc = document(moment, step, ref.namespace, ref.name, status, now)
            for sink in spec.notifications:
                if moment not in sink.on:
                    continue
                key = f"{sink.name}/{status.revision}/{moment.value}" + (f"/{step}" if step is not None else "")
                if key in sent or any(p.key == key for p in pending):
                    continue
                delivery = Delivery(key, ref, sink, {**doc, "id": delivery_id(ref, key)})
                pending.append(PendingNotification(key=key, at=now, document=dict(delivery.document)))
                new.append(delivery)
        while len(pending) > PENDING_LIMIT:  # a sink down for long with many moments: the oldest go
            oldest = pending.pop(0)
            sent.append(oldest.key)
            metrics.NOTIFICATIONS_TOTAL.labels(_kind(sinks[oldest.key.split("/", 1)[0]]), "dropped").inc()
            events.append(Event(Reason.NOTIFICATION_EXPIRED, f"notification {oldest.key} given up: more than "
                                f"{PENDING_LIMIT} notifications pending", "Warning"))
        for delivery in [*again, *new]:
            self.notifier.submit(delivery)
        recorded = NotificationsStatus(sent=sent[-(SENT_LIMIT - len(pending)):], pending=pending)
        if recorded != notes:
            decision = replace(decision, status=status.model_copy(update={"notifications": recorded}))
        if events:
            decision = replace(decision, events=(*decision.events, *events))
        if pending:
            # A pass soon while one is in flight (its sent mark, should the worker's patch lose to
            # a pass's write), else when the wait after a failed round is over.
            held = any(self.notifier.state(ref, p.key) == HELD for p in pending)
            soon = PENDING_RECHECK if held else RETRY_AFTER
            after = soon if decision.requeue_after is None else min(decision.requeue_after, soon)
            decision = replace(decision, requeue_after=after)
        return decision

    def carry(self, ref: ObjectRef, status: ReleaseStatus) -> ReleaseStatus:
        """`status` with what a sink accepted moved from pending to sent, for a pass that writes the
        status without planning (AWS unreachable, a refusal): its write must not put back as pending
        what the worker already marked sent, or a restart would deliver it again."""
        notes = status.notifications
        if notes is None or not notes.pending:
            return status
        done = [p.key for p in notes.pending if self.notifier.state(ref, p.key) == DELIVERED]
        if not done:
            return status
        kept = [p for p in notes.pending if p.key not in done]
        sent = [*notes.sent, *(k for k in done if k not in notes.sent)]
        recorded = NotificationsStatus(sent=sent[-(SENT_LIMIT - len(kept)):], pending=kept)
        return status.model_copy(update={"notifications": recorded})
