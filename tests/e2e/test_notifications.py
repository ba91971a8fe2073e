"""Notifications end to end: the operator (its own, so it can be killed) posts each moment of a
canary rollout to a loopback receiver whose first answer is 503 (retried), through a webhook URL
kept in a Secret; killed mid-rollout and started again, it sends no moment twice. The URL appears
in no Event, status or operator log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases, wait_for
from tests.notify.test_notify import SECRET_URL_TOKEN, Receiver

pytestmark = pytest.mark.timeout(300)

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "4s"}},
                                                 {"setWeight": 50}, {"pause": {"duration": "2s"}}]}}
ON = ["Started", "StepCompleted", "Promoted", "Succeeded", "RolledBack"]


def test_each_moment_once_with_a_retry_and_across_a_restart(
    own_namespace: str, releases: Releases, kubectl: Kubectl, world: WorldIds, aws: AwsClients,
    env_vars: dict[str, str], tmp_path: Path,
) -> None:
    ns = own_namespace
    log = tmp_path / "operator.log"
    receiver = Receiver(fail_first=1)
    kubectl("create", "secret", "generic", "team-webhook", "-n", ns, f"--from-literal=url={receiver.url}")
    notifications = [{"name": "team", "on": ON,
                      "webhook": {"urlSecretRef": {"name": "team-webhook", "key": "url"}, "format": "json"}}]

    def operator() -> OperatorProcess:
        return OperatorProcess(env_vars, namespaces=(ns,), resync=3.0, log_path=log).start()

    def body(version: str) -> dict[str, object]:
        return release_for(world, name="app", namespace=ns, version=version, strategy=CANARY,
                           rollback={"window": "1s"}, notifications=notifications)

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
