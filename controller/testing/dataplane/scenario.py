"""Canary releases with Prometheus analysis on the local data plane, for tests, benchmarks and the demo.

The pieces every "real traffic" scenario repeats, kept in one place so the end-to-end tests, the
rollback benchmark and `make demo` agree on what "error rate" means:

- `error_rate_query`: the 5xx share of one version of one service over a short range, with a
  traffic floor, so a canary that gets too little traffic has no data rather than a flattering 0;
- `canary_release`: a Release (wire form) rolling a seeded world's backend out by canary steps,
  analysed by that query;
- `Traffic`: what the balancer's own request log says about one version (first and last request,
  first 5xx), which is how the benchmark times a rollback;
- `run_canary_scenario`: one whole release on a running environment: the data plane, load, the
  Release applied, its outcome waited for and summarised.

This module must not start the local environment nor the operator: callers own their lifetimes.
It writes to Kubernetes (the Release, a retry annotation) only through kubectl, as a user would,
and never writes to AWS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controller.testing.aws_world import WorldIds
from controller.testing.kubectl import kubectl
from controller.testing.releases import release_for

STEADY_RATE = 40.0
"""Requests per second the load generator sends through the balancer in these scenarios."""


def error_rate_query(service: str, window: str = "5s", min_rps: float = 2.0) -> str:
    """The 5xx share of `{{version}}` of `service`, or no data below `min_rps` requests per second.

    The `service` label keeps worlds that share one Prometheus apart (the data plane labels every
    target with it); the floor makes thin traffic NoData, which the verdict never counts as Passed.

    >>> q = error_rate_query("shop-backend", "5s", 2)
    >>> 'status=~"5.."' in q and 'service="shop-backend"' in q and ">= 2" in q
    True
    """
    sel = f'service="{service}",version="{{{{version}}}}"'
    total = f"sum(rate(http_requests_total{{{sel}}}[{window}]))"
    errors = f'sum(rate(http_requests_total{{{sel},status=~"5.."}}[{window}]))'
    return f"({errors} / {total}) and on() ({total} >= {min_rps:g})"


def analysis_spec(
    prometheus_url: str,
    service: str,
    *,
    interval: str = "1s",
    failure_limit: int = 1,
    min_samples: int = 3,
    max_error_rate: float = 0.05,
    window: str = "5s",
    min_rps: float = 2.0,
    consecutive_error_limit: int | None = None,
    min_requests: int = 0,
    no_data_limit: int | None = None,
) -> dict[str, Any]:
    """`spec.analysis` (wire form) with one metric, `error-rate`, from `error_rate_query`; with
    `min_requests`, judged only once `{{version}}` served that many requests over the last 10 s."""
    spec: dict[str, Any] = {
        "interval": interval,
        "failureLimit": failure_limit,
        "minSamples": min_samples,
        "metrics": [{
            "name": "error-rate",
            "max": max_error_rate,
            "prometheus": {"address": prometheus_url, "query": error_rate_query(service, window, min_rps)},
        }],
    }
    if consecutive_error_limit is not None:
        spec["consecutiveErrorLimit"] = consecutive_error_limit
    if no_data_limit is not None:
        spec["metrics"][0]["noDataLimit"] = no_data_limit
    if min_requests:
        metric = spec["metrics"][0]
        metric["minRequests"] = min_requests
        metric["prometheus"]["trafficQuery"] = (
            f'sum(increase(http_requests_total{{service="{service}",version="{{{{version}}}}"}}[10s]))')
    return spec


def canary_release(
    world: WorldIds,
    *,
    name: str,
    namespace: str,
    version: str,
    prometheus_url: str,
    steps: Sequence[Mapping[str, Any]] = ({"setWeight": 20}, {"pause": {"duration": "4s"}},
                                          {"setWeight": 50}, {"pause": {"duration": "4s"}}),
    rollback_window: str = "30s",
    on_degradation: str = "Rollback",
    **analysis: Any,
) -> dict[str, Any]:
    """A Release rolling `world`'s backend to `version` by canary `steps`, analysed on error rate."""
    return release_for(
        world, name=name, namespace=namespace, version=version,
        strategy={"type": "Canary", "canary": {"steps": [dict(s) for s in steps]}},
        analysis=analysis_spec(prometheus_url, world.service, **analysis),
        rollback={"onDegradation": on_degradation, "window": rollback_window},
    )


# --------------------------------------------------------------------------- the balancer's log


@dataclass(frozen=True)
class Traffic:
    """What the balancer logged for one version: counts and the times (Unix seconds) that matter."""

    version: str
    requests: int
    errors: int
    first: float | None
    last: float | None
    first_error: float | None

    @property
    def span(self) -> float | None:
        """Seconds from the first request routed to this version to the last one."""
        return None if self.first is None or self.last is None else self.last - self.first


