"""The sinks: `webhook` POSTs the document (`format: json`), a Slack message (`{"text": ...}`) or a
Teams MessageCard; `eventBridge` puts one event on the bus, source `release-controller`,
detail-type `Release <moment>`, detail the json document.

A failure raises `DeliveryFailed` with a message that is safe to show: the kind of error or the
HTTP status, never the URL (a secret) nor anything the receiver answered.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from controller.notify.moments import SOURCE, Delivery, webhook_body
from controller.webhooks import Poster


class SecretReader(Protocol):
    def __call__(self, namespace: str, name: str, key: str) -> str: ...


class DeliveryFailed(Exception):
    """A delivery attempt failed; the message is safe to show (no URL)."""


def send(delivery: Delivery, secrets: SecretReader, post: Poster, events_client: Any) -> None:
    """Deliver once to the delivery's sink; raises DeliveryFailed when the sink did not accept it."""
    sink = delivery.sink
    if sink.webhook is not None:
        ref = sink.webhook.url_secret_ref
        try:
            url = secrets(delivery.ref.namespace, ref.name, ref.key)
        except Exception as exc:
            raise DeliveryFailed(f"Secret {ref.name} key {ref.key} cannot be read ({type(exc).__name__})") from None
        try:
            code = post(url, webhook_body(sink.webhook.format, delivery.document), {"Idempotency-Key": delivery.id})
        except Exception as exc:
            raise DeliveryFailed(f"no answer ({type(exc).__name__})") from None
        if not 200 <= code < 300:
            raise DeliveryFailed(f"HTTP {code}")
        return
    assert sink.event_bridge is not None
    if events_client is None:
        raise DeliveryFailed("no EventBridge client")
    answer = events_client.put_events(Entries=[{
        "Source": SOURCE,
        "DetailType": f"Release {delivery.document['moment']}",
        "Detail": json.dumps({**delivery.document, "id": delivery.id}),
        "EventBusName": sink.event_bridge.event_bus_name,
    }])
    if answer.get("FailedEntryCount"):
        entry = (answer.get("Entries") or [{}])[0]
        raise DeliveryFailed(f"PutEvents: {entry.get('ErrorCode', 'failed')}")
