"""Notifications: moments read from real planner passes, delivery to a loopback HTTP receiver (with a
failed first answer, retried), once per revision across a new process's planner (the keys in the
status), a sink that keeps failing (Event + metric, the URL nowhere), and EventBridge PutEvents to
a rule with an SQS target in the moto server."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from controller import metrics
from controller.api.release import Moment, ReleaseSpec
from controller.aws.clients import AwsClients
from controller.kube.client import ObjectRef
from controller.notify import Notifications, Notifier, moments
from controller.planner import Requests
from controller.planner.decision import Decision
from controller.testing.moto import MotoServer
from controller.testing.ports import serve_in_background
from controller.webhooks import http_poster
from tests.planner.sim import drive, make_spec, settled
from tests.planner.test_strategies import CANARY_PROMOTE

REF = ObjectRef("production", "pratiko", "uid-1")
SECRET_URL_TOKEN = "s3cr3t-token"
ALL = [m.value for m in Moment]


class Receiver:
    """A loopback HTTP receiver: answers `fail_first` 503s, then 200 (503 while `refuse` is set);
    records what it accepted, with its Idempotency-Key header."""

    def __init__(self, fail_first: int = 0) -> None:
        self.got: list[dict[str, Any]] = []
        self.keys: list[str | None] = []  # the Idempotency-Key of each accepted POST
        self.answers: list[int] = []
        self.refused: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.refuse = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                code = 503 if outer.refuse or len(outer.answers) < outer.fail_first else 200
                outer.answers.append(code)
                if code == 200:
                    outer.got.append(body)
                    outer.keys.append(self.headers.get("Idempotency-Key"))
                else:
                    outer.refused.append(body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_background(self.server)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/{SECRET_URL_TOKEN}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1)
    yield r
    r.close()


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None:
        self.seen.append((reason, message, type_))


def with_sinks(spec: ReleaseSpec, **sink: Any) -> ReleaseSpec:
    wire = spec.to_wire()
    wire["notifications"] = [{"name": "team", "on": ALL, **sink}]
    return ReleaseSpec.model_validate(wire)


def notifier(url: str, events: Events, aws: Any = None) -> Notifier:
    secrets = {("production", "team-webhook", "url"): url}
    return Notifier(lambda ns, name, key: secrets[(ns, name, key)], http_poster(httpx.Client(timeout=5.0)),
                    aws, events, backoff=0.05).start()


WEBHOOK = {"webhook": {"urlSecretRef": {"name": "team-webhook", "key": "url"}, "format": "json"}}


def carried(decision: Any, before: Any) -> Any:
    """The pass's decision as the reconciler sees it: the planner keeps the status' notifications
    (the simulator's passes ran without them)."""
    status = decision.status.model_copy(update={"notifications": before.notifications})
    return decision.__class__(**{**decision.__dict__, "status": status})


def canary_run(spec: ReleaseSpec) -> Any:
    base = settled("1.0.0", CANARY_PROMOTE)
    waiting = drive(spec, base.observation, base.status, now=base.now)
    return base, waiting, drive(spec, waiting.observation, waiting.status, now=waiting.now,
                                requests=Requests(promote="p"))


def test_moments_of_a_canary_rollout_come_from_its_decisions() -> None:
    spec = with_sinks(make_spec("2.0.0", CANARY_PROMOTE), **WEBHOOK)
    base, waiting, done = canary_run(spec)
    seen: list[tuple[Moment, int | None]] = []
    before = base.status
    for p in [*waiting.passes, *done.passes]:
        seen += moments(before, p.decision, spec)
        before = p.decision.status
    names = [m for m, _ in seen]
    assert names[0] == Moment.STARTED
    assert names.count(Moment.AWAITING_APPROVAL) == 1 and names.count(Moment.PROMOTED) == 1
    assert names[-1] == Moment.SUCCEEDED and names.count(Moment.SUCCEEDED) == 1
    assert [s for m, s in seen if m == Moment.STEP_COMPLETED] == [0, 1, 2]
    aborted = decide_abort(spec)
    assert [m for m, _ in aborted] == [Moment.ROLLED_BACK]


def decide_abort(spec: ReleaseSpec) -> list[tuple[Moment, int | None]]:
    from controller.planner import decide
    from tests.planner.sim import ctx

    base = settled("1.0.0", CANARY_PROMOTE)
    waiting = drive(spec, base.observation, base.status, now=base.now)
    d = decide(spec, waiting.status, waiting.observation, ctx(waiting.now + timedelta(seconds=1), Requests(abort="a")))
    return moments(waiting.status, d, spec)


def test_each_moment_is_delivered_once_with_fresh_state_even_after_a_failed_first_try_and_a_restart(
    receiver: Receiver,
) -> None:
    spec = with_sinks(make_spec("2.0.0", CANARY_PROMOTE), **WEBHOOK)
    base, waiting, done = canary_run(spec)
    events = Events()
    first = notifier(receiver.url, events)
    plan = Notifications(first)
    before = base.status
    statuses = []
    for p in waiting.passes:
        decision = plan.plan(REF, spec, carried(p.decision, before), p.now)
        statuses.append(decision.status)
        before = decision.status
    first.drain()
    # The pass after the deliveries records them as sent (the worker never writes the status; in the
    # operator it asks for that pass: tests/e2e/test_notifications.py).
    before = plan.plan(REF, spec, Decision((), before), waiting.now).status
    assert before.notifications is not None and not before.notifications.pending
    first.stop()
    # "Restart": a new notifier and planner, from the status the old process wrote. The new process
    # repeats the last pass from the status before it (as if that pass's other effects were lost):
    # its moments come again, and their keys in the status keep them from being sent twice.
    second = notifier(receiver.url, events)
    plan = Notifications(second)
    last = waiting.passes[-1]
    again = moments(statuses[-2], last.decision, spec)
    assert again, "the repeated pass must produce a moment for this to test anything"
    before = statuses[-2].model_copy(update={"notifications": before.notifications})
    replay = [last, *done.passes]
    for p in replay:
        decision = plan.plan(REF, spec, carried(p.decision, before), p.now)
        before = decision.status
    second.drain()
    second.stop()

    got = [(b["moment"], b["step"]) for b in receiver.got]
    assert len(got) == len(set(got)), got  # no duplicate
    moments_got = [m for m, _ in got]
    assert moments_got[0] == "Started" and moments_got[-1] == "Succeeded"
    assert {"AwaitingApproval", "Promoted", "StepCompleted"} <= set(moments_got)
    assert receiver.answers[0] == 503 and len(receiver.answers) == len(receiver.got) + 1  # retried once
    started = receiver.got[0]
    assert started["namespace"] == "production" and started["name"] == "pratiko"
    assert started["backend"]["canaryVersion"] == "2.0.0" and started["backend"]["stableVersion"] == "1.0.0"
    assert set(started) >= {"moment", "revision", "phase", "step", "stepCount", "weight", "analysis", "condition",
                            "message", "time"}
    promoted = next(b for b in receiver.got if b["moment"] == "Promoted")
    assert promoted["weight"] in (0, 100)
    succeeded = receiver.got[-1]
    assert succeeded["condition"]["reason"] == "Succeeded" and succeeded["phase"] == "Succeeded"
    assert events.seen == []
    assert before.notifications is not None and "team/2/Started" in before.notifications.sent


def test_a_sink_that_keeps_failing_gives_an_event_and_a_metric_and_never_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    always = Receiver(fail_first=10_000)
    try:
        spec = with_sinks(make_spec("2.0.0", CANARY_PROMOTE), **WEBHOOK)
        base = settled("1.0.0", CANARY_PROMOTE)
        first = drive(spec, base.observation, base.status, now=base.now, max_passes=1, exact=True)
        events = Events()
        n = notifier(always.url, events)
        failed_before = metrics.NOTIFICATIONS_TOTAL.labels("webhook", "failed")._value.get()
        decision = Notifications(n).plan(REF, spec, first.passes[0].decision, first.now)
        n.drain()
        n.stop()
        assert decision.actions == first.passes[0].decision.actions  # the pass goes on as decided
        # The counter is the process's: a notifier of an earlier test in this worker may still be
        # giving up at the same moment, so this one's failure shows as at least one more; the Event
        # below is this notifier's own and comes exactly once.
        assert metrics.NOTIFICATIONS_TOTAL.labels("webhook", "failed")._value.get() >= failed_before + 1
        ((reason, message, type_),) = events.seen
        assert (reason, type_) == ("NotificationFailed", "Warning") and "HTTP 503" in message
        assert SECRET_URL_TOKEN not in message and SECRET_URL_TOKEN not in json.dumps(decision.status.to_wire())
        assert "POST" in caplog.text and SECRET_URL_TOKEN not in caplog.text  # httpx logs each request
    finally:
        always.close()


def test_event_bridge_events_reach_an_sqs_target_of_a_rule(moto_server: MotoServer) -> None:
    aws = AwsClients.for_endpoint(moto_server.endpoint)
    sqs = aws.session.client("sqs", endpoint_url=moto_server.endpoint, region_name=aws.region)
    bus = f"releases-{uuid.uuid4().hex[:8]}"  # the moto server is shared by the session
    queue_url = sqs.create_queue(QueueName=bus)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.events.create_event_bus(Name=bus)
    aws.events.put_rule(Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["release-controller"]}))
    aws.events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])

    spec = with_sinks(make_spec("2.0.0", CANARY_PROMOTE), eventBridge={"eventBusName": bus})
    base, waiting, done = canary_run(spec)
    events = Events()
    n = notifier("unused", events, aws.events)
    plan = Notifications(n)
    before = base.status
    for p in [*waiting.passes, *done.passes]:
        before = plan.plan(REF, spec, carried(p.decision, before), p.now).status
    n.drain()
    n.stop()
    received: list[dict[str, Any]] = []
    for _ in range(10):
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            break
        received += [json.loads(m["Body"]) for m in batch]
    kinds = [r["detail-type"] for r in received]
    assert "Release Started" in kinds and "Release Succeeded" in kinds and len(kinds) == len(set(
        (r["detail-type"], r["detail"]["step"]) for r in received))
    assert all(r["source"] == "release-controller" and r["detail"]["name"] == "pratiko" for r in received)
    ids = [r["detail"]["id"] for r in received]  # the receivers' dedupe key
    assert len(set(ids)) == len(ids) and "uid-1/team/2/Started" in ids and "uid-1/team/2/Succeeded" in ids
    assert events.seen == []


