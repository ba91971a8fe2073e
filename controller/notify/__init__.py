"""Notifications (`spec.notifications`): which moments a pass produced, and their delivery.

The package: `moments` (pure: what a pass produced, the documents), `ledger` (the status side,
run inside a pass), `worker` (the delivery thread), `sinks` (webhook and EventBridge).

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

from controller.notify.ledger import Notifications
from controller.notify.moments import Delivery, delivery_id, document, moments, webhook_body
from controller.notify.sinks import DeliveryFailed
from controller.notify.worker import Notifier

__all__ = ["Delivery", "DeliveryFailed", "Notifications", "Notifier", "delivery_id", "document", "moments",
           "webhook_body"]
