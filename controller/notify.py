"""Notifications (`spec.notifications`): which moments a pass produced, and their delivery.

`moments` reads a pass's `Decision` against the status it started from (its outcome, phase and
step moves, promotion time, drift reverted), never the Events' free text. `Notifications.plan`
turns them into deliveries, one per sink listening `on` the moment, each keyed
`<sink>/<revision>/<moment>[/<step>]`, and records each in `status.notifications.pending` (with the
document to send) in the status the same pass writes. The delivery worker, once a sink accepted a
delivery (2xx, or PutEvents without a failed entry), moves its key to `status.notifications.sent`
with a small JSON patch of the status (uid-tested, as the reconciler's writes are); the next pass
records the same from this process's memory, should that patch have lost to the pass's own
whole-status write. A key in `sent` or `pending` is never planned again. After an operator
restart, a pass finds pending deliveries no worker holds and queues them again; so does a pass
after the worker gave up a round of attempts (`RETRY_AFTER` later).

So delivery is at least once, with a dedupe key: every message carries a stable `id` (the Release
object's uid and the key: the json document's `id`, an `Idempotency-Key` header on every webhook
POST, the EventBridge event's `detail.id`). A receiver sees a message twice only if the operator
died between a sink's answer and the sent mark reaching the status (normally a fraction of a second;
until the next pass, `PENDING_RECHECK`, when a pass's whole-status write crossed the mark); dropping
an `id` it has seen makes that harmless. Bounded: a pending delivery no sink accepted within `EXPIRE_AFTER` (1 h) of its
planning is given up (Warning Event NotificationExpired, `result="expired"`); at most
`PENDING_LIMIT` are pending (the oldest beyond are dropped, `result="dropped"`) and `sent` keeps the
newest keys, so the status stays small.

`Notifier` is the delivery side: a bounded queue and one worker thread in the operator process,
so a pass never waits on a sink. Each round of a delivery is up to `ATTEMPTS` tries with
exponential back-off; one that still fails is counted (`release_controller_notifications_total{
result="failed"}`) and reported once with a Warning Event (reason NotificationFailed), and the
rollout goes on. A full queue leaves the delivery to a later pass (result "dropped"). The webhook
URL is a secret (a Secret key, read at delivery time): it never appears in a log, an Event, the
status or a metric; errors are reported by kind and HTTP status only.

Sinks: `webhook` POSTs the document (`format: json`, fields in the README), a Slack message
(`{"text": ...}`) or a Teams MessageCard; `eventBridge` puts one event on the bus, source
`release-controller`, detail-type `Release <moment>`, detail the json document.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from controller import metrics
from controller.api.release import (
    ConditionType,
    DriftAction,
    Moment,
    Notification,
    NotificationsStatus,
    PendingNotification,
    Phase,
    ReleaseSpec,
    ReleaseStatus,
)
from controller.api.reasons import Reason
from controller.errors import ObjectGone
from controller.kube import ObjectRef
from controller.planner.decision import Decision, Event, Outcome

log = logging.getLogger(__name__)

ATTEMPTS = 6
BACKOFF = 1.0  # seconds before the second attempt; doubles, at most MAX_BACKOFF
MAX_BACKOFF = 30.0
QUEUE_SIZE = 1000
SENT_LIMIT = 200  # status.notifications sent + pending: sent keeps the newest keys (this and recent revisions)
PENDING_LIMIT = 50
EXPIRE_AFTER = timedelta(hours=1)  # a pending delivery no sink accepted by then is given up
RETRY_AFTER = 60.0  # seconds after a round of attempts failed until a pass queues the delivery again
PENDING_RECHECK = 5.0  # a pass this soon while a delivery is in flight, to record its sent mark
MARK_TRIES = 3
MARK_WAIT = 0.5  # the pass that planned a delivery may not have written its status yet
REMEMBERED = 10_000  # deliveries this process remembers as accepted (until a pass recorded them)
SOURCE = "release-controller"


def moments(before: ReleaseStatus, decision: Decision, spec: ReleaseSpec) -> list[tuple[Moment, int | None]]:
    """The moments this pass produced: (moment, step) with step set for StepCompleted."""
    after = decision.status
    out: list[tuple[Moment, int | None]] = []
    if after.revision > before.revision:
        out.append((Moment.STARTED, None))
    elif after.revision == before.revision and after.current_step > before.current_step:
        out.extend((Moment.STEP_COMPLETED, step) for step in range(before.current_step, after.current_step))
    if after.phase == Phase.PAUSED and before.phase != Phase.PAUSED:
        out.append((Moment.PAUSED, None))
    if _progressing_reason(after) == Reason.WAITING_FOR_PROMOTE and _progressing_reason(before) != Reason.WAITING_FOR_PROMOTE:
        out.append((Moment.AWAITING_APPROVAL, None))
    if after.promoted_at is not None and after.promoted_at != before.promoted_at:
        out.append((Moment.PROMOTED, None))
    if decision.outcome == Outcome.SUCCEEDED:
        out.append((Moment.SUCCEEDED, None))
    elif decision.outcome == Outcome.ROLLED_BACK:
        out.append((Moment.ROLLED_BACK, None))
    elif decision.outcome == Outcome.FAILED:
        out.append((Moment.STALLED, None))
    for reason, moment in ((Reason.ROLLBACK_UNSAFE, Moment.STALLED), (Reason.HOOK_FAILED, Moment.HOOK_FAILED)):
        if _ready_reason(after) == reason and _ready_reason(before) != reason:
            out.append((moment, None))
    failed_before = {(h.point, h.name, h.revision) for h in before.hooks or [] if h.failed_at is not None}
    if any(h.failed_at is not None and (h.point, h.name, h.revision) not in failed_before for h in after.hooks or []) \
            and (Moment.HOOK_FAILED, None) not in out:
        out.append((Moment.HOOK_FAILED, None))  # also a postPromotion or onRollback hook: Ready says nothing
    if decision.drift and spec.rollback.on_drift == DriftAction.REVERT:
        out.append((Moment.DRIFT_REVERTED, None))
    return out


def _ready_reason(status: ReleaseStatus) -> str | None:
    return next((c.reason for c in status.conditions if c.type == ConditionType.READY), None)


def _progressing_reason(status: ReleaseStatus) -> str | None:
    return next((c.reason for c in status.conditions if c.type == ConditionType.PROGRESSING), None)


def document(moment: Moment, step: int | None, namespace: str, name: str, status: ReleaseStatus,
             now: datetime) -> dict[str, Any]:
    """The json format's document (fields listed in the README)."""
    ready = next((c for c in status.conditions if c.type == ConditionType.READY), None)
    analysis = status.analysis
    return {
        "moment": moment.value,
        "namespace": namespace,
        "name": name,
        "revision": status.revision,
        "phase": status.phase.value,
        "backend": {"stableVersion": status.backend.stable_version, "canaryVersion": status.backend.canary_version},
        "frontend": {"stableVersion": status.frontend.stable_version, "canaryVersion": status.frontend.canary_version},
        "step": step if step is not None else status.current_step,
        "stepCount": status.step_count,
        "weight": status.backend.canary_weight,
        "analysis": ({"verdict": analysis.verdict.value if analysis.verdict else None, "message": analysis.message}
                     if analysis is not None else None),
        "condition": ({"type": "Ready", "status": ready.status, "reason": ready.reason, "message": ready.message}
                      if ready is not None else None),
        "message": status.message,
        "time": now.isoformat(),
    }


