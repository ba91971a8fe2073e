"""A 3-minute kube-apiserver outage mid-canary, with two replicas as the production overlay runs them
(one scope, leader election): no process dies or hangs, AWS is not touched while the
API server is away, the pause is held for the outage and the rollout goes on once it is back;
SIGTERM then ends each process within the Deployment's grace period.

The API server stops and starts again on the same etcd (controller/testing/kube.py). The session's
environment is shared: nothing else runs against it in this test's process meanwhile.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_proxy import AwsProxy
from controller.testing.aws_world import WorldIds
from controller.testing.env import LocalEnvironment
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import AwsWatch, Releases, wait_converged, wait_for
from tests.e2e.test_one_writer import FAST_LEASE, _leader_state

pytestmark = pytest.mark.timeout(600)

OUTAGE = float(os.environ.get("RC_TEST_API_OUTAGE_SECONDS", "180"))
PAUSE = 30.0
STRATEGY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": f"{PAUSE:.0f}s"}},
                                                   {"setWeight": 60}]}}
GRACE = 60.0  # terminationGracePeriodSeconds of the chart's Deployment


def test_two_replicas_live_through_an_api_server_outage_and_the_pause_is_held(
    own_namespace: str, releases: Releases, world: WorldIds, aws: AwsClients, env_vars: dict[str, str],
    tmp_path: Path, local_env: LocalEnvironment,
) -> None:
    ns = own_namespace
    kube = local_env.kube
    assert kube is not None
    green = world.canary_target_group_arn
    with AwsProxy(env_vars["AWS_ENDPOINT_URL"]) as pa, AwsProxy(env_vars["AWS_ENDPOINT_URL"]) as pb:
        replicas = [
            OperatorProcess({**env_vars, **FAST_LEASE, "AWS_ENDPOINT_URL": p.endpoint}, namespaces=(ns,), resync=3.0,
                            log_path=tmp_path / f"{i}.log")
            for i, p in enumerate((pa, pb))
        ]
        try:
            for r in replicas:
                r.start()
            wait_for("one replica leads", lambda: sorted(_leader_state(r)[0] for r in replicas) == ["leading", "standby"], 30)  # type: ignore[index]
            releases.apply(release_for(world, name="app", namespace=ns, version="1.0.0", strategy=STRATEGY,
                                       rollback={"window": "1s"}))
            releases.wait_phase(ns, "app", "Succeeded", 60, generation=1)
            with AwsWatch(env_vars, world) as watch:
                releases.apply(release_for(world, name="app", namespace=ns, version="2.0.0", strategy=STRATEGY,
                                           rollback={"window": "1s"}))
                wait_for("canary weight 20", lambda: watch.latest().weights.get(green) == 20, 90)
                paused_at = next(s.at for s in watch.samples if s.weights.get(green) == 20)
                wait_for("5 s into the pause", lambda: time.monotonic() - paused_at > 5, 10)
                kube.stop_apiserver()
                down_at = time.monotonic()
                try:
                    wait_for("the outage", lambda: time.monotonic() - down_at > OUTAGE, OUTAGE + 10, interval=1)
                    for r in replicas:
                        assert r.healthy()  # alive, /healthz answers
                finally:
                    kube.start_apiserver()
                up_at = time.monotonic()
                wait_for("canary weight 60", lambda: watch.latest().weights.get(green) == 60, PAUSE + 60)
                moved_at = next(s.at for s in watch.samples if s.weights.get(green) == 60)
                wait_converged(releases, aws, world, ns, "app", "2.0.0", generation=2)
            writes = sorted([*pa.writes(), *pb.writes()], key=lambda w: w.at)
            assert not [w for w in writes if down_at < w.at < up_at], "AWS changed while the API server was away"
            # The pause ran 5 s before the outage; the other 25 s after it (within a resync and a lease).
            assert PAUSE - 5 - 3 <= moved_at - up_at <= PAUSE - 5 + 3 + 10, (moved_at - up_at)
            weights = watch.weights_of(green)
            assert weights == sorted(weights) and weights[-1] == 100, weights
            for r in replicas:
                assert r.healthy()
        finally:
            for r in replicas:
                started = time.monotonic()
                r.stop(timeout=GRACE)
                assert r.process is not None and r.process.returncode is not None
                assert time.monotonic() - started < GRACE
