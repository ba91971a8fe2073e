"""Drift detection: how soon a hand-made change is noticed and undone, and what watching costs.

    .venv/bin/python benchmarks/drift.py [--releases 10] [--resync 5] [--runs 5] [--periods 4]

Brings up the local environment (etcd + kube-apiserver, moto, Prometheus), seeds `--releases`
worlds in moto, applies one Fast Release per world (backend, frontend and a feature flag; the
default `onDrift: Revert`) and starts the operator (`release-controller run --resync R`) as a child
process. Once every Release is Succeeded:

1. Steady cost: over `--periods` resync periods with nothing changing, the AWS calls the operator
   made (its `release_controller_aws_calls_total`, by operation), per Release per resync. Reads are
   Describe*, Get* and List* calls; a steady controller should make no write at all.
2. Latency, `--runs` times on a different Release each time: someone sets the listener of a
   Release to 50/50 by hand (ModifyListener straight to moto). Timed from that write:
   - detected: until the operator's `release_controller_drift_detected_total` for the Release rises
     (polled every 50 ms on its /metrics);
   - reverted: until moto shows the listener back at 100/0 (polled every 50 ms).
   A change lands at some point of the resync period, so detection is expected around R/2 (at most
   R) plus one pass. The revert is applied in the very pass that detects the drift, before the
   reconciler counts it, so the two times differ only by the poll interval.

Prints both tables (median, min, max) and exits 0. A measurement, not a test: it asserts nothing
beyond each drift being reverted within `--timeout`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from controller.aws.clients import AwsClients  # noqa: E402
from controller.testing.aws_world import WorldIds, seed_network, seed_world  # noqa: E402
from controller.testing.env import LocalEnvironment  # noqa: E402
from controller.testing.kubectl import install_crd, kubectl  # noqa: E402
from controller.testing.operator import OperatorProcess  # noqa: E402
from controller.testing.releases import release_for  # noqa: E402

NAMESPACE = "drift-bench"
READ = re.compile(r"^(?:[a-z0-9-]+:)?(Describe|Get|List)")  # operations are named "ecs:DescribeServices"


def phases(env: Mapping[str, str]) -> dict[str, str]:
    items = json.loads(kubectl(env, "get", "releases", "-n", NAMESPACE, "-o", "json"))["items"]
    return {i["metadata"]["name"]: (i.get("status") or {}).get("phase", "") for i in items}


def poll(what: str, predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout}s")


def aws_calls(operator: OperatorProcess) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for m in re.finditer(r'^release_controller_aws_calls_total\{operation="([^"]+)"\} ([0-9.e+]+)$',
                         operator.metrics(), re.M):
        out[m.group(1)] += float(m.group(2))
    return out


def drift_count(operator: OperatorProcess, name: str) -> float:
    pattern = re.compile(
        r'^release_controller_drift_detected_total\{[^}]*name="%s"[^}]*\} ([0-9.e+]+)$' % re.escape(name), re.M)
    return sum(float(v) for v in pattern.findall(operator.metrics()))


def listener_weights(aws: AwsClients, world: WorldIds) -> dict[str, int]:
    listener = aws.elbv2.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]
    return {g["TargetGroupArn"]: int(g["Weight"]) for g in listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]}


def split(aws: AwsClients, world: WorldIds, stable: int) -> None:
    aws.elbv2.modify_listener(ListenerArn=world.listener_arn, DefaultActions=[{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": world.stable_target_group_arn, "Weight": stable},
            {"TargetGroupArn": world.canary_target_group_arn, "Weight": 100 - stable}]}}])


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):6.2f}   min {min(values):6.2f}   max {max(values):6.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=10)
    parser.add_argument("--resync", type=float, default=5.0, help="the operator's --resync, seconds")
    parser.add_argument("--runs", type=int, default=5, help="drifts timed (the median is over these)")
    parser.add_argument("--periods", type=int, default=4, help="resync periods of steady state measured")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--workdir", type=Path, help="default: a new temporary directory")
    args = parser.parse_args(argv)

    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="drift-bench-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"working directory {workdir}")
    local = LocalEnvironment(workdir / "env")
    operator: OperatorProcess | None = None
    try:
        local.up()
        env = {**os.environ, **local.env_vars()}
        install_crd(env)
        kubectl(env, "create", "namespace", NAMESPACE)
        aws = AwsClients.from_env(env)
        network = seed_network(aws, "drift")
        worlds = [seed_world(aws, name=f"d{i}", network=network, cluster="drift-cluster")
                  for i in range(args.releases)]
        manifests = [release_for(w, name=f"r{i}", namespace=NAMESPACE, version="1.0.0", frontend_version="1.0.0",
                                 featureFlags={"new_chat_interface": True}) for i, w in enumerate(worlds)]
        kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))
        operator = OperatorProcess(env, namespaces=(NAMESPACE,), resync=args.resync,
                                   log_path=workdir / "operator.log").start()
        poll("every Release Succeeded", lambda: set(phases(env).values()) == {"Succeeded"}, 180, 1.0)
        time.sleep(args.resync * 2)  # let every worker fall into the steady (resync) rhythm

        # 1. What a steady resync costs.
        before = aws_calls(operator)
        window = args.periods * args.resync
        time.sleep(window)
        after = aws_calls(operator)
        delta = {op: after[op] - before.get(op, 0.0) for op in after if after[op] - before.get(op, 0.0) > 0}
        per = args.releases * args.periods
        reads = sum(v for op, v in delta.items() if READ.match(op))
        writes = sum(v for op, v in delta.items() if not READ.match(op))
        print(f"\nsteady state: {args.releases} Releases, resync {args.resync:g}s, {args.periods} periods ({window:g}s)")
        for op, v in sorted(delta.items()):
            print(f"  {op:<36} {v:6.0f} calls   {v / per:6.3f} per Release per resync")
        print(f"  AWS reads per Release per resync: {reads / per:.3f}   writes: {writes:.0f}")

        # 2. Drift latency.
        detected: list[float] = []
        reverted: list[float] = []
        for run in range(args.runs):
            i = run % args.releases
            world, name = worlds[i], f"r{i}"
            want = listener_weights(aws, world)
            count = drift_count(operator, name)
            started = time.monotonic()
            split(aws, world, 50)
            poll(f"{name}: drift counted", lambda: drift_count(operator, name) > count, args.timeout)
            detected.append(time.monotonic() - started)
            poll(f"{name}: listener reverted", lambda: listener_weights(aws, world) == want, args.timeout)
            reverted.append(time.monotonic() - started)
            print(f"  run {run + 1}: {name} detected after {detected[-1]:.2f}s, reverted after {reverted[-1]:.2f}s")
            # Land the next change at another point of the resync period.
            time.sleep(args.resync * (run + 1) / (args.runs + 1))
        print(f"\ndrift latency over {args.runs} runs (listener set to 50/50 by hand; resync {args.resync:g}s), seconds")
        print(f"  hand change -> detected (metric)   {summary(detected)}")
        print(f"  hand change -> reverted (moto)     {summary(reverted)}")
    finally:
        if operator is not None:
            operator.stop()
        local.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
