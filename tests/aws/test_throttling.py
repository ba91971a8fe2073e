"""AWS throttles: a pass stops within seconds, says Throttled (Reconciling=True) with one Warning
Event, the back-off between passes stays at most a minute, and the rollout goes on when AWS answers.

The real observer and effectors, botocore's retries and the reconciler, against moto over HTTP
through a loopback proxy that answers a share of the ECS and ELBv2 requests with AWS's throttling
error (controller/testing/aws_proxy.py; moto never throttles). The Kubernetes side is an in-memory
sink: this tier has no API server (the e2e tests have one).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from controller.operator.app import AWS_PASS_LIMIT, build_reconciler
from controller.aws.clients import AwsClients
from controller.reconciler.backoff import MAX_BACKOFF_SECONDS
from controller.testing.aws_proxy import AwsProxy
from controller.testing.aws_world import WorldIds
from controller.testing.moto import MotoServer
from tests.reconciler.test_reconciler_aws_unreachable import Sink

STRATEGY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "1h"}}]}}


@pytest.fixture()
def proxy(moto_endpoint: MotoServer) -> Iterator[AwsProxy]:
    with AwsProxy(moto_endpoint.endpoint, seed=7) as p:
        yield p


def cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def test_a_throttled_pass_stops_within_seconds_says_throttled_once_and_the_rollout_goes_on(
    world: WorldIds, proxy: AwsProxy,
) -> None:
    clients = AwsClients.for_endpoint(proxy.endpoint)
    meta = {"namespace": "default", "name": "web", "uid": "u1", "generation": 1}
    sink = Sink({"metadata": meta, "spec": world.spec(version="1.0.0", frontend_version=None, strategy=STRATEGY)})
    reconciler, _ = build_reconciler(clients, sink)  # type: ignore[arg-type]
    for _ in range(10):
        if reconciler.reconcile(sink.obj).phase == "Succeeded" and sink.obj["status"].get("phase") == "Succeeded":
            break
    assert sink.obj["status"]["phase"] == "Succeeded"

    # A new version while AWS throttles 70% of the ECS and ELBv2 requests, then all of them.
    sink.obj = {**sink.obj, "metadata": {**meta, "generation": 2},
                "spec": world.spec(version="2.0.0", frontend_version=None, strategy=STRATEGY)}
    proxy.throttle = 1.0
    durations, delays = [], []
    for _ in range(4):
        started = time.monotonic()
        outcome = reconciler.reconcile(sink.obj)
        durations.append(time.monotonic() - started)
        delays.append(outcome.requeue_after)
    # Each pass ends within seconds (botocore alone retried one call for tens of seconds), well
    # inside twice the read timeout, and says why.
    assert max(durations) < AWS_PASS_LIMIT, durations
    ready, reconciling = cond(sink.obj, "Ready"), cond(sink.obj, "Reconciling")
    assert (ready["status"], ready["reason"]) == ("False", "Throttled")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "Throttled")
    assert "throttled" in ready["message"]
    assert sink.obj["status"]["observedGeneration"] == 2
    assert [(r, t) for r, _, t in sink.events if r == "Throttled"] == [("Throttled", "Warning")]
    assert all(d is not None and 0 < d <= MAX_BACKOFF_SECONDS for d in delays), delays
    assert MAX_BACKOFF_SECONDS <= 60
    assert not [w for w in proxy.writes() if w.operation in ("CreateTaskSet", "ModifyListener")]

    # 70% throttled: passes go on, each bounded; then AWS answers and the canary starts.
    proxy.throttle = 0.7
    for _ in range(6):
        started = time.monotonic()
        reconciler.reconcile(sink.obj)
        assert time.monotonic() - started < AWS_PASS_LIMIT * 2
    proxy.throttle = 0.0
    for _ in range(10):
        reconciler.reconcile(sink.obj)
        if sink.obj["status"].get("backend", {}).get("canaryWeight") == 20:
            break
    assert sink.obj["status"]["backend"]["canaryWeight"] == 20
    assert cond(sink.obj, "Ready")["reason"] != "Throttled"