def test_a_delivery_pending_when_the_process_died_is_sent_once_by_the_next_with_its_id(receiver: Receiver) -> None:
    spec = with_sinks(make_spec("2.0.0", CANARY_PROMOTE), **WEBHOOK)
    base = settled("1.0.0", CANARY_PROMOTE)
    first = drive(spec, base.observation, base.status, now=base.now, max_passes=1, exact=True)
    events = Events()
    dead = Notifier(lambda *_: receiver.url, http_poster(httpx.Client(timeout=5.0)), None, events)  # never started
    planned = Notifications(dead).plan(REF, spec, first.passes[0].decision, first.now).status
    assert planned.notifications is not None and [p.key for p in planned.notifications.pending] == ["team/2/Started"]
    assert planned.notifications.sent == []

    second = notifier(receiver.url, events)
    plan = Notifications(second)
    decision = plan.plan(REF, spec, Decision((), planned), first.now + timedelta(seconds=5))
    assert decision.requeue_after is not None  # a pass soon, to record the sent mark
    second.drain()
    after = plan.plan(REF, spec, Decision((), decision.status), first.now + timedelta(seconds=10))
    again = plan.plan(REF, spec, Decision((), after.status), first.now + timedelta(seconds=15))
    second.drain()
    second.stop()
    assert [b["moment"] for b in receiver.got] == ["Started"]  # once, the 503 first answer retried
    assert receiver.got[0]["id"] == receiver.keys[0] == "uid-1/team/2/Started"
    assert after.status.notifications is not None and after.status.notifications.sent == ["team/2/Started"]
    assert after.status.notifications.pending == [] and again.status == after.status
    assert after.requeue_after is None and events.seen == []


