"""`make demo`: the product end to end on the local environment, in about two minutes.

Brings up etcd + kube-apiserver, a moto AWS, Prometheus and the simulated data plane; installs the
CRD; starts the operator as a separate process; then releases a backend three times through a
canary with Prometheus analysis, while a load generator sends real traffic through the weighted
load balancer:

1. 1.0.0 is adopted from what already runs;
2. 2.0.0 is healthy: canary 20% -> 50% -> promoted, and the frontend follows;
3. 3.0.0 answers 30% errors: the analysis fails and the controller puts traffic back on 2.0.0.

Everything is stopped at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from controller.api.release import Release
from controller.aws.clients import AwsClients
from controller.cli.show import render_status
from controller.testing.aws_world import seed_world
from controller.testing.dataplane import DataPlane, LoadGenerator, write_behaviour
from controller.testing.env import LocalEnvironment
from controller.testing.kubectl import install_crd, kubectl
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for

console = Console()
NAMESPACE = "demo"
NAME = "pratiko"
ERROR_RATE = (
    'sum(rate(http_requests_total{version="{{version}}",status=~"5.."}[5s])) '
    '/ sum(rate(http_requests_total{version="{{version}}"}[5s]))'
)


def status_of(env: dict[str, str]) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(kubectl(env, "get", "release", NAME, "-n", NAMESPACE, "-o", "json"))
    return obj


def wait_phase(env: dict[str, str], phases: set[str], generation: int, timeout: float, plane: DataPlane) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        obj = status_of(env)
        st = obj.get("status") or {}
        line = (f"  phase {st.get('phase', '-'):<12} step {st.get('currentStep', 0)}/{st.get('stepCount', 0)}  "
                f"canary weight {st.get('backend', {}).get('canaryWeight', 0):>3}%  "
                f"analysis {(st.get('analysis') or {}).get('verdict', '-')}  listener {short_weights(plane.weights)}")
        if line != last:
            console.print(line, highlight=False)
            last = line
        if st.get("observedGeneration") == generation and st.get("phase") in phases:
            return obj
        time.sleep(0.5)
    raise TimeoutError(f"release did not reach {phases} in {timeout}s")


def short_weights(weights: dict[str, int]) -> str:
    """ALB weights by target group name: 'pratiko-blue 80 / pratiko-green 20'."""
    return " / ".join(f"{arn.split('/')[-2]} {w}" for arn, w in sorted(weights.items()))


def spec_for(world: Any, version: str, frontend: str) -> dict[str, Any]:
    prometheus = os.environ["PROMETHEUS_URL"]
    return release_for(
        world, name=NAME, namespace=NAMESPACE, version=version, frontend_version=frontend,
        strategy={"type": "Canary", "canary": {"steps": [
            {"setWeight": 20}, {"pause": {"duration": "6s"}}, {"setWeight": 50}, {"pause": {"duration": "6s"}},
        ]}},
        analysis={"interval": "2s", "failureLimit": 1, "minSamples": 2, "metrics": [
            {"name": "error-rate", "max": 0.05,
             "prometheus": {"address": prometheus, "query": ERROR_RATE}},
        ]},
        featureFlags={"new_chat_interface": version != "1.0.0"},
        rollback={"onDegradation": "Rollback", "window": "30s"},
    )


def show(env: dict[str, str]) -> None:
    render_status(Release.model_validate(status_of(env)))


def traffic_table(plane: DataPlane, since: float) -> None:
    from controller.testing.dataplane import read_log

    counts: dict[tuple[str, int], int] = {}
    for entry in read_log(plane.request_log):
        if entry.get("time", 0) >= since:
            key = (str(entry.get("version")), int(entry.get("status", 0)))
            counts[key] = counts.get(key, 0) + 1
    table = Table("version", "status", "requests", title="traffic seen by the load balancer in this step")
    for (version, code), n in sorted(counts.items()):
        table.add_row(version, str(code), str(n))
    console.print(table)


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="release-controller-demo-"))
    console.rule("[bold]release-controller demo")
    console.print(f"working directory {workdir}")
    env_dir = workdir / "env"
    local = LocalEnvironment(env_dir)
    plane: DataPlane | None = None
    load: LoadGenerator | None = None
    operator: OperatorProcess | None = None
    try:
        started = time.monotonic()
        local.up()
        env = {**os.environ, **local.env_vars()}
        os.environ.update(local.env_vars())
        console.print(f"local environment up in {time.monotonic() - started:.1f}s: kube-apiserver, etcd, moto, Prometheus")
        install_crd(env)
        kubectl(env, "create", "namespace", NAMESPACE)

        aws = AwsClients.from_env(env)
        world = seed_world(aws, name="pratiko", image="repo/pratiko-backend:1.0.0", frontend_version="1.0.0")
        console.print(f"AWS (moto): cluster {world.cluster}, service {world.service}, ALB listener, CloudFront {world.distribution_id}")

        behaviour = workdir / "behaviour.json"
        write_behaviour(behaviour, {"default": {"error_rate": 0.0, "latency_ms": 5}})
        assert local.prometheus is not None
        plane = DataPlane(env["AWS_ENDPOINT_URL"], env["AWS_REGION"], world.cluster, world.service, world.listener_arn,
                          workdir / "dataplane", local.prometheus.targets_dir, behaviour).start()
        load = LoadGenerator(plane.balancer_url, rate=40)
        load.start()
        console.print(f"data plane: workloads per task set, load balancer {plane.balancer_url}, 40 req/s")

        operator = OperatorProcess(env, namespaces=(NAMESPACE,), resync=5, log_path=workdir / "operator.log").start()
        console.print(f"operator running (pid {operator.process.pid if operator.process else '?'}), log {workdir / 'operator.log'}")

        console.rule("1. adopt 1.0.0")
        kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(spec_for(world, "1.0.0", "1.0.0")))
        wait_phase(env, {"Succeeded"}, 1, 60, plane)
        show(env)

        console.rule("2. release 2.0.0 (healthy): canary 20% -> 50% -> promoted")
        mark = time.time()
        kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(spec_for(world, "2.0.0", "2.0.0")))
        wait_phase(env, {"Succeeded"}, 2, 120, plane)
        show(env)
        traffic_table(plane, mark)

        console.rule("3. release 3.0.0 (30% errors): analysis fails, traffic goes back by itself")
        write_behaviour(behaviour, {"default": {"error_rate": 0.0, "latency_ms": 5}, "3.0.0": {"error_rate": 0.3}})
        mark = time.time()
        kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(spec_for(world, "3.0.0", "2.0.0")))
        final = wait_phase(env, {"RolledBack", "Failed"}, 3, 120, plane)
        show(env)
        traffic_table(plane, mark)
        ok = final["status"]["phase"] == "RolledBack"
        console.rule("[green]demo finished: good canary promoted, bad canary rolled back" if ok else "[red]unexpected end")
        return 0 if ok else 1
    finally:
        if load is not None:
            load.stop()
        if operator is not None:
            operator.stop()
        if plane is not None:
            plane.stop()
        local.down()
        console.print("environment down")


if __name__ == "__main__":
    sys.exit(main())
