"""The simulated backend as a real process: version, probes, metrics, and behaviour re-read live."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.testing.dataplane.workload import write_behaviour
from controller.testing.ports import free_port, wait_until
from tests.dataplane.conftest import pid_alive

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def start_workload(version: str, behaviour: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.testing.dataplane.workload", "--version", version,
         "--port", str(port), "--behaviour-file", str(behaviour)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: get(f"{url}/health")[0] == 200, 15, f"workload {version}")
    return proc, url


@pytest.fixture()
def behaviour(tmp_path: Path) -> Path:
    path = tmp_path / "behaviour.json"
    write_behaviour(path, {"default": {"error_rate": 0.0, "latency_ms": 1}})
    return path


@pytest.fixture()
def workload(behaviour: Path) -> Iterator[str]:
    proc, url = start_workload("1.5.0", behaviour)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def counts(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(get(f"{url}/metrics")[2].decode()):
        for sample in family.samples:
            if sample.name == "http_requests_total":
                assert sample.labels["version"] == "1.5.0"
                out[sample.labels["status"]] = sample.value
            if sample.name == "http_request_duration_seconds_count":
                out["observed"] = sample.value
    return out


def test_serves_its_version_health_and_openapi(workload: str) -> None:
    status, headers, body = get(f"{workload}/")
    assert status == 200 and json.loads(body)["version"] == "1.5.0"
    assert headers["X-Backend-Version"] == "1.5.0"
    health = json.loads(get(f"{workload}/health")[2])
    assert health["status"] == "ok" and set(health["components"]) >= {"api", "database", "cache"}
    doc = json.loads(get(f"{workload}/openapi.json")[2])
    assert doc["info"]["version"] == "1.5.0" and "/api/v1/chat" in doc["paths"]


def test_errors_follow_the_control_file_and_metrics_count_them(workload: str, behaviour: Path) -> None:
    assert [get(f"{workload}/")[0] for _ in range(20)] == [200] * 20
    write_behaviour(behaviour, {"1.5.0": {"error_rate": 0.3}, "default": {}})
    # The workload notices the change within its 50 ms re-check; then the sequence restarts.
    wait_until(lambda: get(f"{workload}/")[0] == 500 or get(f"{workload}/")[0] == 500, 5, "degraded", interval=0.06)
    before = counts(workload)
    statuses = [get(f"{workload}/")[0] for _ in range(100)]
    after = counts(workload)
    assert statuses.count(500) in (29, 30, 31)  # exactly 30 in any 100 of the sequence, +-1 by phase
    assert after["500"] - before["500"] == statuses.count(500)
    assert after["200"] - before["200"] == statuses.count(200)
    assert after["observed"] - before["observed"] == 100
    # Probes are not traffic: they neither fail nor count.
    assert all(get(f"{workload}/health")[0] == 200 for _ in range(10))
    assert counts(workload)["observed"] == after["observed"]


def test_latency_and_health_follow_the_control_file(workload: str, behaviour: Path) -> None:
    write_behaviour(behaviour, {"1.5.0": {"latency_ms": 150, "healthy": False}})
    wait_until(lambda: get(f"{workload}/health")[0] == 503, 5, "unhealthy")
    t0 = time.perf_counter()
    assert get(f"{workload}/")[0] == 200
    assert time.perf_counter() - t0 >= 0.15
    assert json.loads(get(f"{workload}/health")[2])["components"]["database"] == "failing"


def test_workload_exits_when_its_parent_dies(tmp_path: Path, behaviour: Path) -> None:
    # A parent that starts a workload and dies without stopping it, as a killed test run would.
    pid_file, port = tmp_path / "pid", free_port()
    script = (
        "import os, subprocess, sys, time, urllib.request\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'controller.testing.dataplane.workload', '--version', '1.4.0',"
        f" '--parent-pid', str(os.getpid()), '--port', '{port}', '--behaviour-file', {str(behaviour)!r}])\n"
        "for _ in range(150):\n"
        "    try:\n"
        f"        urllib.request.urlopen('http://127.0.0.1:{port}/health', timeout=1).close(); break\n"
        "    except OSError: time.sleep(0.1)\n"
        "else: sys.exit('workload never served')\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, timeout=30)
    pid = int(pid_file.read_text())
    try:
        wait_until(lambda: not pid_alive(pid), 10, "orphaned workload to exit")
    finally:
        if pid_alive(pid):
            os.kill(pid, 9)  # the test failed: do not leave the orphan behind as well
