"""`Notifier`: the delivery side of notifications, a bounded queue and one worker thread in the
operator process, so a pass never waits on a sink (see `controller.notify` for the guarantees).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from controller import metrics
from controller.api.reasons import Reason
from controller.errors import ObjectGone
from controller.kube.client import ObjectRef
from controller.notify.moments import Delivery, _kind
from controller.notify.sinks import DeliveryFailed, SecretReader, send
from controller.webhooks import Poster

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


class EventSink(Protocol):
    def event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None: ...


class StatusPatcher(Protocol):
    """`controller.kube.ReleaseApi`: the sent mark's read and JSON patch of a Release's status."""

    def current(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def patch_status(self, namespace: str, name: str, ops: list[dict[str, Any]], uid: str | None = None) -> str | None: ...


# What the Notifier knows of a delivery (`Notifier.state`).
HELD = "held"  # queued or being tried
DELIVERED = "delivered"  # a sink accepted it
WAITING = "waiting"  # a round of attempts failed less than RETRY_AFTER ago
IDLE = "idle"  # unknown here (a new process, or the wait is over): a pass queues it


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
        send(delivery, self.secrets, self.post, self.events_client)
