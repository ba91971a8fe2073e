"""Fair notifications: one hanging sink in team-a delays only its own deliveries; prod's is delivered
on time, against loopback servers (one that accepts and never answers, one that records)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from controller.api.release import Notification
from controller.kube.client import ObjectRef
from controller.notify.moments import Delivery
from controller.notify.worker import Notifier
from controller.tenancy.guard import guarded_client
from controller.testing.ports import silent_listener, wait_until
from controller.webhooks import http_poster
from tests.notify.test_notify import Events, Receiver


@pytest.fixture()
def hanging() -> Iterator[tuple[str, list[socket.socket]]]:
    """A sink that accepts connections and never answers."""
    with silent_listener() as (port, held):
        yield f"http://127.0.0.1:{port}/hook", held


def delivery(namespace: str, key: str) -> Delivery:
    sink = Notification.model_validate({"name": "team", "on": ["Started"],
                                        "webhook": {"urlSecretRef": {"name": "hook", "key": "url"}}})
    return Delivery(key, ObjectRef(namespace, "app", f"uid-{namespace}"), sink,
                    {"moment": "Started", "namespace": namespace, "name": "app"})


def test_a_hanging_sink_delays_only_its_own_deliveries(hanging: tuple[str, list[socket.socket]]) -> None:
    hanging_url, accepted = hanging
    receiver = Receiver()
    urls = {"team-a": hanging_url, "prod": receiver.url}
    notifier = Notifier(lambda ns, name, key: urls[ns], http_poster(guarded_client(timeout=5.0)), None, Events(),
                        backoff=0.05).start()
    try:
        for i in range(5):  # team-a's sink hangs: each attempt waits out its timeout
            notifier.submit(delivery("team-a", f"team/{i}/Started"))
        wait_until(lambda: bool(accepted), 5, "team-a's lane on its first request")
        sent = time.monotonic()
        notifier.submit(delivery("prod", "team/1/Started"))
        deadline = sent + 3.0
        while not receiver.got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert receiver.got and receiver.got[0]["namespace"] == "prod", "prod's notification waited on team-a's sink"
        assert time.monotonic() - sent < 3.0
        assert notifier.state(ObjectRef("team-a", "app", "uid-team-a"), "team/0/Started") == "held"
    finally:
        notifier.stop(timeout=0.5)
        receiver.close()
