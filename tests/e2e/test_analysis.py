"""Health analysis and automatic rollback on real traffic: the operator, moto, a real Prometheus
scraping the simulated workloads, and the local load balancer carrying a steady 40 req/s.

Each test seeds its own world (1.0.0 serving), adopts it with a canary Release analysed by the 5xx
share of `{{version}}` (Prometheus, 1 s analysis interval, `[5s]` rate window, a traffic floor of
2 req/s), then releases 2.0.0 and watches what a user would: the Release status, its Events, the
listener weights in moto and the balancer's own request log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.dataplane import DataPlane, LoadGenerator, read_log, write_behaviour
from controller.testing.dataplane.scenario import STEADY_RATE, canary_release, traffic_of, versions_after
from controller.testing.env import LocalEnvironment
from controller.testing.operator import OperatorProcess
from controller.testing.prometheus import PrometheusServer
from tests.e2e.helpers import Releases, cli, condition, hold_for_passes, live_versions, weights_by_colour

pytestmark = pytest.mark.timeout(420)

NAME = "app"
HEALTHY = {"default": {"error_rate": 0.0, "latency_ms": 5}}


@dataclass
class Plane:
    """A data plane following one world, with load flowing through its balancer."""

    dataplane: DataPlane
    load: LoadGenerator
    behaviour: Path

    def behave(self, version: str, error_rate: float) -> None:
        write_behaviour(self.behaviour, {**HEALTHY, version: {"error_rate": error_rate, "latency_ms": 5}})

    def log(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = read_log(self.dataplane.request_log)
        return entries

    def wait_weights(self, check: Callable[[dict[str, int]], bool], what: str, timeout: float = 15) -> float:
        """Wait until the balancer routes by weights that pass `check`; return that moment."""
        self.dataplane.wait_for(lambda p: check(p.weights), timeout, what)
        return time.time()

    def wait_requests(self, after: float, count: int, timeout: float = 20) -> dict[str, int]:
        """Wait until `count` requests were logged after `after`; return them per version."""
        deadline = time.monotonic() + timeout
        seen: dict[str, int] = {}
        while time.monotonic() < deadline:
            seen = versions_after(self.log(), after)
            if sum(seen.values()) >= count:
                return seen
            time.sleep(0.2)
        raise AssertionError(f"only {seen} requests logged after {after} in {timeout}s")


@pytest.fixture()
def start_plane(local_env: LocalEnvironment, env_vars: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Plane]]:
    planes: list[Plane] = []

    def start(world: WorldIds, targets_dir: Path | None = None, rate: float = STEADY_RATE) -> Plane:
        assert local_env.prometheus is not None
        behaviour = tmp_path / "behaviour.json"
        write_behaviour(behaviour, HEALTHY)
        dp = DataPlane(env_vars["AWS_ENDPOINT_URL"], env_vars["AWS_REGION"], world.cluster, world.service,
                       world.listener_arn, tmp_path / "dataplane", targets_dir or local_env.prometheus.targets_dir,
                       behaviour)
        dp.start()
        try:
            dp.wait_serving({"1.0.0"}, timeout=30)
        except BaseException:
            dp.stop()
            raise
        plane = Plane(dp, LoadGenerator(dp.balancer_url, rate=rate).start(), behaviour)
        planes.append(plane)
        return plane

    yield start
    for plane in planes:
        plane.load.stop()
        plane.dataplane.stop()


def adopt(releases: Releases, world: WorldIds, namespace: str, prometheus: str, **release: Any) -> None:
    releases.apply(canary_release(world, name=NAME, namespace=namespace, version="1.0.0", prometheus_url=prometheus,
                                  **release))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)


def events(releases: Releases, namespace: str) -> list[tuple[str, str, str]]:
    return [(e["reason"], e["type"], e["message"]) for e in releases.events(namespace, NAME)]


def retry(env_vars: dict[str, str], namespace: str) -> None:
    cli(env_vars, "retry", NAME, "-n", namespace)


def test_healthy_canary_is_promoted(operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds,
                                    aws: AwsClients, local_env: LocalEnvironment,
                                    start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    plane = start_plane(world)
    adopt(releases, world, namespace, prometheus)
    started = time.time()
    releases.apply(canary_release(world, name=NAME, namespace=namespace, version="2.0.0", prometheus_url=prometheus))

    status = releases.wait_phase(namespace, NAME, "Succeeded", 120, generation=2)
    assert status["backend"]["stableVersion"] == "2.0.0"
    assert weights_by_colour(aws, world) == {"blue": 0, "green": 100}
    assert [h["result"] for h in status["history"]][-1] == "Succeeded"
    reasons = [r for r, _, _ in events(releases, namespace)]
    assert "Promoted" in reasons and "RolledBack" not in reasons
    # Each analysed pause advanced on a Passed verdict: the operator said so while it ran.
    assert condition(status, "Healthy").get("reason") == "AnalysisPassed", status
    # Analysis keeps running in the rollback window, now on all the traffic, and still passes.
    status = releases.wait(namespace, NAME, lambda s: (s.get("analysis") or {}).get("verdict") == "Passed", 30,
                           "analysis Passed after promotion")
    assert all(m["verdict"] == "Passed" for m in status["analysis"]["measurements"]), status["analysis"]

    canary = traffic_of(plane.log(), "2.0.0", since=started)
    assert canary.requests > 100 and canary.errors == 0, canary


def test_bad_canary_rolls_back_by_itself_and_stays_back_until_retry(
        operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, env_vars: dict[str, str], start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    steps = ({"setWeight": 20}, {"pause": {"duration": "10s"}}, {"setWeight": 50}, {"pause": {"duration": "3s"}})
    plane = start_plane(world)
    adopt(releases, world, namespace, prometheus, steps=steps)
    plane.behave("2.0.0", 0.3)
    started = time.time()
    releases.apply(canary_release(world, name=NAME, namespace=namespace, version="2.0.0", prometheus_url=prometheus,
                                  steps=steps))

    status = releases.wait_phase(namespace, NAME, "RolledBack", 90, generation=2)
    assert weights_by_colour(aws, world) == {"blue": 100, "green": 0}
    assert status["backend"]["stableVersion"] == "1.0.0" and status["backend"]["canaryWeight"] == 0
    healthy = condition(status, "Healthy")
    assert healthy["status"] == "False" and healthy["reason"] == "AnalysisFailed", healthy
    found = re.search(r"error-rate ([0-9.]+) > max 0\.05", healthy["message"])
    assert found and 0.15 < float(found[1]) < 0.45, healthy["message"]
    assert status["analysis"]["verdict"] == "Failed"
    last = status["history"][-1]
    assert (last["result"], last["backendVersion"]) == ("RolledBack", "2.0.0"), status["history"]
    rolled = [(t, m) for r, t, m in events(releases, namespace) if r == "RolledBack"]
    assert rolled and rolled[0][0] == "Warning" and "error-rate" in rolled[0][1], rolled

    # The balancer saw the bad canary, then nothing but 1.0.0 once the weights changed.
    restored = plane.wait_weights(lambda w: w.get(world.canary_target_group_arn, 0) == 0, "canary weight 0")
    after = plane.wait_requests(restored + 0.5, 80)
    assert set(after) == {"1.0.0"}, after
    canary = traffic_of(plane.log(), "2.0.0", since=started)
    assert canary.errors > 0 and canary.last is not None and canary.last <= restored + 0.5, canary

    # Not retried by itself: the same spec stays rolled back across several passes.
    held_since = time.time()

    def still_rolled_back() -> None:
        st = releases.status(namespace, NAME)
        assert st["phase"] == "RolledBack" and st["backend"]["canaryWeight"] == 0, st

    hold_for_passes(operator, namespace, NAME, 4, still_rolled_back)
    assert weights_by_colour(aws, world) == {"blue": 100, "green": 0}
    assert live_versions(aws, world) == {"1.0.0"}
    assert traffic_of(plane.log(), "2.0.0", since=held_since).requests == 0

    # `retry` runs it again; with the cause fixed, it goes through.
    plane.behave("2.0.0", 0.0)
    retry(env_vars, namespace)
    status = releases.wait(namespace, NAME, lambda s: s.get("phase") == "Succeeded", 120, "Succeeded after retry")
    assert status["backend"]["stableVersion"] == "2.0.0"
    assert [h["result"] for h in status["history"]][-2:] == ["RolledBack", "Succeeded"]
    assert "Retry" in [r for r, _, _ in events(releases, namespace)]


def test_canary_with_too_little_traffic_is_not_promoted(
        operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    # 1% of 40 req/s is 0.4 req/s on the canary: under the query's 2 req/s floor, so no data.
    steps = ({"setWeight": 1}, {"pause": {"duration": "3s"}}, {"setWeight": 50}, {"pause": {"duration": "3s"}})
    plane = start_plane(world)
    adopt(releases, world, namespace, prometheus, steps=steps)
    started = time.time()
    releases.apply(canary_release(world, name=NAME, namespace=namespace, version="2.0.0", prometheus_url=prometheus,
                                  steps=steps))
    releases.wait(namespace, NAME, lambda s: s.get("observedGeneration") == 2 and s["backend"].get("canaryWeight") == 1,
                  60, "canary at 1%")

    # A healthy canary with enough traffic is promoted in about 10 s (test above); give this 25 s. A
    # negative check over the clock on purpose: what must not happen is tied to time (analysis
    # intervals and pauses), not to a number of passes.
    deadline = time.time() + 25
    while time.time() < deadline:
        st = releases.status(namespace, NAME)
        assert st["phase"] in ("Progressing", "Paused"), st
        assert st["backend"]["stableVersion"] == "1.0.0" and st["backend"]["canaryWeight"] == 1, st
        time.sleep(1)
    st = releases.status(namespace, NAME)
    analysis = st["analysis"]
    assert analysis["verdict"] in ("NoData", "Inconclusive") and analysis["samples"] == 0, analysis
    assert all(m["verdict"] == "NoData" for m in analysis["measurements"]), analysis
    assert st["currentStep"] == 1
    assert condition(st, "Progressing")["reason"] == "WaitingForAnalysis", st
    assert condition(st, "Healthy")["status"] == "Unknown", st
    assert weights_by_colour(aws, world) == {"blue": 99, "green": 1}
    canary = traffic_of(plane.log(), "2.0.0", since=started)
    assert 0 < canary.requests < 40 and canary.errors == 0, canary  # some traffic, too little to judge


def test_prometheus_down_pauses_the_rollout(
        operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
        start_plane: Callable[..., Plane], tmp_path: Path) -> None:
    prom = PrometheusServer(tmp_path / "prometheus", scrape_interval="1s")
    prom.start()
    try:
        steps = ({"setWeight": 20}, {"pause": {"duration": "3s"}}, {"setWeight": 50}, {"pause": {"duration": "3s"}})
        start_plane(world, targets_dir=prom.targets_dir)
        adopt(releases, world, namespace, prom.url, steps=steps, consecutive_error_limit=3)
        port = prom.port
        prom.stop()  # the monitoring outage starts before the release

        releases.apply(canary_release(world, name=NAME, namespace=namespace, version="2.0.0", prometheus_url=prom.url,
                                      steps=steps, consecutive_error_limit=3))
        st = releases.wait(namespace, NAME, lambda s: "provider down" in (s.get("analysis") or {}).get("message", ""),
                           60, "analysis: provider down")
        # Held, not failed and not promoted, for well beyond the pause that a measured canary needs
        # (a negative check over the clock on purpose: the pause and the error limit are times).
        deadline = time.time() + 15
        while time.time() < deadline:
            st = releases.status(namespace, NAME)
            assert st["phase"] in ("Progressing", "Paused"), st
            assert st["backend"]["stableVersion"] == "1.0.0" and st["backend"]["canaryWeight"] == 20, st
            assert st["analysis"]["verdict"] == "Inconclusive", st["analysis"]
            time.sleep(1)
        assert st["currentStep"] == 1
        assert condition(st, "Healthy")["status"] == "Unknown" and "provider down" in condition(st, "Healthy")["message"]
        assert weights_by_colour(aws, world) == {"blue": 80, "green": 20}
        reasons = [r for r, _, _ in events(releases, namespace)]
        assert "RolledBack" not in reasons and "Promoted" not in reasons

        # Prometheus comes back: the same rollout resumes from where it was held and completes.
        prom = PrometheusServer(tmp_path / "prometheus", scrape_interval="1s", port=port)
        prom.start()
        status = releases.wait_phase(namespace, NAME, "Succeeded", 90, generation=2)
        assert status["backend"]["stableVersion"] == "2.0.0"
        assert [h["result"] for h in status["history"]][-1] == "Succeeded"
    finally:
        prom.stop()


def test_degradation_in_the_rollback_window_switches_traffic_back(
        operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    steps = ({"setWeight": 50}, {"pause": {"duration": "3s"}})
    plane = start_plane(world)
    adopt(releases, world, namespace, prometheus, steps=steps, rollback_window="60s")
    releases.apply(canary_release(world, name=NAME, namespace=namespace, version="2.0.0", prometheus_url=prometheus,
                                  steps=steps, rollback_window="60s"))
    releases.wait_phase(namespace, NAME, "Succeeded", 90, generation=2)
    assert weights_by_colour(aws, world) == {"blue": 0, "green": 100}
    plane.wait_weights(lambda w: w.get(world.stable_target_group_arn, 0) == 0, "all traffic on 2.0.0")
    assert live_versions(aws, world) == {"1.0.0", "2.0.0"}  # the previous version is kept warm

    degraded = time.time()
    plane.behave("2.0.0", 0.3)
    status = releases.wait_phase(namespace, NAME, "RolledBack", 40, generation=2)
    assert time.time() - degraded < 20
    assert weights_by_colour(aws, world) == {"blue": 100, "green": 0}
    assert status["backend"]["stableVersion"] == "1.0.0"
    last = status["history"][-1]
    assert (last["result"], last["backendVersion"]) == ("RolledBack", "2.0.0"), status["history"]
    assert "error-rate" in status["message"] and "1.0.0" in status["message"], status["message"]
    assert "RolledBack" in [r for r, _, _ in events(releases, namespace)]

    restored = plane.wait_weights(lambda w: w.get(world.canary_target_group_arn, 0) == 0, "traffic back on blue")
    after = plane.wait_requests(restored + 0.5, 80)
    assert set(after) == {"1.0.0"}, after
    bad = traffic_of(plane.log(), "2.0.0", since=degraded)
    assert bad.errors > 0, bad
