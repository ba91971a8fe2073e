"""The data plane against a real moto server: workloads follow task sets, traffic follows weights.

Each test seeds moto with an EXTERNAL ECS service whose task sets run 1.4.0 (target group blue)
and 1.5.0 (green), changes moto the way the controller would, and checks what a user of the
local environment would see: processes, HTTP responses, the balancer's log and Prometheus.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from controller.testing.dataplane.balancer import read_log
from controller.testing.dataplane.loadgen import LoadGenerator
from controller.testing.dataplane.supervisor import DataPlane
from controller.testing.dataplane.workload import write_behaviour
from controller.testing.ports import wait_until
from controller.testing.prometheus import PrometheusServer
from tests.dataplane.conftest import REGION, World, pid_alive, seed
from tests.dataplane.test_workload import get

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def make_plane(world: World, tmp_path: Path, targets: Path | None = None) -> DataPlane:
    behaviour = tmp_path / "behaviour.json"
    if not behaviour.exists():
        write_behaviour(behaviour, {"default": {"error_rate": 0.0, "latency_ms": 2}})
    return DataPlane(world.endpoint, REGION, world.cluster, world.service, world.listener_arn, tmp_path / "dp",
                     targets or tmp_path / "targets", behaviour, poll_interval=0.2)


def test_one_workload_per_task_set_with_the_version_of_its_image(world: World, tmp_path: Path) -> None:
    with make_plane(world, tmp_path) as plane:
        plane.wait_serving({"1.4.0", "1.5.0"})
        by_tg = {w.target_group: w for w in plane.workloads()}
        assert by_tg[world.blue].version == "1.4.0" and by_tg[world.green].version == "1.5.0"
        for w in plane.workloads():
            assert json.loads(get(f"{w.url}/")[2])["version"] == w.version
        sd = {}
        for path in (tmp_path / "targets").glob("*.json"):
            [group] = json.loads(path.read_text())
            sd[group["labels"]["version"]] = group
        assert set(sd) == {"1.4.0", "1.5.0"}
        assert sd["1.5.0"]["labels"]["target_group"] == world.green
        assert sd["1.5.0"]["labels"]["task_set"] == by_tg[world.green].key
        assert sd["1.5.0"]["targets"] == [f"127.0.0.1:{by_tg[world.green].port}"]
        pids = [w.pid for w in plane.workloads()]
    # Leaving the context stops every workload and unregisters it from Prometheus.
    assert not any(pid_alive(p) for p in pids)
    assert list((tmp_path / "targets").glob("*.json")) == []


def test_traffic_follows_listener_weights_exactly(world: World, tmp_path: Path) -> None:
    with make_plane(world, tmp_path) as plane:
        plane.wait_serving({"1.4.0", "1.5.0"})
        stats = LoadGenerator(plane.balancer_url, rate=200, count=100).run()
        assert stats.by_version == {"1.4.0": 100}

        world.set_weights(90, 10)
        plane.wait_for(lambda p: p.weights == {world.blue: 90, world.green: 10}, 5, "weights 90/10")
        stats = LoadGenerator(plane.balancer_url, rate=200, count=200).run()
        assert stats.by_status == {200: 200}
        assert stats.by_version == {"1.4.0": 180, "1.5.0": 20}

    # The balancer's own log holds the same split, one JSON line per request, by target group.
    entries = read_log(plane.request_log)
    assert len(entries) == 300
    last = Counter((e["target_group"], e["version"]) for e in entries[100:])
    assert last == {(world.blue, "1.4.0"): 180, (world.green, "1.5.0"): 20}
    assert all(e["status"] == 200 and e["latency_ms"] > 0 and e["time"] > 0 for e in entries)


def test_a_degraded_version_returns_its_error_rate(world: World, tmp_path: Path) -> None:
    behaviour = tmp_path / "behaviour.json"
    with make_plane(world, tmp_path) as plane:
        plane.wait_serving({"1.4.0", "1.5.0"})
        world.set_weights(50, 50)
        plane.wait_for(lambda p: p.weights == {world.blue: 50, world.green: 50}, 5, "weights 50/50")
        # Degrade 1.5.0 while it serves, as a test of rollback after promotion would.
        write_behaviour(behaviour, {"1.5.0": {"error_rate": 0.3, "latency_ms": 2}, "default": {"latency_ms": 2}})
        time.sleep(0.2)  # workloads re-check the control file every 50 ms
        stats = LoadGenerator(plane.balancer_url, rate=200, count=400).run()
    assert stats.by_version == {"1.4.0": 200, "1.5.0": 200}
    assert stats.by_version_status["1.4.0"] == {200: 200}
    assert stats.by_version_status["1.5.0"].get(500, 0) in (59, 60, 61)  # 30% of 200, deterministic
    assert stats.version_error_rate("1.5.0") == pytest.approx(0.3, abs=0.01)


def test_deleting_or_scaling_a_task_set_to_zero_stops_its_workload(world: World, tmp_path: Path) -> None:
    with make_plane(world, tmp_path) as plane:
        plane.wait_serving({"1.4.0", "1.5.0"})
        green = next(w for w in plane.workloads() if w.version == "1.5.0")
        world.set_weights(0, 100)
        world.delete_task_set("1.5.0")
        plane.wait_serving({"1.4.0"}, timeout=10)
        wait_until(lambda: not pid_alive(green.pid), 10, "1.5.0 workload to exit")
        assert len(list((tmp_path / "targets").glob("*.json"))) == 1
        # Weight still on a target group with no task: the balancer answers 503, as an ALB does.
        stats = LoadGenerator(plane.balancer_url, rate=100, count=10).run()
        assert stats.by_status == {503: 10}

        world.set_weights(100, 0)
        blue = next(w for w in plane.workloads() if w.version == "1.4.0")
        world.scale("1.4.0", 0)
        plane.wait_for(lambda p: p.workloads() == [], 10, "no workloads")
        wait_until(lambda: not pid_alive(blue.pid), 10, "1.4.0 workload to exit")  # after deregistration delay

        world.scale("1.4.0", 100)  # scaled back up: a fresh task
        plane.wait_serving({"1.4.0"}, timeout=15)
        assert LoadGenerator(plane.balancer_url, rate=100, count=10).run().by_version == {"1.4.0": 10}


def test_a_new_task_set_gets_a_workload_and_a_crashed_one_is_replaced(world: World, tmp_path: Path) -> None:
    with make_plane(world, tmp_path) as plane:
        plane.wait_serving({"1.4.0", "1.5.0"})
        world.delete_task_set("1.5.0")
        world.add_task_set("2.0.0", world.green, scale=50)
        plane.wait_serving({"1.4.0", "2.0.0"}, timeout=15)
        new = next(w for w in plane.workloads() if w.version == "2.0.0")
        assert "/api/v2/chat" in json.loads(get(f"{new.url}/openapi.json")[2])["paths"]

        os.kill(new.pid, 9)
        plane.wait_for(lambda p: any(w.version == "2.0.0" and w.ready and w.pid != new.pid for w in p.workloads()),
                       15, "2.0.0 replaced")


def test_an_ecs_controller_service_is_followed_through_a_rolling_update(moto_endpoint: str, tmp_path: Path) -> None:
    world = seed(moto_endpoint, external=False)
    plane = DataPlane(moto_endpoint, REGION, world.cluster, world.service, None, tmp_path / "dp", tmp_path / "targets")
    with plane:
        plane.wait_serving({"1.4.0"})
        [w] = plane.workloads()
        assert w.target_group == world.blue
        assert LoadGenerator(plane.balancer_url, rate=100, count=20).run().by_version == {"1.4.0": 20}

        with LoadGenerator(plane.balancer_url, rate=100, duration=20) as load:
            world.clients.ecs.update_service(cluster=world.cluster, service=world.service,
                                             taskDefinition=world.task_definition("1.5.0"))
            plane.wait_serving({"1.5.0"}, timeout=15)
            time.sleep(0.5)
        stats = load.stats()
        # The old task serves until its replacement is ready: no request fails during the update.
        assert stats.by_status == {200: stats.sent}
        assert stats.by_version.get("1.4.0", 0) > 0 and stats.by_version.get("1.5.0", 0) > 0
        wait_until(lambda: not pid_alive(w.pid), 10, "1.4.0 workload to exit")


def test_prometheus_scrapes_both_versions_through_file_sd(world: World, tmp_path: Path, prometheus: PrometheusServer) -> None:
    with make_plane(world, tmp_path, targets=prometheus.targets_dir) as plane:
        plane.wait_serving({"1.4.0", "1.5.0"})
        world.set_weights(80, 20)
        plane.wait_for(lambda p: p.weights == {world.blue: 80, world.green: 20}, 5, "weights 80/20")
        with LoadGenerator(plane.balancer_url, rate=50, duration=40) as load:
            query = "sum by (version) (rate(http_requests_total[10s]))"
            rates: dict[str, float] = {}

            def both_versions() -> bool:
                rates.clear()
                for r in prometheus.query(query):
                    rates[r["metric"]["version"]] = float(r["value"][1])
                return rates.get("1.4.0", 0) > 0 and rates.get("1.5.0", 0) > 0

            wait_until(both_versions, 30, f"both versions in Prometheus ({rates})", interval=0.5)
            time.sleep(4)  # let the 10s window fill with the steady split
            both_versions()
        assert load.stats().sent > 0
        assert rates["1.4.0"] > rates["1.5.0"] > 0
        assert 0.1 < rates["1.5.0"] / (rates["1.4.0"] + rates["1.5.0"]) < 0.3
        labels = {r["metric"]["version"]: r["metric"] for r in prometheus.query('http_requests_total{status="200"}')}
        assert labels["1.5.0"]["target_group"] == world.green


def test_cli_runs_a_bounded_load_and_leaves_nothing_behind(world: World, tmp_path: Path) -> None:
    world.set_weights(50, 50)
    env = {**os.environ, "AWS_ENDPOINT_URL": world.endpoint, "AWS_REGION": REGION, "PYTHONPATH": str(ROOT),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = subprocess.run(
        [sys.executable, "-m", "controller.testing.dataplane", "run", "--cluster", world.cluster, "--service", world.service,
         "--listener-arn", world.listener_arn, "--workdir", str(tmp_path / "dp"), "--rate", "50", "--count", "100"],
        env=env, capture_output=True, text=True, timeout=90, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["balancer"].startswith("http://127.0.0.1:")
    assert lines[-1]["sent"] == 100
    # Load starts once the workloads serve, so every request is answered, split by the weights.
    assert lines[-1]["by_version"] == {"1.4.0": 50, "1.5.0": 50}
    logs = read_log(tmp_path / "dp" / "balancer.jsonl")
    assert len(logs) == 100
    assert list((tmp_path / "dp" / "targets").glob("*.json")) == []
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path / "dp") not in ps  # every workload runs with --behaviour-file under it
