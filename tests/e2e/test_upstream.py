"""Verified-upstream promotion end to end: a production Release (`spec.promotion.requires` staging,
soak 5s) waits with Ready=False/AwaitingUpstream while staging rolls the version out, changes
nothing in its own AWS world meanwhile (polled from the outside), and starts by itself once staging
has had the version Succeeded for the soak. Two worlds in the shared moto, one operator."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases, condition, drop_namespace, live_versions, wait_converged

pytestmark = pytest.mark.timeout(240)

SOAK = 5.0
CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "3s"}}]}}


@pytest.fixture()
def staging_namespace(kubectl: Kubectl, crd_installed: None) -> Iterator[str]:
    name = f"test-{os.getpid()}-staging-{time.monotonic_ns() % 100_000}"
    kubectl("create", "namespace", name)
    yield name
    drop_namespace(kubectl, name)


def succeeded_at_revision(releases: Releases, namespace: str, revision: int) -> dict[str, Any]:
    # The phase a Release had stays while it awaits upstream (Ready says it waits): wait for the
    # revision's own Succeeded.
    return releases.wait(namespace, "app", lambda s: s.get("phase") == "Succeeded" and s.get("revision") == revision,
                         120, f"Succeeded at revision {revision}")


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_production_waits_for_staging_to_soak_the_version_then_starts_by_itself(
    operator: OperatorProcess, releases: Releases, namespace: str, staging_namespace: str, world: WorldIds,
    aws: AwsClients,
) -> None:
    prod_world = world
    staging_world = seed_world(aws, name=f"w{os.getpid()}stg{time.monotonic_ns() % 100_000}",
                               image="repo/pratiko-backend:1.0.0")
    requires = {"requires": [{"release": {"namespace": staging_namespace, "name": "app"}, "soak": f"{SOAK:.0f}s"}]}
    for ns, w in ((staging_namespace, staging_world), (namespace, prod_world)):
        releases.apply(release_for(w, name="app", namespace=ns, version="1.0.0", strategy=CANARY))
    for ns, w in ((staging_namespace, staging_world), (namespace, prod_world)):
        wait_converged(releases, aws, w, ns, "app", "1.0.0", 1)

    # Production first: 2.0.0 has not been anywhere yet.
    releases.apply(release_for(prod_world, name="app", namespace=namespace, version="2.0.0", strategy=CANARY,
                               promotion=requires))
    held = releases.wait(namespace, "app", lambda s: condition(s, "Ready").get("reason") == "AwaitingUpstream"
                         and s.get("observedGeneration") == 2, 30, "Ready=False/AwaitingUpstream")
    ready = condition(held, "Ready")
    assert ready["status"] == "False"
    assert f"{staging_namespace}/app has not had backend 2.0.0 Succeeded and live" in ready["message"]

    first_seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:  # when production's AWS first shows 2.0.0, by the wall clock
        while not stop.is_set():
            if "2.0.0" in live_versions(aws, prod_world):
                first_seen.setdefault("prod", time.time())
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        releases.apply(release_for(staging_world, name="app", namespace=staging_namespace, version="2.0.0",
                                   strategy=CANARY))
        releases.wait(staging_namespace, "app", lambda s: s.get("phase") == "Progressing"
                      and s.get("observedGeneration") == 2, 30, "staging rolling out 2.0.0")
        # Staging runs 2.0.0 as a canary: production still waits and its AWS has not moved.
        still = releases.status(namespace, "app")
        assert condition(still, "Ready").get("reason") == "AwaitingUpstream"
        assert live_versions(aws, prod_world) == {"1.0.0"}

        staged = succeeded_at_revision(releases, staging_namespace, 2)
        succeeded_at = _time(next(h for h in staged["history"] if h["backendVersion"] == "2.0.0"
                                  and h["result"] == "Succeeded")["finishedAt"])
        soaking = releases.wait(namespace, "app", lambda s: "soaking" in condition(s, "Ready").get("message", "")
                                or s.get("phase") == "Progressing" and s.get("revision", 0) > 1, 30,
                                "production soaking or started")
        if "soaking" in condition(soaking, "Ready").get("message", ""):
            due = (succeeded_at + dt.timedelta(seconds=SOAK)).strftime("%Y-%m-%dT%H:%M:%SZ")
            assert f"until {due}" in condition(soaking, "Ready")["message"]

        done = succeeded_at_revision(releases, namespace, 2)
    finally:
        stop.set()
        thread.join(timeout=5)
    started = _time(done["history"][-1]["startedAt"])
    # Not before staging had 2.0.0 Succeeded for the soak (whole seconds in the status), and by
    # itself soon after: no edit, no annotation since.
    story = (json.dumps(releases.status(staging_namespace, "app").get("history"), indent=1),
             [(e.get("lastTimestamp") or e.get("eventTime"), e["reason"], e["message"])
              for e in releases.events(namespace, "app")])
    assert started >= succeeded_at + dt.timedelta(seconds=SOAK - 1), story
    assert started <= succeeded_at + dt.timedelta(seconds=SOAK + 15)
    assert first_seen["prod"] >= (succeeded_at + dt.timedelta(seconds=SOAK - 1)).timestamp()
    assert done["revision"] == 2 and done["backend"]["stableVersion"] == "2.0.0"
    assert condition(done, "Ready")["status"] == "True"
