"""Notifications (`spec.notifications`): which moments a pass produced, and their delivery.

`moments` reads a pass's `Decision` against the status it started from (its outcome, phase and
step moves, promotion time, drift reverted), never the Events' free text. `Notifications.plan`
turns them into deliveries, one per sink listening `on` the moment, each keyed
`<sink>/<revision>/<moment>[/<step>]`; a key already in `status.notifications.sent` is skipped and
new keys go into the status the same pass writes, so a moment is sent once per Release revision,
also across an operator restart. The cost of that choice: a delivery queued by a pass whose
process dies before the worker sends it is lost (at most once, never twice).

`Notifier` is the delivery side: a bounded queue and one worker thread in the operator process,
so a pass never waits on a sink. Each delivery is tried up to `ATTEMPTS` times with exponential
back-off; one that still fails is counted (`release_controller_notifications_total{result=
"failed"}`) and reported with a Warning Event (reason NotificationFailed), and the rollout goes on.
A full queue drops the delivery (result "dropped"). The webhook URL is a secret (a Secret key,
read at delivery time): it never appears in a log, an Event, the status or a metric; errors are
reported by kind and HTTP status only.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from controller import metrics
from controller.api.release import (
    ConditionType,
    DriftAction,
    Moment,
    Notification,
    NotificationsStatus,
    Phase,
    ReleaseSpec,
    ReleaseStatus,
)
from controller.api.reasons import Reason
from controller.kube import ObjectRef
from controller.planner.decision import Decision, Outcome

log = logging.getLogger(__name__)

ATTEMPTS = 6
BACKOFF = 1.0  # seconds before the second attempt; doubles, at most MAX_BACKOFF
MAX_BACKOFF = 30.0
QUEUE_SIZE = 1000
SENT_LIMIT = 200  # status.notifications.sent keeps the newest keys (of this and recent revisions)
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


@dataclass(frozen=True)
class Delivery:
    key: str
    ref: ObjectRef
    sink: Notification
    document: Mapping[str, Any]


class SecretReader(Protocol):
    def __call__(self, namespace: str, name: str, key: str) -> str: ...


class Poster(Protocol):
    """POST a JSON body; returns the HTTP status (raises on no answer)."""

    def __call__(self, url: str, body: Mapping[str, Any]) -> int: ...


class EventSink(Protocol):
    def event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None: ...


class DeliveryFailed(Exception):
    """A delivery attempt failed; the message is safe to show (no URL)."""


@dataclass
class Notifications:
    """The reconciler's side: plan this pass's deliveries and record their keys in the status."""

    notifier: "Notifier"

    def plan(self, ref: ObjectRef, spec: ReleaseSpec, before: ReleaseStatus, decision: Decision,
             now: datetime) -> Decision:
        if not spec.notifications:
            return decision
        found = moments(before, decision, spec)
        if not found:
            return decision
        status = decision.status
        sent = list((status.notifications or NotificationsStatus()).sent)
        queued: list[Delivery] = []
        for moment, step in found:
            doc = document(moment, step, ref.namespace, ref.name, status, now)
            for sink in spec.notifications:
                if moment not in sink.on:
                    continue
                key = f"{sink.name}/{status.revision}/{moment.value}" + (f"/{step}" if step is not None else "")
                if key in sent:
                    continue
                sent.append(key)
                queued.append(Delivery(key, ref, sink, doc))
        if not queued:
            return decision
        new = status.model_copy(update={"notifications": NotificationsStatus(sent=sent[-SENT_LIMIT:])})
        for delivery in queued:
            self.notifier.submit(delivery)
        return Decision(actions=decision.actions, status=new, events=decision.events,
                        requeue_after=decision.requeue_after, drift=decision.drift, outcome=decision.outcome)


@dataclass
class Notifier:
    """A bounded queue and one worker thread delivering to the sinks, with retries and back-off."""

    secrets: SecretReader
    post: Poster
    events_client: Any  # boto3 EventBridge client (None: eventBridge sinks fail, reported)
    sink: EventSink
    backoff: float = BACKOFF
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self._queue: queue.Queue[Delivery | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread: threading.Thread | None = None

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

    def submit(self, delivery: Delivery) -> None:
        """Never blocks: a full queue drops the delivery (counted)."""
        try:
            self._queue.put_nowait(delivery)
        except queue.Full:
            metrics.NOTIFICATIONS_TOTAL.labels(_kind(delivery.sink), "dropped").inc()
            log.warning("notification %s for %s/%s dropped: queue full", delivery.key, delivery.ref.namespace,
                        delivery.ref.name)

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
                self.deliver(item)
            finally:
                self._queue.task_done()

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
                   f"{ATTEMPTS} attempts: {why}")
        log.warning("%s/%s: %s", delivery.ref.namespace, delivery.ref.name, message)
        try:
            self.sink.event(delivery.ref, Reason.NOTIFICATION_FAILED, message, "Warning")
        except Exception:  # the Event is best effort too
            log.warning("could not record the NotificationFailed Event")
        return False

    def _send(self, delivery: Delivery) -> None:
        sink = delivery.sink
        if sink.webhook is not None:
            ref = sink.webhook.url_secret_ref
            try:
                url = self.secrets(delivery.ref.namespace, ref.name, ref.key)
            except Exception as exc:
                raise DeliveryFailed(f"Secret {ref.name} key {ref.key} cannot be read ({type(exc).__name__})") from None
            try:
                code = self.post(url, webhook_body(sink.webhook.format, delivery.document))
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
            "Detail": json.dumps(delivery.document),
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

    def post(url: str, body: Mapping[str, Any]) -> int:
        _REDACT.add(url)
        code: int = client.post(url, json=body).status_code
        return code

    return post


def secret_reader(api_client: Any) -> SecretReader:
    """Reads one key of a Secret in the Release's namespace (core/v1 get)."""
    import base64

    from kubernetes import client as k8s

    core = k8s.CoreV1Api(api_client)

    def read(namespace: str, name: str, key: str) -> str:
        secret = core.read_namespaced_secret(name, namespace)
        data = (secret.data or {}).get(key)
        if data is None:
            raise KeyError(key)
        return base64.b64decode(data).decode().strip()

    return read
