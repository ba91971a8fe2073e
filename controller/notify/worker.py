"""`Notifier`: the delivery side of notifications, in the operator process, so a pass never waits
on a sink (see `controller.notify` for the guarantees).

Must not: write the Release's status. What a sink accepted is kept in this process's memory
(`state`); the next pass of that Release records it (the ledger), and `on_delivered` asks the
operator for that pass at once.

Fair by sink: every sink of every Release (namespace, Release, sink name) is a lane with its own
bounded queue and its own worker thread while it has work, so a slow or dead sink delays only its
own deliveries, never another team's (tenancy issue). Each request carries the poster's timeout;
a lane's worker ends when its queue is empty. The number of lanes working at once is bounded
(`MAX_LANES`); past it a delivery is left to a later pass, as with a full queue.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from controller import metrics
from controller.api.reasons import Reason
from controller.kube.client import ObjectRef
from controller.notify.moments import Delivery, _kind
from controller.notify.sinks import DeliveryFailed, SecretReader, send
from controller.webhooks import Poster

log = logging.getLogger(__name__)

ATTEMPTS = 6
BACKOFF = 1.0  # seconds before the second attempt; doubles, at most MAX_BACKOFF
MAX_BACKOFF = 30.0
QUEUE_SIZE = 1000  # deliveries queued over every lane
LANE_SIZE = 100  # deliveries queued for one sink
MAX_LANES = 256  # sinks being delivered to at once (one thread each)
SENT_LIMIT = 200  # status.notifications sent + pending: sent keeps the newest keys (this and recent revisions)
PENDING_LIMIT = 50
EXPIRE_AFTER = timedelta(hours=1)  # a pending delivery no sink accepted by then is given up
RETRY_AFTER = 60.0  # seconds after a round of attempts failed until a pass queues the delivery again
PENDING_RECHECK = 5.0  # a pass this soon while a delivery is in flight, to record its sent mark
REMEMBERED = 10_000  # deliveries this process remembers as accepted (until a pass recorded them)


class EventSink(Protocol):
    def event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None: ...



# What the Notifier knows of a delivery (`Notifier.state`).
HELD = "held"  # queued or being tried
DELIVERED = "delivered"  # a sink accepted it
WAITING = "waiting"  # a round of attempts failed less than RETRY_AFTER ago
IDLE = "idle"  # unknown here (a new process, or the wait is over): a pass queues it


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g} h"


Ident = tuple[str, str, str | None, str]
Lane = tuple[str, str, str]  # namespace, Release, sink name


def _ident(ref: ObjectRef, key: str) -> Ident:
    return (ref.namespace, ref.name, ref.uid, key)


@dataclass
class Notifier:
    """A bounded queue and worker thread per sink (lane), delivering with retries and back-off; it
    remembers what a sink accepted (`state`) and calls `on_delivered` with the Release, whose next
    pass records it in the status (the operator's runtime wakes that Release's worker)."""

    secrets: SecretReader
    post: Poster
    events_client: Any  # boto3 EventBridge client (None: eventBridge sinks fail, reported)
    sink: EventSink
    on_delivered: Callable[[ObjectRef], None] | None = None
    # Whose AWS credentials a Release's deliveries use (controller/aws/roles.py `ReleaseRoles.acting_for`,
    # with `events_client` routed): its ReleasePolicy's role, as its passes do. None: the client's own.
    acting: Callable[[str, str], AbstractContextManager[None]] | None = None
    backoff: float = BACKOFF
    sleep: Callable[[float], None] = time.sleep
    retry_after: float = RETRY_AFTER

    def __post_init__(self) -> None:
        self._lanes: dict[Lane, deque[Delivery]] = {}
        self._working: dict[Lane, threading.Thread] = {}
        self._queued = 0  # deliveries queued or being handled, over every lane
        self._started = False
        self._stopped = False
        self._lock = threading.Lock()
        self._held: set[Ident] = set()
        self._delivered: OrderedDict[Ident, None] = OrderedDict()
        self._gave_up: dict[Ident, float] = {}
        self._reported: set[Ident] = set()  # a NotificationFailed Event said so already

    def start(self) -> "Notifier":
        with self._lock:
            self._started = True
            for lane in list(self._lanes):
                self._work(lane)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """No new work; each lane ends after the delivery it is on (waited for up to `timeout` in all)."""
        with self._lock:
            self._stopped = True
            threads = list(self._working.values())
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

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
        """Never blocks: a full queue (of its sink, or of all) leaves the delivery to a later pass
        (counted as dropped)."""
        ident = _ident(delivery.ref, delivery.key)
        lane: Lane = (delivery.ref.namespace, delivery.ref.name, delivery.sink.name)
        with self._lock:
            if ident in self._held or ident in self._delivered:
                return
            queued = self._lanes.get(lane)
            full = (self._stopped or self._queued >= QUEUE_SIZE or (queued is not None and len(queued) >= LANE_SIZE)
                    or (lane not in self._working and len(self._working) >= MAX_LANES))
            if not full:
                self._held.add(ident)
                self._gave_up.pop(ident, None)
                self._lanes.setdefault(lane, deque()).append(delivery)
                self._queued += 1
                if self._started:
                    self._work(lane)
        if full:
            metrics.NOTIFICATIONS_TOTAL.labels(_kind(delivery.sink), "dropped").inc()
            log.warning("notification %s for %s/%s not queued: queue full (a later pass queues it again)",
                        delivery.key, delivery.ref.namespace, delivery.ref.name)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued delivery is done (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queued and time.monotonic() < deadline:
            time.sleep(0.05)

    def _work(self, lane: Lane) -> None:
        """A worker for `lane` unless one runs (called with the lock held)."""
        if lane in self._working or self._stopped:
            return
        thread = threading.Thread(target=self._run, args=(lane,), name=f"notifier-{lane[2]}", daemon=True)
        self._working[lane] = thread
        thread.start()

    def _run(self, lane: Lane) -> None:
        while True:
            with self._lock:
                queued = self._lanes.get(lane)
                if self._stopped or not queued:
                    if not queued:
                        self._lanes.pop(lane, None)
                    self._working.pop(lane, None)
                    return
                item = queued.popleft()
            try:
                self._handle(item)
            except Exception:  # the worker must outlive any one delivery
                log.exception("notification worker: delivery of %s failed unexpectedly", item.key)
            finally:
                with self._lock:
                    self._queued -= 1

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
        if ok and self.on_delivered is not None:
            try:
                self.on_delivered(delivery.ref)  # a pass soon records it; else PENDING_RECHECK's does
            except Exception:
                log.warning("could not ask for a pass of %s/%s after a delivery", delivery.ref.namespace,
                            delivery.ref.name)

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


    def _send(self, delivery: Delivery) -> None:
        if self.acting is None:
            send(delivery, self.secrets, self.post, self.events_client)
            return
        with self.acting(delivery.ref.namespace, delivery.ref.name):
            send(delivery, self.secrets, self.post, self.events_client)