def test_a_pending_delivery_no_sink_accepted_for_an_hour_is_given_up_with_an_event() -> None:
    spec = with_sinks(make_spec("2.0.0", CANARY_PROMOTE), **WEBHOOK)
    base = settled("1.0.0", CANARY_PROMOTE)
    first = drive(spec, base.observation, base.status, now=base.now, max_passes=1, exact=True)
    events = Events()
    idle = Notifier(lambda *_: "http://127.0.0.1:9/", http_poster(httpx.Client(timeout=5.0)), None, events)
    plan = Notifications(idle)  # never started: nothing is delivered
    planned = plan.plan(REF, spec, first.passes[0].decision, first.now).status
    expired_before = metrics.NOTIFICATIONS_TOTAL.labels("webhook", "expired")._value.get()
    later = Notifications(Notifier(lambda *_: "http://127.0.0.1:9/", http_poster(httpx.Client(timeout=5.0)), None,
                                   events))  # a new process, more than an hour on
    decision = later.plan(REF, spec, Decision((), planned), first.now + timedelta(minutes=61))
    assert decision.status.notifications is not None and decision.status.notifications.pending == []
    assert decision.status.notifications.sent == ["team/2/Started"]  # never planned again
    ((event),) = decision.events
    assert (event.reason, event.type) == ("NotificationExpired", "Warning") and "team/2/Started" in event.message
    assert metrics.NOTIFICATIONS_TOTAL.labels("webhook", "expired")._value.get() == expired_before + 1