def traffic_of(entries: Sequence[Mapping[str, Any]], version: str, since: float = 0.0) -> Traffic:
    """Summarise `version`'s requests in balancer log `entries` (`balancer.read_log`) from `since`.

    >>> log = [{"time": 1.0, "version": "2", "status": 200}, {"time": 1.5, "version": "2", "status": 500},
    ...        {"time": 1.7, "version": "1", "status": 200}, {"time": 2.0, "version": "2", "status": 200}]
    >>> t = traffic_of(log, "2")
    >>> (t.requests, t.errors, t.first, t.first_error, t.span)
    (3, 1, 1.0, 1.5, 1.0)
    """
    mine = [e for e in entries if e.get("version") == version and float(e.get("time", 0.0)) >= since]
    times = [float(e["time"]) for e in mine]
    error_times = [float(e["time"]) for e in mine if int(e.get("status", 0)) >= 500]
    return Traffic(
        version=version,
        requests=len(mine),
        errors=len(error_times),
        first=min(times) if times else None,
        last=max(times) if times else None,
        first_error=min(error_times) if error_times else None,
    )


def versions_after(entries: Sequence[Mapping[str, Any]], after: float) -> dict[str, int]:
    """Requests per version logged after `after` (Unix seconds)."""
    out: dict[str, int] = {}
    for e in entries:
        if float(e.get("time", 0.0)) > after:
            key = str(e.get("version"))
            out[key] = out.get(key, 0) + 1
    return out


# --------------------------------------------------------------------------- one whole scenario


@dataclass(frozen=True)
class ScenarioResult:
    """How one release went, from the Release's status and the balancer's log."""

    version: str
    phase: str
    verdict: str | None
    message: str
    canary: Traffic
    seconds: float

    @property
    def promoted(self) -> bool:
        return self.phase == "Succeeded"

    @property
    def rolled_back(self) -> bool:
        return self.phase == "RolledBack"


def release_status(env: Mapping[str, str], namespace: str, name: str) -> tuple[int, dict[str, Any]]:
    """(metadata.generation, status) of a Release, read with kubectl."""
    obj = json.loads(kubectl(env, "get", "release", name, "-n", namespace, "-o", "json"))
    return int(obj["metadata"].get("generation", 1)), obj.get("status") or {}


def wait_for_phase(
    env: Mapping[str, str], namespace: str, name: str, phases: set[str], timeout: float,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll until the Release's status for its current generation has one of `phases`."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        generation, status = release_status(env, namespace, name)
        if on_poll is not None:
            on_poll(status)
        if status.get("observedGeneration") == generation and status.get("phase") in phases:
            return status
        time.sleep(0.25)
    raise TimeoutError(f"{namespace}/{name} did not reach {sorted(phases)} in {timeout:.0f}s: {json.dumps(status)}")


def run_canary_scenario(
    env_vars: Mapping[str, str],
    world: WorldIds,
    namespace: str,
    bad: bool,
    *,
    plane: Any,
    behaviour_file: Path,
    name: str = "pratiko",
    version: str = "2.0.0",
    error_rate: float = 0.3,
    timeout: float = 120.0,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
    **release: Any,
) -> ScenarioResult:
    """Release `version` of `world`'s backend by an analysed canary and wait for the outcome.

    `plane` is a started `DataPlane` following `world`, with load flowing through its balancer;
    `behaviour_file` is its control file. With `bad`, `version` answers `error_rate` 5xx: the
    analysis fails and the operator rolls back by itself; otherwise the canary is promoted. The
    Release must already be adopted (Succeeded on the stable version) in `namespace`.
    """
    from controller.testing.dataplane.balancer import read_log
    from controller.testing.dataplane.workload import write_behaviour

    doc = json.loads(behaviour_file.read_text()) if behaviour_file.exists() else {}
    doc[version] = {"error_rate": error_rate if bad else 0.0, "latency_ms": 5}
    write_behaviour(behaviour_file, doc)
    prometheus = release.pop("prometheus_url", None) or env_vars["PROMETHEUS_URL"]
    body = canary_release(world, name=name, namespace=namespace, version=version, prometheus_url=prometheus, **release)
    started = time.time()
    kubectl(env_vars, "apply", "-f", "-", stdin=yaml.safe_dump(body))
    status = wait_for_phase(env_vars, namespace, name, {"Succeeded", "RolledBack", "Failed"}, timeout, on_poll)
    canary = traffic_of(read_log(plane.request_log), version, since=started)
    verdict = (status.get("analysis") or {}).get("verdict")
    if verdict is None:
        # Promotion starts a fresh analysis of the rollback window; the canary's verdict is in Healthy.
        healthy: dict[str, Any] = next((c for c in status.get("conditions", []) if c.get("type") == "Healthy"), {})
        verdict = {"AnalysisPassed": "Passed", "AnalysisFailed": "Failed"}.get(healthy.get("reason", ""))
    return ScenarioResult(
        version=version,
        phase=str(status.get("phase")),
        verdict=verdict,
        message=str(status.get("message", "")),
        canary=canary,
        seconds=time.time() - started,
    )