# The document's shape with every field null: the API server drops null fields from what the status
# keeps of a pending delivery, and a receiver gets each documented field, null or not.
_NULLS: dict[str, Any] = {
    "id": None, "moment": None, "namespace": None, "name": None, "revision": None, "phase": None,
    "backend": {"stableVersion": None, "canaryVersion": None},
    "frontend": {"stableVersion": None, "canaryVersion": None},
    "step": None, "stepCount": None, "weight": None,
    "analysis": {"verdict": None, "message": None},
    "condition": {"type": None, "status": None, "reason": None, "message": None},
    "message": None, "time": None,
}
_NULLABLE_OBJECTS = ("analysis", "condition")  # null as a whole when absent


def complete(doc: Mapping[str, Any]) -> dict[str, Any]:
    """`doc` with the fields the status dropped (null ones) back, as null."""
    out = dict(doc)
    for field, empty in _NULLS.items():
        value = out.get(field)
        if isinstance(empty, dict):
            if value is None:
                out[field] = None if field in _NULLABLE_OBJECTS else dict(empty)
            elif isinstance(value, Mapping):
                out[field] = {**empty, **value}
        elif field not in out:
            out[field] = None
    return out


def _text(doc: Mapping[str, Any]) -> str:
    versions = doc["backend"]["canaryVersion"] or doc["backend"]["stableVersion"]
    condition = doc["condition"] or {}
    return (f"Release {doc['namespace']}/{doc['name']}: {doc['moment']} (revision {doc['revision']}, backend "
            f"{versions}, step {doc['step']}/{doc['stepCount']}, weight {doc['weight']}%): "
            f"{condition.get('message') or doc['message']}")