def test_a_status_written_without_planning_keeps_what_a_sink_accepted_as_sent(receiver: Receiver) -> None:
    """A pass blocked (AWS unreachable, a refusal) writes the status it read: `carry` moves what the
    worker delivered meanwhile to sent, so that write cannot make it pending again (and due again
    after a restart)."""
    spec = with_sinks(make_spec("2.0.0", CANARY_PROMOTE), **WEBHOOK)
    base = settled("1.0.0", CANARY_PROMOTE)
    first = drive(spec, base.observation, base.status, now=base.now, max_passes=1, exact=True)
    events = Events()
    worker = notifier(receiver.url, events)
    plan = Notifications(worker)
    planned = plan.plan(REF, spec, first.passes[0].decision, first.now).status
    assert planned.notifications is not None and [p.key for p in planned.notifications.pending] == ["team/2/Started"]
    assert plan.carry(REF, planned) == planned  # not delivered yet: still pending
    worker.drain()
    worker.stop()
    carried_status = plan.carry(REF, planned)
    assert carried_status.notifications is not None
    assert carried_status.notifications.pending == [] and carried_status.notifications.sent == ["team/2/Started"]
    assert [b["moment"] for b in receiver.got] == ["Started"]


def test_event_bridge_deliveries_are_made_as_the_release_acts() -> None:
    """With `acting` (controller/aws/roles.py: its ReleasePolicy's role), a Release's EventBridge
    deliveries are sent inside that Release's scope, as its passes' AWS calls are."""
    from contextlib import contextmanager

    scope: list[tuple[str, str]] = []
    seen_in: list[tuple[tuple[str, str], ...]] = []

    @contextmanager
    def acting(namespace: str, name: str) -> Iterator[None]:
        scope.append((namespace, name))
        try:
            yield
        finally:
            scope.pop()

    class Events_:
        def put_events(self, Entries: Any) -> dict[str, Any]:  # noqa: N803 - boto3's name
            seen_in.append(tuple(scope))
            return {"FailedEntryCount": 0}

    spec = with_sinks(make_spec("2.0.0", CANARY_PROMOTE), eventBridge={"eventBusName": "releases"})
    base = settled("1.0.0", CANARY_PROMOTE)
    first = drive(spec, base.observation, base.status, now=base.now, max_passes=1, exact=True)
    n = notifier("unused", Events(), Events_())
    n.acting = acting
    Notifications(n).plan(REF, spec, first.passes[0].decision, first.now)
    n.drain()
    n.stop()
    assert seen_in and all(s == ((REF.namespace, REF.name),) for s in seen_in), seen_in
