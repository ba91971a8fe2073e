"""End to end: one Release moves three ECS services and a frontend (issue many-services), with real traffic.

The world is the issue's: an API behind the ALB, an MCP server behind the same ALB on a listener and
target groups of its own, and a worker with no load balancer, each followed by a data plane that runs
its task sets as processes (the balancers route by the listeners as moto stores them; Prometheus
scrapes every task). `mcp` and `worker` come `after: [api]`.

What a user would notice, sampled from AWS every 0.2 s while the operator works (each sample reads the
followers before the API, so a follower seen ahead of the API really was):
- in order: neither the MCP server's nor the worker's new version ever has more of its service than
  the API's new version has of the API's;
- in lockstep: a step's pause starts only once every service holds the step's weight;
- rolled back in reverse order: when the MCP server's new version fails its analysis, the followers
  are back on the old version before the API's new version loses its share.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_network, seed_world
from controller.testing.dataplane import DataPlane, LoadGenerator, read_log, write_behaviour
from controller.testing.dataplane.scenario import STEADY_RATE, error_rate_query
from controller.testing.env import LocalEnvironment
from controller.testing.operator import OperatorProcess
from tests.e2e.helpers import Releases, condition, image_of, live_task_sets, origin_path, wait_for

pytestmark = pytest.mark.timeout(420)

NAME = "system"
SERVICES = ("api", "mcp", "worker")
FOLLOWERS = ("mcp", "worker")
HEALTHY = {"default": {"error_rate": 0.0, "latency_ms": 5}}
_worlds = iter(range(1, 1000))


@pytest.fixture()
def worlds(aws: AwsClients) -> dict[str, WorldIds]:
    """The three services on one cluster and one network; api and mcp behind one ALB, 1.0.0 running."""
    tag = f"s{threading.get_native_id() % 10000}x{next(_worlds)}"
    network = seed_network(aws, tag)
    api = seed_world(aws, name=f"{tag}-api", cluster=f"{tag}-cluster", network=network,
                     image="repo/pratiko-api:1.0.0", frontend_version="1.0.0")
    mcp = seed_world(aws, name=f"{tag}-mcp", cluster=f"{tag}-cluster", network=network, with_frontend=False,
                     image="repo/pratiko-mcp:1.0.0", load_balancer_arn=api.load_balancer_arn, listener_port=8081)
    worker = seed_world(aws, name=f"{tag}-worker", cluster=f"{tag}-cluster", network=network, with_frontend=False,
                        image="repo/pratiko-worker:1.0.0", traffic=False)
    return {"api": api, "mcp": mcp, "worker": worker}


@pytest.fixture()
def planes(local_env: LocalEnvironment, env_vars: dict[str, str], worlds: dict[str, WorldIds],
           tmp_path: Path) -> Iterator[dict[str, DataPlane]]:
    assert local_env.prometheus is not None
    with ExitStack() as stack:
        out: dict[str, DataPlane] = {}
        for name, world in worlds.items():
            behaviour = tmp_path / f"{name}-behaviour.json"
            write_behaviour(behaviour, HEALTHY)
            plane = DataPlane(env_vars["AWS_ENDPOINT_URL"], env_vars["AWS_REGION"], world.cluster, world.service,
                              world.listener_arn or None, tmp_path / name, local_env.prometheus.targets_dir,
                              behaviour)
            out[name] = stack.enter_context(plane)
        for plane in out.values():
            plane.wait_serving({"1.0.0"}, timeout=60)
        yield out


def system_release(worlds: dict[str, WorldIds], namespace: str, version: str, prometheus: str,
                   steps: list[dict[str, Any]], frontend: bool = False) -> dict[str, Any]:
    """The Release of the three services at `version`: the API first, the MCP server and the worker
    after it; each service with traffic judged on its own error rate; with `frontend`, the web
    frontend of the same version, which requires that backend."""
    services: list[dict[str, Any]] = []
    for name in SERVICES:
        w = worlds[name]
        service: dict[str, Any] = {
            "name": name, "image": f"repo/pratiko-{name}:{version}",
            "ecs": {"cluster": w.cluster, "service": w.service, "containerName": w.container_name},
        }
        if name in FOLLOWERS:
            service["after"] = ["api"]
        if w.listener_arn:
            service["traffic"] = {"listenerArn": w.listener_arn, "stableTargetGroupArn": w.stable_target_group_arn,
                                  "canaryTargetGroupArn": w.canary_target_group_arn}
        services.append(service)
    metrics = [{"name": f"{name}-error-rate", "max": 0.05,
                "prometheus": {"address": prometheus, "query": error_rate_query(worlds[name].service, "5s", 2.0)}}
               for name in ("api", "mcp")]
    return {
        "apiVersion": "delivery.pratiko.ai/v1alpha1", "kind": "Release",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "environment": "development",
            "backend": {"version": version, "services": services},
            "strategy": {"type": "Canary", "canary": {"steps": steps}},
            "analysis": {"interval": "1s", "failureLimit": 1, "minSamples": 3, "metrics": metrics},
            "rollback": {"onDegradation": "Rollback", "window": "30s"},
            **({"frontend": {"version": version, "requiresBackend": f">={version}", "cloudfront": {
                "distributionId": worlds["api"].distribution_id, "originId": worlds["api"].origin_id,
                "bucket": worlds["api"].bucket}}} if frontend else {}),
        },
    }


@dataclass(frozen=True)
class Shares:
    """One sample: the percent of each service the new version has (listener weight of the target
    group its task set is in; a worker's: its task set's scale)."""

    at: float
    new: dict[str, float]
    origin: str | None = None  # the frontend's origin path, read after the services


@dataclass
class SystemWatch:
    """Samples the three services every `interval` in a thread: the followers first, then the API."""

    env: dict[str, str]
    worlds: dict[str, WorldIds]
    version: str
    interval: float = 0.2
    samples: list[Shares] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SystemWatch:
        clients = AwsClients.from_env(self.env)
        self._thread = threading.Thread(target=self._run, args=(clients,), daemon=True)
        self._thread.start()
        wait_for("a first sample of the three services", lambda: bool(self.samples), 20)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.errors:
            raise AssertionError(f"watching AWS failed: {self.errors[0]!r}")

    def share(self, clients: AwsClients, name: str) -> float:
        world = self.worlds[name]
        task_sets = live_task_sets(clients, world)
        new = [t for t in task_sets if image_of(clients, t["taskDefinition"]).endswith(f":{self.version}")]
        if not world.listener_arn:
            return sum(float(t["scale"]["value"]) for t in new)
        listener = clients.elbv2.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]
        weights = {g["TargetGroupArn"]: int(g.get("Weight", 0))
                   for g in listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]}
        groups = {lb["targetGroupArn"] for t in new for lb in t.get("loadBalancers", [])}
        return float(sum(weights.get(g, 0) for g in groups))

    def _run(self, clients: AwsClients) -> None:
        while not self._stop.is_set():
            try:
                new = {name: self.share(clients, name) for name in (*FOLLOWERS, "api")}
                origin = origin_path(clients, self.worlds["api"]) if self.worlds["api"].distribution_id else None
                self.samples.append(Shares(time.monotonic(), new, origin))
            except Exception as exc:  # noqa: BLE001 - reported on exit
                self.errors.append(exc)
                return
            self._stop.wait(self.interval)

    def first(self, predicate: Any) -> float | None:
        return next((s.at for s in self.samples if predicate(s.new)), None)


def loads(planes: dict[str, DataPlane]) -> list[LoadGenerator]:
    return [LoadGenerator(planes[name].balancer_url, rate=STEADY_RATE).start() for name in ("api", "mcp")]


def test_three_services_roll_out_in_order_and_in_lockstep_then_promote_then_the_frontend(
    operator: OperatorProcess, releases: Releases, namespace: str, worlds: dict[str, WorldIds],
    planes: dict[str, DataPlane], env_vars: dict[str, str], local_env: LocalEnvironment,
) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    steps = [{"setWeight": 20}, {"pause": {"duration": "4s"}}, {"setWeight": 50}, {"pause": {"duration": "4s"}}]
    releases.apply(system_release(worlds, namespace, "1.0.0", prometheus, steps, frontend=True))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)

    started = time.time()
    running = loads(planes)
    try:
        with SystemWatch(env_vars, worlds, "2.0.0") as watch:
            releases.apply(system_release(worlds, namespace, "2.0.0", prometheus, steps, frontend=True))
            status = releases.wait_phase(namespace, NAME, "Succeeded", 240, generation=2)
            wait_for("every service wholly on 2.0.0", lambda: watch.samples[-1].new == {
                "mcp": 100.0, "worker": 100.0, "api": 100.0}, 60)
    finally:
        for load in running:
            load.stop()

    # In order: no follower's new version ever had more of its service than the API's had of the API.
    for s in watch.samples:
        for name in FOLLOWERS:
            assert s.new[name] <= s.new["api"], (name, s)
    # Each step reached every service: the followers passed through 20 and 50, after the API did.
    for share in (20.0, 50.0):
        api_at = watch.first(lambda n, w=share: n["api"] >= w)
        assert api_at is not None, share
        for name in FOLLOWERS:
            at = watch.first(lambda n, w=share, f=name: n[f] >= w)
            assert at is not None and at >= api_at, (name, share)
    # In lockstep: each pause ran its 4 s only once all three held the step before it.
    all_20 = watch.first(lambda n: all(v >= 20.0 for v in n.values()))
    api_50 = watch.first(lambda n: n["api"] >= 50.0)
    all_50 = watch.first(lambda n: all(v >= 50.0 for v in n.values()))
    promoted = watch.first(lambda n: n["api"] >= 100.0)
    assert all_20 is not None and api_50 is not None and all_50 is not None and promoted is not None
    assert api_50 - all_20 >= 3.6, f"the first pause lasted {api_50 - all_20:.1f}s after all three held 20%"
    assert promoted - all_50 >= 3.6, f"the second pause lasted {promoted - all_50:.1f}s after all three held 50%"

    # The frontend went live once every service served 2.0.0 alone, not before.
    switched = next((s for s in watch.samples if s.origin == "/releases/2.0.0"), None)
    assert switched is not None, "the frontend never switched"
    assert all(s.origin == "/releases/1.0.0" for s in watch.samples if s.at < switched.at)
    assert switched.new == {"mcp": 100.0, "worker": 100.0, "api": 100.0}, switched
    assert status["frontend"]["stableVersion"] == "2.0.0"

    # The status speaks for every service, and each serves only 2.0.0 now.
    assert status["backend"]["stableVersion"] == "2.0.0"
    entries = {e["name"]: e for e in status["backend"].get("services", [])}
    assert set(entries) == set(SERVICES), status["backend"]
    assert all(e["stableImage"].endswith(":2.0.0") for e in entries.values()), entries
    # Real requests: the MCP server answered with 2.0.0 only once the API already had.
    first_new = {name: min((e["time"] for e in read_log(planes[name].request_log)
                            if e["time"] >= started and e["version"] == "2.0.0"), default=None)
                 for name in ("api", "mcp")}
    assert first_new["api"] is not None and first_new["mcp"] is not None, first_new
    assert first_new["mcp"] >= first_new["api"], first_new


def test_a_failing_mcp_server_rolls_every_service_back_in_reverse_order(
    operator: OperatorProcess, releases: Releases, namespace: str, worlds: dict[str, WorldIds],
    planes: dict[str, DataPlane], env_vars: dict[str, str], local_env: LocalEnvironment, tmp_path: Path,
) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    steps = [{"setWeight": 50}, {"pause": {"duration": "60s"}}]
    releases.apply(system_release(worlds, namespace, "1.0.0", prometheus, steps))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    # The MCP server's 2.0.0 answers one request in two with a 500; the API's is healthy.
    write_behaviour(tmp_path / "mcp-behaviour.json",
                    {**HEALTHY, "2.0.0": {"error_rate": 0.5, "latency_ms": 5}})

    running = loads(planes)
    try:
        with SystemWatch(env_vars, worlds, "2.0.0") as watch:
            releases.apply(system_release(worlds, namespace, "2.0.0", prometheus, steps))
            status = releases.wait_phase(namespace, NAME, "RolledBack", 180, generation=2)
            wait_for("every service back on 1.0.0", lambda: watch.samples[-1].new == {
                "mcp": 0.0, "worker": 0.0, "api": 0.0}, 60)
    finally:
        for load in running:
            load.stop()

    # The MCP server's new version took its step (the failure is its own, measured on its traffic).
    assert any(s.new["mcp"] >= 50.0 for s in watch.samples)
    # Reverse order, sampled all the way: the API's new version never had less of the API than a
    # follower's new version had of its service, so the followers went back first.
    for s in watch.samples:
        for name in FOLLOWERS:
            assert s.new[name] <= s.new["api"], (name, s)
    # The API's new version kept its share until after the followers' last one was gone.
    followers_last = max(s.at for s in watch.samples if s.new["mcp"] > 0.0 or s.new["worker"] > 0.0)
    api_then = next(s for s in watch.samples if s.at == followers_last)
    assert api_then.new["api"] >= 50.0, api_then
    assert any(s.at > followers_last and s.new["api"] == 0.0 for s in watch.samples)

    ready = condition(status, "Ready")
    assert ready.get("reason") == "AnalysisFailed" and "mcp-error-rate" in ready.get("message", ""), ready
    assert status["backend"]["stableVersion"] == "1.0.0"
