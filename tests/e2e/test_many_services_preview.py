"""End to end: a preview step for a tier of several ECS services (issue many-services, item 2; see
docs/many-services.md, section 3), with real traffic through the local load balancers.

Three services in one Release: an API and an MCP server behind one ALB on two listeners (ports 80
and 8081, each its own target groups), and a worker with no load balancer. The operator runs
against the real kube-apiserver and moto; each service's data plane runs its task sets as processes
and routes by its listener's rules as moto stores them. Four loads run the whole time: production
requests and preview-header requests to each listener. From the balancers' own logs: header
requests reach the new API and the new MCP server by their preview rules, at the same time;
production requests reach neither new version until every rule is gone; the worker runs no task of
the new version during the preview; then the canary step and promotion, and no rule is left.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.aws.preview import preview_rule_priority
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.dataplane import DataPlane, LoadGenerator, read_log, write_behaviour
from controller.testing.env import LocalEnvironment
from controller.testing.operator import OperatorProcess
from tests.e2e.helpers import Releases

pytestmark = pytest.mark.timeout(300)

NAME = "tier"
HEADER = "aws-cf-cd-release-preview"
PREVIEW_PATH, PRODUCTION_PATH = "/preview", "/"
STEPS = ({"preview": {"duration": "8s"}}, {"setWeight": 50}, {"pause": {"duration": "3s"}})
WITH_TRAFFIC = ("api", "mcp")
_tiers = itertools.count()
PROPAGATION = 1.0
"""Seconds a balancer of the data plane may follow AWS behind another (a poll, 0.25 s, and a loaded host)."""


def image(name: str, version: str) -> str:
    return f"repo/pratiko-{name}:{version}"


@pytest.fixture()
def tier(aws: AwsClients) -> dict[str, WorldIds]:
    """api, mcp and worker as three EXTERNAL ECS services of one cluster, running 1.0.0; mcp's
    listener is a second listener (port 8081) of the api's ALB, forwarding to mcp's own groups."""
    prefix = f"m{os.getpid()}x{next(_tiers)}"
    out: dict[str, WorldIds] = {}
    network, alb = None, None
    for name, port in (("api", 80), ("mcp", 8081), ("worker", 80)):
        ids = seed_world(aws, name=f"{prefix}{name}", cluster=f"{prefix}-cluster", network=network,
                         with_frontend=False, image=image(name, "1.0.0"),
                         load_balancer_arn=alb if name == "mcp" else None, listener_port=port)
        network, alb = ids.network, alb or ids.load_balancer_arn
        out[name] = ids
    assert out["mcp"].load_balancer_arn == out["api"].load_balancer_arn
    return out


@pytest.fixture()
def planes(local_env: LocalEnvironment, env_vars: dict[str, str], tier: dict[str, WorldIds],
           tmp_path: Path) -> Iterator[dict[str, DataPlane]]:
    assert local_env.prometheus is not None
    behaviour = tmp_path / "behaviour.json"
    write_behaviour(behaviour, {"default": {"error_rate": 0.0, "latency_ms": 5}})
    with ExitStack() as stack:
        out: dict[str, DataPlane] = {}
        for name, ids in tier.items():
            listener = ids.listener_arn if name in WITH_TRAFFIC else None  # the worker serves no traffic
            plane = DataPlane(env_vars["AWS_ENDPOINT_URL"], env_vars["AWS_REGION"], ids.cluster, ids.service,
                              listener, tmp_path / name, local_env.prometheus.targets_dir, behaviour)
            plane.start()
            stack.callback(plane.stop)
            out[name] = plane
        for plane in out.values():
            plane.wait_serving({"1.0.0"}, timeout=30)
        yield out


def release(tier: dict[str, WorldIds], namespace: str, version: str) -> dict[str, Any]:
    services = []
    for name, ids in tier.items():
        s: dict[str, Any] = {"name": name, "image": image(name, version),
                             "ecs": {"cluster": ids.cluster, "service": ids.service,
                                     "containerName": ids.container_name}}
        if name != "api":
            s["after"] = ["api"]
        if name in WITH_TRAFFIC:
            s["traffic"] = {"listenerArn": ids.listener_arn, "stableTargetGroupArn": ids.stable_target_group_arn,
                            "canaryTargetGroupArn": ids.canary_target_group_arn}
        services.append(s)
    spec = tier["api"].spec(version=version, frontend_version=None, environment="development",
                            strategy={"type": "Canary", "canary": {"steps": [dict(s) for s in STEPS]}})
    spec["backend"] = {"version": version, "services": services}
    return {"apiVersion": "delivery.pratiko.ai/v1alpha1", "kind": "Release",
            "metadata": {"name": NAME, "namespace": namespace}, "spec": spec}


def test_preview_header_reaches_the_new_api_and_the_new_mcp_server_while_production_never_does(
    operator: OperatorProcess, releases: Releases, namespace: str, tier: dict[str, WorldIds], aws: AwsClients,
    planes: dict[str, DataPlane],
) -> None:
    owners = {n: f"{namespace}/{NAME}/{n}" for n in WITH_TRAFFIC}

    def rule_of(n: str) -> int | None:
        return preview_rule_priority(aws.elbv2, tier[n].listener_arn, owners[n])

    releases.apply(release(tier, namespace, "1.0.0"))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    assert all(rule_of(n) is None for n in WITH_TRAFFIC)  # adopting previews nothing

    loads = [LoadGenerator(planes[n].balancer_url, rate=10, path=PRODUCTION_PATH) for n in WITH_TRAFFIC]
    loads += [LoadGenerator(planes[n].balancer_url, rate=10, path=PREVIEW_PATH, headers={HEADER: "2.0.0"})
              for n in WITH_TRAFFIC]
    for load in loads:
        load.start()
    try:
        started = time.time()
        releases.apply(release(tier, namespace, "2.0.0"))
        releases.wait(namespace, NAME, lambda s: all(rule_of(n) is not None for n in WITH_TRAFFIC), 90,
                      "a preview rule on the api's and on the mcp server's listener")
        # During the preview the worker runs no task of the new version: a worker task takes work.
        worker = aws.ecs.describe_services(cluster=tier["worker"].cluster,
                                           services=[tier["worker"].service])["services"][0]
        new_sets = [ts for ts in worker.get("taskSets", []) if ts["taskSetArn"] != tier["worker"].initial_task_set_arn]
        assert all(ts["scale"]["value"] == 0 for ts in new_sets), new_sets
        assert {w.version for w in planes["worker"].workloads()} == {"1.0.0"}
        status = releases.wait_phase(namespace, NAME, "Succeeded", 150, generation=2)
        for n in WITH_TRAFFIC:
            planes[n].wait_for(lambda p: not p.rules, 10, f"no listener rule left on {n}'s balancer")
    finally:
        for load in loads:
            load.stop()

    assert status["backend"]["stableVersion"] == "2.0.0"
    assert {s["name"]: s["stableImage"] for s in status["backend"]["services"]} == {
        n: image(n, "2.0.0") for n in tier}
    assert all(rule_of(n) is None for n in WITH_TRAFFIC)

    windows: dict[str, tuple[float, float]] = {}
    last_rule_request = 0.0
    for n in WITH_TRAFFIC:
        log = [e for e in read_log(planes[n].request_log) if e["time"] >= started]
        by_rule = [e for e in log if e["rule"] != "default"]
        assert by_rule, f"no request to {n} was routed by its preview rule"
        # Only header requests were routed by the rule, and each reached the new version.
        assert {e["path"] for e in by_rule} == {PREVIEW_PATH} and {e["version"] for e in by_rule} == {"2.0.0"}, n
        windows[n] = (by_rule[0]["time"], by_rule[-1]["time"])
        last_rule_request = max(last_rule_request, by_rule[-1]["time"])
        production_new = [e for e in log if e["path"] == PRODUCTION_PATH and e["version"] == "2.0.0"]
        assert production_new, f"production never reached {n}'s new version after the preview"
        windows[n + " production"] = (min(e["time"] for e in production_new), 0.0)
    # The header reached both new versions at once, for most of the preview's 8 s.
    overlap = min(windows[n][1] for n in WITH_TRAFFIC) - max(windows[n][0] for n in WITH_TRAFFIC)
    assert overlap >= 5.0, windows
    # No production request reached a new version before every service's last request by a rule:
    # every rule goes before any weight moves. On one balancer the order is exact. Across two, each
    # follows AWS within a poll (`DataPlane.poll_interval`, 0.25 s), so one may still route by a rule
    # AWS has removed while the other already follows the new weights (a CI run: the MCP server's rule
    # removed 48 ms before the API's weight moved; its balancer's last rule request came 0.3 ms after
    # the API's first production request to 2.0.0).
    for n in WITH_TRAFFIC:
        assert windows[n + " production"][0] > windows[n][1], windows
        assert windows[n + " production"][0] > last_rule_request - PROPAGATION, windows
