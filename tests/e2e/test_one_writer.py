"""At most one writer per Release: the leader Lease, on the real kube-apiserver.

Each operator process here talks to moto through its own recording proxy
(controller/testing/aws_proxy.py), so the test knows which process sent which AWS change and when.
The operators watch their own namespace (outside the session operator's glob) with short Lease
timings (lease 4 s, renew 2.5 s, retry 0.5 s) so a takeover takes seconds.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from controller.aws.clients import AwsClients
from controller.fencing import NotLeading
from controller.operator.leadership import Leadership, LeaseTimes
from controller.testing.aws_proxy import AwsProxy
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import (AwsWatch, Releases, assert_serving_only, condition, task_definition_images,
                               wait_converged, wait_for)

pytestmark = pytest.mark.timeout(420)

FAST_LEASE = {"RELEASE_CONTROLLER_LEASE_SECONDS": "4", "RELEASE_CONTROLLER_RENEW_SECONDS": "2.5",
              "RELEASE_CONTROLLER_RETRY_SECONDS": "0.5"}
STEPS = [{"setWeight": 20}, {"pause": {"duration": "6s"}}, {"setWeight": 50}, {"pause": {"duration": "6s"}},
         {"setWeight": 80}, {"pause": {"duration": "4s"}}]
CANARY = {"type": "Canary", "canary": {"steps": STEPS}}


# --------------------------------------------------------------------------- the Lease itself


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_leader_lease_has_one_holder_and_a_paused_holder_stops_before_another_may_start(kube_api: Any) -> None:
    """client-go's rules on the real API server, with each process's own (fake) monotonic clock:
    the second candidate waits the lease out on its own clock, the first stops acting at its renew
    deadline (before the second may take over), and after a gap it is a new term even for the
    same holder."""
    ns, name = "default", f"test-leader-{uuid.uuid4().hex[:8]}"
    times = LeaseTimes(lease=15, renew=10, retry=2)
    ca, cb = Clock(), Clock()
    a = Leadership(kube_api, ns, name, me="a", times=times, clock=ca)
    b = Leadership(kube_api, ns, name, me="b", times=times, clock=cb)
    try:
        assert a.try_once() and a.begin() == 1
        assert not b.try_once() and "standing by: a holds" in b.why
        with pytest.raises(NotLeading):
            b.begin()
        # a renews; b, whose clock runs on, sees a new record each time and keeps waiting.
        for _ in range(10):
            ca.now += 2
            cb.now += 2
            assert a.try_once() and not b.try_once()
        # a is paused (no renewal); at its deadline it stops acting on its own clock, before b may take over.
        ca.now += 10
        with pytest.raises(NotLeading, match="renew deadline"):
            a.check(1)
        cb.now += 14
        assert not b.try_once(), "b took over before the lease ran out on its own clock"
        cb.now += 1.5
        assert b.try_once() and b.begin() == 1
        # a resumes: it learns it lost, and stays standing by while b renews.
        assert not a.try_once() and "standing by: b holds" in a.why
        # b stops renewing for longer than its deadline (an outage), then renews its own Lease: a new term.
        cb.now += 11
        assert not b.leading
        assert b.try_once() and b.begin() == 2
        assert b.gap(2) == pytest.approx(1.0)  # nobody acted from its deadline to this renewal
        with pytest.raises(NotLeading, match="term 1"):
            b.check(1)
        # b leaves (SIGTERM): a takes over at once, not after the lease.
        b.stop()
        assert a.try_once() and a.leading
        assert a.gap(a.begin()) == 0.0  # taken from another holder: what it did meanwhile is unknown
    finally:
        k8s.CoordinationV1Api(kube_api).delete_namespaced_lease(name, ns)


# --------------------------------------------------------------------------- two operator processes


def _leader_state(proc: OperatorProcess) -> tuple[str, str] | None:
    for line in proc.metrics().splitlines():
        m = re.match(r'release_controller_leader\{reason="([^"]*)",state="([^"]*)"\} 1\.0', line)
        if m:
            return m.group(2), m.group(1)
    return None


@pytest.fixture()
def proxies(env_vars: dict[str, str]) -> Iterator[tuple[AwsProxy, AwsProxy]]:
    with AwsProxy(env_vars["AWS_ENDPOINT_URL"]) as a, AwsProxy(env_vars["AWS_ENDPOINT_URL"]) as b:
        yield a, b


def _operator(env_vars: dict[str, str], ns: str, proxy: AwsProxy, log: Path, *args: str) -> OperatorProcess:
    env = {**env_vars, **FAST_LEASE, "AWS_ENDPOINT_URL": proxy.endpoint}
    return OperatorProcess(env, namespaces=(ns,), resync=3.0, log_path=log, extra_args=args)


def _assert_rolled_out_once(watch: AwsWatch, aws: AwsClients, world: WorldIds) -> None:
    green = world.canary_target_group_arn
    # The canary's traffic only ever went up: nobody pulled it back to an older step.
    weights = watch.weights_of(green)
    assert weights == sorted(weights) and weights[-1] == 100, weights
    assert max(len(s.task_sets) for s in watch.samples) == 2
    assert task_definition_images(aws, world) == [world.image, world.image.replace("1.0.0", "2.0.0")]
    assert_serving_only(aws, world, "2.0.0")


def test_two_operators_with_different_peering_names_on_one_namespace_one_writes(
    own_namespace: str, releases: Releases, world: WorldIds, aws: AwsClients, env_vars: dict[str, str],
    tmp_path: Path, proxies: tuple[AwsProxy, AwsProxy],
) -> None:
    """Started with the deprecated --peering (and --priority) of an earlier release's Deployment,
    under two names: both start, each says the flags are ignored, and they are still one scope with
    one Lease, one writer."""
    ns = own_namespace
    pa, pb = proxies
    first = _operator(env_vars, ns, pa, tmp_path / "a.log", "--peering", "one", "--priority", "7").start()
    try:
        wait_for("the first operator leads", lambda: _leader_state(first) == ("leading", "leading"), 30)
        second = _operator(env_vars, ns, pb, tmp_path / "b.log", "--peering", "two").start()
        try:
            wait_for("the second stands by", lambda: _leader_state(second) == ("standby", "held-by-another"), 30)
            releases.apply(release_for(world, name="app", namespace=ns, version="1.0.0", strategy=CANARY,
                                   rollback={"window": "1s"}))
            releases.wait_phase(ns, "app", "Succeeded", 60, generation=1)
            with AwsWatch(env_vars, world) as watch:
                releases.apply(release_for(world, name="app", namespace=ns, version="2.0.0", strategy=CANARY,
                                   rollback={"window": "1s"}))
                wait_converged(releases, aws, world, ns, "app", "2.0.0", generation=2)
                wait_for("one live task set", lambda: len(watch.latest().task_sets) == 1, 20)
            assert _leader_state(second) == ("standby", "held-by-another")
        finally:
            second.stop()
    finally:
        first.stop()
    assert pa.writes(), "the leader changed nothing in AWS"
    assert pb.writes() == [], f"the standby changed AWS: {pb.writes()[:5]}"
    assert "standing by" in (tmp_path / "b.log").read_text()
    assert "--peering and --priority: deprecated and ignored" in (tmp_path / "a.log").read_text()
    assert "--peering: deprecated and ignored" in (tmp_path / "b.log").read_text()
    _assert_rolled_out_once(watch, aws, world)
    # Every Event once: the standby wrote none.
    reasons = [e["reason"] for e in releases.events(ns, "app")]
    assert reasons.count("Accepted") == 1, reasons


def test_a_paused_leader_resumes_as_standby_and_never_acts_on_what_it_remembered(
    own_namespace: str, releases: Releases, world: WorldIds, aws: AwsClients, env_vars: dict[str, str],
    tmp_path: Path, proxies: tuple[AwsProxy, AwsProxy],
) -> None:
    ns = own_namespace
    pa, pb = proxies
    green = world.canary_target_group_arn
    first = _operator(env_vars, ns, pa, tmp_path / "a.log").start()
    second: OperatorProcess | None = None
    stopped_at = continued_at = 0.0
    try:
        wait_for("the first operator leads", lambda: _leader_state(first) == ("leading", "leading"), 30)
        second = _operator(env_vars, ns, pb, tmp_path / "b.log").start()
        wait_for("the second stands by", lambda: _leader_state(second) == ("standby", "held-by-another"), 30)  # type: ignore[arg-type]
        releases.apply(release_for(world, name="app", namespace=ns, version="1.0.0", strategy=CANARY,
                                   rollback={"window": "1s"}))
        releases.wait_phase(ns, "app", "Succeeded", 60, generation=1)
        with AwsWatch(env_vars, world) as watch:
            releases.apply(release_for(world, name="app", namespace=ns, version="2.0.0", strategy=CANARY,
                                   rollback={"window": "1s"}))
            wait_for("canary weight 20", lambda: watch.latest().weights.get(green) == 20, 90)
            assert first.process is not None
            os.killpg(first.process.pid, signal.SIGSTOP)  # a long GC pause, a frozen node
            stopped_at = time.monotonic()
            try:
                # Longer than the lease: the standby takes over and walks the canary on.
                wait_for("the second operator moves the canary on",
                         lambda: watch.latest().weights.get(green, 0) >= 50, 60)
                wait_for("the lease outlived", lambda: time.monotonic() - stopped_at > 8, 20)
            finally:
                os.killpg(first.process.pid, signal.SIGCONT)
                continued_at = time.monotonic()
            wait_for("the resumed operator stands by", lambda: _leader_state(first) == ("standby", "held-by-another"), 30)
            wait_converged(releases, aws, world, ns, "app", "2.0.0", generation=2)
            wait_for("one live task set", lambda: len(watch.latest().task_sets) == 1, 20)
    finally:
        if second is not None:
            second.stop()
        first.stop()
    a_writes, b_writes = pa.writes(), pb.writes()
    assert a_writes and b_writes
    # One writer at any moment: the first wrote only before it was stopped, the second only after.
    assert [w for w in a_writes if w.at > stopped_at] == [], [w for w in a_writes if w.at > stopped_at][:5]
    assert all(w.at > stopped_at for w in b_writes)
    assert continued_at > stopped_at + 8
    _assert_rolled_out_once(watch, aws, world)


# --------------------------------------------------------------------------- timers no clock can fool


def test_a_pause_lasts_its_duration_across_replicas_whose_clocks_are_ten_minutes_apart(
    own_namespace: str, releases: Releases, world: WorldIds, aws: AwsClients, env_vars: dict[str, str],
    tmp_path: Path, proxies: tuple[AwsProxy, AwsProxy],
) -> None:
    """The leader's clock is 10 minutes behind, the standby's 10 minutes ahead (the test-only clock
    offset); the leader leaves 5 s into a 20 s pause and the standby finishes it. On each host's own
    clock, the replica ahead would have found the pause 20 minutes old (ending it at once) and the
    2-minute progress deadline long passed (failing the rollout at once)."""
    ns = own_namespace
    pa, pb = proxies
    green = world.canary_target_group_arn
    pause = 20.0
    strategy = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": f"{pause:.0f}s"}},
                                                       {"setWeight": 60}]}}

    def operator(proxy: AwsProxy, offset: int, log: str) -> OperatorProcess:
        env = {**env_vars, **FAST_LEASE, "AWS_ENDPOINT_URL": proxy.endpoint,
               "RELEASE_CONTROLLER_TEST_CLOCK_OFFSET_SECONDS": str(offset)}
        return OperatorProcess(env, namespaces=(ns,), resync=3.0, log_path=tmp_path / log)

    first = operator(pa, -600, "behind.log").start()
    second: OperatorProcess | None = None
    try:
        wait_for("the replica behind leads", lambda: _leader_state(first) == ("leading", "leading"), 30)
        second = operator(pb, 600, "ahead.log").start()
        wait_for("the replica ahead stands by", lambda: _leader_state(second) == ("standby", "held-by-another"), 30)  # type: ignore[arg-type]
        releases.apply(release_for(world, name="app", namespace=ns, version="1.0.0", strategy=strategy,
                                   progressDeadline="2m", rollback={"window": "1s"}))
        releases.wait_phase(ns, "app", "Succeeded", 60, generation=1)
        with AwsWatch(env_vars, world) as watch:
            releases.apply(release_for(world, name="app", namespace=ns, version="2.0.0", strategy=strategy,
                                       progressDeadline="2m", rollback={"window": "1s"}))
            wait_for("canary weight 20", lambda: watch.latest().weights.get(green) == 20, 90)
            started = next(s.at for s in watch.samples if s.weights.get(green) == 20)
            wait_for("5 s into the pause", lambda: time.monotonic() - started > 5, 10)
            first.stop()  # hands the Lease over: the replica ahead takes over at once
            wait_for("canary weight 60", lambda: watch.latest().weights.get(green) == 60, pause + 30)
            ended = next(s.at for s in watch.samples if s.weights.get(green) == 60)
            wait_converged(releases, aws, world, ns, "app", "2.0.0", generation=2)
    finally:
        if second is not None:
            second.stop()
        first.stop()
    resync = 3.0
    assert pause - resync <= ended - started <= pause + 2 * resync + 2, ended - started
    assert pb.writes() and all(w.at > started + 5 for w in pb.writes())
    _assert_rolled_out_once_weights(watch, green)
    assert not [e for e in releases.events(ns, "app") if e["reason"] in ("RolledBack", "ProgressDeadlineExceeded")]


def _assert_rolled_out_once_weights(watch: AwsWatch, green: str) -> None:
    weights = watch.weights_of(green)
    assert weights == sorted(weights) and weights[-1] == 100, weights


# --------------------------------------------------------------------------- AWS throttling


def test_a_throttled_rollout_says_throttled_within_seconds_once_and_goes_on(
    own_namespace: str, releases: Releases, world: WorldIds, aws: AwsClients, env_vars: dict[str, str],
    tmp_path: Path, proxies: tuple[AwsProxy, AwsProxy],
) -> None:
    """All the ECS and ELBv2 requests throttled (a loopback proxy in front of moto): the new spec's
    pass stops within seconds and says Reconciling=True, reason Throttled, with one Warning Event,
    AWS unchanged; once AWS answers the rollout goes on by itself (back-off at most a minute)."""
    ns = own_namespace
    proxy, _ = proxies
    green = world.canary_target_group_arn
    op = _operator(env_vars, ns, proxy, tmp_path / "op.log").start()
    try:
        releases.apply(release_for(world, name="app", namespace=ns, version="1.0.0", strategy=CANARY,
                                   rollback={"window": "1s"}))
        releases.wait_phase(ns, "app", "Succeeded", 60, generation=1)
        with AwsWatch(env_vars, world) as watch:
            proxy.throttle = 1.0
            applied = time.monotonic()
            releases.apply(release_for(world, name="app", namespace=ns, version="2.0.0", strategy=CANARY,
                                       rollback={"window": "1s"}))
            status = releases.wait(ns, "app", lambda s: s.get("observedGeneration") == 2
                                   and condition(s, "Reconciling").get("reason") == "Throttled", 30, "Throttled")
            said = time.monotonic() - applied
            assert said < 20, said
            assert (condition(status, "Reconciling")["status"], condition(status, "Ready")["status"]) == ("True", "False")
            wait_for("a few throttled passes", lambda: time.monotonic() - applied > said + 10, 30)
            throttled = [e for e in releases.events(ns, "app") if e["reason"] == "Throttled"]
            assert len(throttled) == 1 and throttled[0]["type"] == "Warning", throttled
            assert watch.weights_of(green) == [0]
            proxy.throttle = 0.0
            # (A blocked pass keeps the phase and the Progressing condition of the old spec: wait for the
            # rollout itself, not only for a Succeeded phase at generation 2.)
            releases.wait(ns, "app", lambda s: (s.get("backend") or {}).get("stableVersion") == "2.0.0", 180,
                          "2.0.0 promoted")
            wait_converged(releases, aws, world, ns, "app", "2.0.0", generation=2, timeout=60)
    finally:
        op.stop()
    _assert_rolled_out_once_weights(watch, green)
