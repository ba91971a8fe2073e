"""Notifications end to end (the worker's sent mark: a uid-tested JSON patch of the real API
server's status, moving only its own pending entry): the operator (its own, so it can be killed) posts each moment of a
canary rollout to a loopback receiver whose first answer is 503 (retried), through a webhook URL
kept in a Secret; killed mid-rollout and started again, it sends no moment twice. The URL appears
in no Event, status or operator log. Killed (SIGKILL) while a delivery is pending (the receiver
refuses it until after the kill), the next process delivers that moment exactly once, with its id
in the body and the Idempotency-Key header."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.api.release import Notification
from controller.aws.clients import AwsClients
from controller.kube.client import ObjectRef, ReleaseApi, Secrets
from controller.notify import Delivery, Notifier
from controller.webhooks import http_poster
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases, wait_for
from tests.notify.test_notify import SECRET_URL_TOKEN, Receiver

pytestmark = pytest.mark.timeout(300)

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "4s"}},
                                                 {"setWeight": 50}, {"pause": {"duration": "2s"}}]}}
ON = ["Started", "StepCompleted", "Promoted", "Succeeded", "RolledBack"]


def team_sink(kubectl: Kubectl, ns: str, url: str) -> list[dict[str, Any]]:
    """The json webhook sink "team", its URL in a Secret (as the README says to keep it)."""
    kubectl("create", "secret", "generic", "team-webhook", "-n", ns, f"--from-literal=url={url}")
    return [{"name": "team", "on": ON,
             "webhook": {"urlSecretRef": {"name": "team-webhook", "key": "url"}, "format": "json"}}]


def canary_release(world: WorldIds, ns: str, version: str, notifications: list[dict[str, Any]]) -> dict[str, object]:
    return release_for(world, name="app", namespace=ns, version=version, strategy=CANARY,
                       rollback={"window": "1s"}, notifications=notifications)


def test_each_moment_once_with_a_retry_and_across_a_restart(
    own_namespace: str, releases: Releases, kubectl: Kubectl, world: WorldIds, aws: AwsClients,
    env_vars: dict[str, str], tmp_path: Path,
) -> None:
    ns = own_namespace
    log = tmp_path / "operator.log"
    receiver = Receiver(fail_first=1)
    notifications = team_sink(kubectl, ns, receiver.url)

    def operator() -> OperatorProcess:
        return OperatorProcess(env_vars, namespaces=(ns,), resync=3.0, log_path=log).start()

    def body(version: str) -> dict[str, object]:
        return canary_release(world, ns, version, notifications)

    def got(revision: int) -> list[tuple[str, int | None]]:
        return [(b["moment"], b["step"] if b["moment"] == "StepCompleted" else None)
                for b in receiver.got if b["revision"] == revision]

    proc = operator()
    try:
        releases.apply(body("1.0.0"))  # adopted: revision 1 Started and Succeeded, the first after a 503
        wait_for("adoption notified", lambda: ("Succeeded", None) in got(1), 60)
        releases.apply(body("2.0.0"))
        wait_for("first step notified", lambda: ("StepCompleted", 0) in got(2), 90)
        releases.wait(ns, "app", lambda s: "team/2/StepCompleted/0" in (s.get("notifications") or {}).get(
            "sent", []), 10, "the sent key recorded")
        proc.kill()  # mid-pause: the next moments come from the new process
        proc = operator()
        wait_for("rollout notified", lambda: ("Succeeded", None) in got(2), 120)
        status = releases.status(ns, "app")
    finally:
        proc.stop()
        receiver.close()

    assert receiver.answers[0] == 503  # the first delivery failed and was retried
    assert got(1) == [("Started", None), ("Succeeded", None)]
    second = got(2)
    assert len(second) == len(set(second)), second  # nothing twice, restart included
    steps = [s for m, s in second if m == "StepCompleted"]
    assert steps == list(range(len(steps))) and len(steps) >= 3
    assert [m for m, _ in second if m != "StepCompleted"] == ["Started", "Promoted", "Succeeded"]
    doc = next(b for b in receiver.got if b["revision"] == 2 and b["moment"] == "Started")
    assert doc["namespace"] == ns and doc["name"] == "app" and doc["backend"]["canaryVersion"] == "2.0.0"
    assert doc["backend"]["stableVersion"] == "1.0.0" and doc["phase"] == "Progressing"
    assert {"step", "stepCount", "weight", "analysis", "condition", "message", "time"} <= set(doc)
    done = next(b for b in receiver.got if b["revision"] == 2 and b["moment"] == "Succeeded")
    assert done["condition"]["reason"] == "Succeeded" and done["backend"]["stableVersion"] == "2.0.0"
    # The URL is a secret: not in the status, the Events or the operator's log.
    events = json.dumps(releases.events(ns, "app"))
    for text in (json.dumps(status), events, log.read_text()):
        assert SECRET_URL_TOKEN not in text


def pending_keys(status: dict[str, Any]) -> list[str]:
    return [p["key"] for p in (status.get("notifications") or {}).get("pending", [])]


def sent_keys(status: dict[str, Any]) -> list[str]:
    return list((status.get("notifications") or {}).get("sent", []))


def test_a_delivery_pending_at_a_sigkill_arrives_once_after_the_restart(
    own_namespace: str, releases: Releases, kubectl: Kubectl, world: WorldIds, aws: AwsClients,
    env_vars: dict[str, str], tmp_path: Path,
) -> None:
    ns = own_namespace
    log = tmp_path / "operator.log"
    receiver = Receiver()
    notifications = team_sink(kubectl, ns, receiver.url)

    def operator() -> OperatorProcess:
        return OperatorProcess(env_vars, namespaces=(ns,), resync=3.0, log_path=log).start()

    def body(version: str) -> dict[str, object]:
        return canary_release(world, ns, version, notifications)

    def started(revision: int) -> list[dict[str, Any]]:
        return [b for b in receiver.got if b["revision"] == revision and b["moment"] == "Started"]

    proc = operator()
    try:
        releases.apply(body("1.0.0"))
        releases.wait(ns, "app", lambda s: "team/1/Succeeded" in sent_keys(s), 60, "adoption notified and marked")
        receiver.refuse = True
        releases.apply(body("2.0.0"))
        releases.wait(ns, "app", lambda s: "team/2/Started" in pending_keys(s), 60, "Started pending")
        wait_for("Started refused", lambda: any(b["moment"] == "Started" and b["revision"] == 2
                                                for b in receiver.refused), 30)
        proc.kill()  # the delivery is pending: in the status, never accepted
        assert started(2) == []
        receiver.refuse = False
        proc = operator()
        wait_for("Started delivered by the new process", lambda: started(2) != [], 60)
        status = releases.wait(ns, "app", lambda s: "team/2/Started" in sent_keys(s)
                               and "team/2/Started" not in pending_keys(s), 30, "Started marked sent")
        wait_for("rollout notified", lambda: any(b["revision"] == 2 and b["moment"] == "Succeeded"
                                                 for b in receiver.got), 120)
        uid = releases.get(ns, "app")["metadata"]["uid"]
        final = releases.wait(ns, "app", lambda s: pending_keys(s) == [], 30, "nothing pending")
    finally:
        proc.stop()
        receiver.close()

    ((doc,),) = (started(2),)  # exactly once, the kill and the restart included
    assert doc["id"] == f"{uid}/team/2/Started" and doc["backend"]["canaryVersion"] == "2.0.0"
    # The document kept in the status while pending is the one planned, every documented field included.
    assert {"moment", "namespace", "name", "revision", "phase", "backend", "frontend", "step", "stepCount", "weight",
            "analysis", "condition", "message", "time"} <= set(doc)
    assert doc["phase"] == "Progressing" and doc["backend"]["stableVersion"] == "1.0.0"
    assert receiver.keys[receiver.got.index(doc)] == doc["id"]  # the Idempotency-Key header
    second = [(b["moment"], b.get("step") if b["moment"] == "StepCompleted" else None)
              for b in receiver.got if b["revision"] == 2]
    assert len(second) == len(set(second)), second
    assert len({b["id"] for b in receiver.got}) == len(receiver.got)
    assert "team/2/Started" in sent_keys(status) and "team/2/Succeeded" in sent_keys(final)


def test_the_workers_sent_mark_moves_its_own_entry_on_the_object_it_was_planned_for(
    own_namespace: str, releases: Releases, kubectl: Kubectl, world: WorldIds, kube_api: Any,
) -> None:
    ns = own_namespace  # no operator runs here: the status is this test's
    receiver = Receiver()
    kubectl("create", "secret", "generic", "team-webhook", "-n", ns, f"--from-literal=url={receiver.url}")
    sink = Notification.model_validate({"name": "team", "on": ["Started"], "webhook": {
        "urlSecretRef": {"name": "team-webhook", "key": "url"}}})
    api = ReleaseApi(kube_api)

    def planned(keys: list[str]) -> ObjectRef:
        releases.apply(release_for(world, name="app", namespace=ns, version="1.0.0"))
        uid = releases.get(ns, "app")["metadata"]["uid"]
        at = dt.datetime.now(dt.timezone.utc).isoformat()
        api.replace_status(ns, "app", {"phase": "Progressing", "notifications": {"sent": ["team/1/Started"], "pending": [
            {"key": k, "at": at, "document": {"moment": "Started", "id": f"{uid}/{k}"}} for k in keys]}}, uid)
        return ObjectRef(ns, "app", uid)

    notifier = Notifier(Secrets(kube_api).value, http_poster(httpx.Client(timeout=5.0)), None, api, status=api).start()
    try:
        ref = planned(["team/2/Started", "team/2/StepCompleted/0", "team/2/Promoted"])
        # The middle one: the patch tests the entry at its index, so the others stay as they were.
        notifier.submit(Delivery("team/2/StepCompleted/0", ref, sink, {"moment": "StepCompleted"}))
        notifier.drain()
        notes = releases.status(ns, "app")["notifications"]
        assert [p["key"] for p in notes["pending"]] == ["team/2/Started", "team/2/Promoted"]
        assert notes["sent"] == ["team/1/Started", "team/2/StepCompleted/0"]
        # Planned for an object since deleted and created again under its name: its status is untouched.
        kubectl("delete", "release", "app", "-n", ns, "--wait=true")
        renewed = planned(["team/2/Promoted"])
        notifier.submit(Delivery("team/2/Promoted", ref, sink, {"moment": "Promoted"}))
        notifier.drain()
        notes = releases.status(ns, "app")["notifications"]
        assert renewed.uid != ref.uid and [p["key"] for p in notes["pending"]] == ["team/2/Promoted"]
        assert notes["sent"] == ["team/1/Started"]
    finally:
        notifier.stop()
        receiver.close()
    assert [b["moment"] for b in receiver.got] == ["StepCompleted", "Promoted"]  # both were delivered