def webhook_body(fmt: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    if fmt == "slack":
        return {"text": _text(doc)}
    if fmt == "teams":
        return {"@type": "MessageCard", "@context": "https://schema.org/extensions",
                "summary": f"{doc['namespace']}/{doc['name']}: {doc['moment']}", "text": _text(doc)}
    return dict(doc)


def delivery_id(ref: ObjectRef, key: str) -> str:
    """The stable id of one delivery, the receivers' dedupe key: the Release object's uid (a
    Release deleted and created again under its name starts its revisions afresh) and the key."""
    return f"{ref.uid or f'{ref.namespace}/{ref.name}'}/{key}"


@dataclass(frozen=True)
class Delivery:
    key: str
    ref: ObjectRef
    sink: Notification
    document: Mapping[str, Any]

    @property
    def id(self) -> str:
        return delivery_id(self.ref, self.key)


class SecretReader(Protocol):
    def __call__(self, namespace: str, name: str, key: str) -> str: ...


class Poster(Protocol):
    """POST a JSON body (with extra headers); returns the HTTP status (raises on no answer)."""

    def __call__(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> int: ...


class EventSink(Protocol):
    def event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None: ...


class StatusPatcher(Protocol):
    """`controller.kube.ReleaseApi`: the sent mark's read and JSON patch of a Release's status."""

    def current(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def patch_status(self, namespace: str, name: str, ops: list[dict[str, Any]], uid: str | None = None) -> str | None: ...


class DeliveryFailed(Exception):
    """A delivery attempt failed; the message is safe to show (no URL)."""


# What the Notifier knows of a delivery (`Notifier.state`).
HELD = "held"  # queued or being tried
DELIVERED = "delivered"  # a sink accepted it
WAITING = "waiting"  # a round of attempts failed less than RETRY_AFTER ago
IDLE = "idle"  # unknown here (a new process, or the wait is over): a pass queues it


@dataclass
class Notifications:
    """The reconciler's side: plan this pass's deliveries, keep the pending ones in the status, queue
    again what no worker holds, and record what a sink accepted."""

    notifier: "Notifier"

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


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g} h"


Ident = tuple[str, str, str | None, str]


def _ident(ref: ObjectRef, key: str) -> Ident:
    return (ref.namespace, ref.name, ref.uid, key)


@dataclass
class Notifier:
    """A bounded queue and one worker thread delivering to the sinks, with retries and back-off;
    it marks what a sink accepted in the Release's status (`status` None: in memory only)."""

    secrets: SecretReader
    post: Poster
    events_client: Any  # boto3 EventBridge client (None: eventBridge sinks fail, reported)
    sink: EventSink
    status: StatusPatcher | None = None
    backoff: float = BACKOFF
    sleep: Callable[[float], None] = time.sleep
    retry_after: float = RETRY_AFTER

    def __post_init__(self) -> None:
        self._queue: queue.Queue[Delivery | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._held: set[Ident] = set()
        self._delivered: OrderedDict[Ident, None] = OrderedDict()
        self._gave_up: dict[Ident, float] = {}
        self._reported: set[Ident] = set()  # a NotificationFailed Event said so already

    def start(self) -> "Notifier":
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        if self._thread is not None:
            self._thread.join(timeout)

    def state(self, ref: ObjectRef, key: str) -> str:
        ident = _ident(ref, key)
        with self._lock:
            if ident in self._delivered:
                return DELIVERED
            if ident in self._held:
                return HELD
            gave_up = self._gave_up.get(ident)
        if gave_up is not None and time.monotonic() - gave_up < self.retry_after:
            return WAITING
        return IDLE

    def submit(self, delivery: Delivery) -> None:
        """Never blocks: a full queue leaves the delivery to a later pass (counted as dropped)."""
        ident = _ident(delivery.ref, delivery.key)
        with self._lock:
            if ident in self._held or ident in self._delivered:
                return
            self._held.add(ident)
            self._gave_up.pop(ident, None)
        try:
            self._queue.put_nowait(delivery)
        except queue.Full:
            with self._lock:
                self._held.discard(ident)
            metrics.NOTIFICATIONS_TOTAL.labels(_kind(delivery.sink), "dropped").inc()
            log.warning("notification %s for %s/%s not queued: queue full (a later pass queues it again)",
                        delivery.key, delivery.ref.namespace, delivery.ref.name)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued delivery is done (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._handle(item)
            except Exception:  # the worker must outlive any one delivery
                log.exception("notification worker: delivery of %s failed unexpectedly", item.key if item else "")
            finally:
                self._queue.task_done()

    def _handle(self, delivery: Delivery) -> None:
        ident = _ident(delivery.ref, delivery.key)
        ok = self.deliver(delivery)
        with self._lock:
            self._held.discard(ident)
            if ok:
                self._delivered[ident] = None
                while len(self._delivered) > REMEMBERED:
                    self._delivered.popitem(last=False)
                self._reported.discard(ident)
            else:
                self._gave_up[ident] = time.monotonic()
        if ok:
            self._mark(delivery)

    def deliver(self, delivery: Delivery) -> bool:
        """Up to ATTEMPTS tries with back-off; True when delivered."""
        kind = _kind(delivery.sink)
        wait = self.backoff
        why = ""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self._send(delivery)
                metrics.NOTIFICATIONS_TOTAL.labels(kind, "sent").inc()
                return True
            except DeliveryFailed as exc:
                why = str(exc)
            except Exception as exc:  # a sink must never stop the worker; the name only (no URL)
                why = type(exc).__name__
            metrics.NOTIFICATIONS_TOTAL.labels(kind, "retried" if attempt < ATTEMPTS else "failed").inc()
            if attempt < ATTEMPTS:
                self.sleep(wait)
                wait = min(wait * 2, MAX_BACKOFF)
        message = (f"notification {delivery.sink.name} ({kind}) of {delivery.document['moment']} failed after "
                   f"{ATTEMPTS} attempts: {why}; tried again every {self.retry_after:g}s until "
                   f"{_hours(EXPIRE_AFTER)} after it was planned")
        log.warning("%s/%s: %s", delivery.ref.namespace, delivery.ref.name, message)
        ident = _ident(delivery.ref, delivery.key)
        with self._lock:
            first = ident not in self._reported
            self._reported.add(ident)
        if first:
            try:
                self.sink.event(delivery.ref, Reason.NOTIFICATION_FAILED, message, "Warning")
            except Exception:  # the Event is best effort too
                log.warning("could not record the NotificationFailed Event")
        return False

    def _mark(self, delivery: Delivery) -> None:
        """Move the delivery's key from pending to sent in the Release's status: one JSON patch that
        tests the uid and the pending entry's key at its index, so it changes only what it read."""
        if self.status is None:
            return
        ref, key = delivery.ref, delivery.key
        why = "its pending entry was not written yet"
        for _ in range(MARK_TRIES):
            try:
                obj = self.status.current(ref.namespace, ref.name)
                if obj is None or (ref.uid and obj.get("metadata", {}).get("uid") != ref.uid):
                    return  # gone: nothing to mark
                notes = (obj.get("status") or {}).get("notifications") or {}
                index = next((i for i, p in enumerate(notes.get("pending") or []) if p.get("key") == key), None)
                if index is None:
                    if key in (notes.get("sent") or []):
                        return  # a pass recorded it already
                    time.sleep(MARK_WAIT)  # the pass that planned it is about to write its status
                    continue
                ops: list[dict[str, Any]] = [
                    {"op": "test", "path": f"/status/notifications/pending/{index}/key", "value": key},
                    {"op": "remove", "path": f"/status/notifications/pending/{index}"},
                    ({"op": "add", "path": "/status/notifications/sent/-", "value": key} if "sent" in notes
                     else {"op": "add", "path": "/status/notifications/sent", "value": [key]}),
                ]
                self.status.patch_status(ref.namespace, ref.name, ops, ref.uid)
                return
            except ObjectGone:
                return
            except Exception as exc:  # the status moved under it (a failed test, 422): read it again
                why = f"{type(exc).__name__} {getattr(exc, 'status', '')}".strip()
        log.info("%s/%s: sent mark of %s not written (%s); the next pass records it", ref.namespace, ref.name,
                 key, why)

    def _send(self, delivery: Delivery) -> None:
        sink = delivery.sink
        if sink.webhook is not None:
            ref = sink.webhook.url_secret_ref
            try:
                url = self.secrets(delivery.ref.namespace, ref.name, ref.key)
            except Exception as exc:
                raise DeliveryFailed(f"Secret {ref.name} key {ref.key} cannot be read ({type(exc).__name__})") from None
            try:
                code = self.post(url, webhook_body(sink.webhook.format, delivery.document),
                                 {"Idempotency-Key": delivery.id})
            except Exception as exc:
                raise DeliveryFailed(f"no answer ({type(exc).__name__})") from None
            if not 200 <= code < 300:
                raise DeliveryFailed(f"HTTP {code}")
            return
        assert sink.event_bridge is not None
        if self.events_client is None:
            raise DeliveryFailed("no EventBridge client")
        answer = self.events_client.put_events(Entries=[{
            "Source": SOURCE,
            "DetailType": f"Release {delivery.document['moment']}",
            "Detail": json.dumps({**delivery.document, "id": delivery.id}),
            "EventBusName": sink.event_bridge.event_bus_name,
        }])
        if answer.get("FailedEntryCount"):
            entry = (answer.get("Entries") or [{}])[0]
            raise DeliveryFailed(f"PutEvents: {entry.get('ErrorCode', 'failed')}")


def _kind(sink: Notification) -> str:
    return "webhook" if sink.webhook is not None else "eventBridge"


class _Redact(logging.Filter):
    """Drops the webhook URLs from log lines of the HTTP libraries (httpx logs every request's URL
    at INFO): the URL is a secret."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()
        self._lock = threading.Lock()

    def add(self, url: str) -> None:
        with self._lock:
            self.urls.add(url)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        with self._lock:
            found = [u for u in self.urls if u in text]
        if found:
            for url in found:
                text = text.replace(url, "<webhook url>")
            record.msg, record.args = text, None
        return True


_REDACT = _Redact()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_REDACT)


def register_secret_url(url: str) -> None:
    """A URL that must not appear in the HTTP libraries' log lines."""
    _REDACT.add(url)


def http_poster(client: Any) -> Poster:
    """A Poster over an httpx.Client (its errors are named by kind only, never with the URL; the
    library's own request log lines have the URL redacted)."""

    def post(url: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> int:
        _REDACT.add(url)
        code: int = client.post(url, json=body, headers=dict(headers or {})).status_code
        return code

    return post
