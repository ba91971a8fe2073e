"""Every rollout ends (issue rollouts-end), on real traffic: the operator, moto, a real Prometheus
scraping the simulated workloads, and the local load balancer carrying 40 req/s.

Each test watches what a user would: the listener's weights over time (`AwsWatch`, sampled every
0.2 s), the Release status beside them (what `get`, `list` and `status` print), its Events and the
balancer's own request log. Nothing here sleeps to let time pass: each wait names the state it waits for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.dataplane import write_behaviour
from controller.testing.dataplane.scenario import analysis_spec, canary_release, error_rate_query, traffic_of
from controller.testing.env import LocalEnvironment
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import AwsWatch, Releases, cli, condition, live_versions, wait_for, weights_by_colour
from tests.e2e.test_analysis import HEALTHY, NAME, Plane, adopt, events, start_plane  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(300)

STEPS = ({"setWeight": 20}, {"pause": {"duration": "30s"}}, {"setWeight": 50}, {"pause": {"duration": "30s"}})


def serving(status: dict[str, Any]) -> dict[str, int]:
    return {s["version"]: s["weight"] for s in (status.get("backend") or {}).get("serving") or []}


def analysed(prometheus: str, metrics: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {"interval": "1s", "failureLimit": 1, "minSamples": 3, "metrics": metrics, **more}


def release(world: WorldIds, namespace: str, version: str, analysis: dict[str, Any],
            strategy: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return release_for(world, name=NAME, namespace=namespace, version=version,
                       strategy=strategy or {"type": "Canary", "canary": {"steps": [dict(s) for s in STEPS]}},
                       analysis=analysis, **spec)


def rolled_back_while_watched(releases: Releases, namespace: str, world: WorldIds, watch: AwsWatch,
                              timeout: float = 90) -> dict[str, Any]:
    """Wait for RolledBack at generation 2; then the listener is back on stable and stays there."""
    status = releases.wait_phase(namespace, NAME, "RolledBack", timeout, generation=2)
    releases.wait(namespace, NAME, lambda s: serving(s) == {"1.0.0": 100}, 20, "status: only 1.0.0 serving")
    assert watch.latest().weights.get(world.canary_target_group_arn, 0) == 0
    return status


def test_a_typo_in_the_metric_rolls_the_canary_back_within_seconds(
        operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, env_vars: dict[str, str], start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    start_plane(world)
    adopt(releases, world, namespace, prometheus, steps=STEPS)
    typo = error_rate_query(world.service).replace("http_requests_total", "http_request_total")
    metric = {"name": "error-rate", "max": 0.05, "prometheus": {"address": prometheus, "query": typo}}
    with AwsWatch(env_vars, world, task_sets=False) as watch:
        releases.apply(release(world, namespace, "2.0.0", analysed(prometheus, [metric])))
        # Beside the listener at 80/20, the status names both versions with their weights.
        at20 = releases.wait(namespace, NAME, lambda s: serving(s) == {"1.0.0": 80, "2.0.0": 20}, 60,
                             "status: 2.0.0 serving 20%")
        assert at20["backend"]["canaryVersion"] == "2.0.0" and at20["backend"]["canaryWeight"] == 20
        assert weights_by_colour(aws, world) == {"blue": 80, "green": 20}
        status = rolled_back_while_watched(releases, namespace, world, watch)
        canary = watch.weights_of(world.canary_target_group_arn)
    assert canary == [0, 20, 0], canary  # never promoted further, back on stable
    held = [s.at for s in watch.samples if s.weights.get(world.canary_target_group_arn, 0) == 20]
    assert held[-1] - held[0] < 30, "the unmeasured canary kept 20% for too long"
    assert "error-rate: no data for" in status["message"] and "receives traffic" in status["message"], status
    assert condition(status, "Healthy")["reason"] == "AnalysisFailed"
    assert status["history"][-1]["result"] == "RolledBack"
    rolled = [(t, m) for r, t, m in events(releases, namespace) if r == "RolledBack"]
    assert rolled and rolled[0][0] == "Warning" and "error-rate" in rolled[0][1], rolled


def test_a_canary_whose_health_endpoint_hangs_is_a_failed_canary(
        operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, env_vars: dict[str, str], start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    plane = start_plane(world)
    url = plane.dataplane.balancer_url + "/_version/{{version}}/health"
    health = {"name": "health", "min": 1, "http": {"url": url, "timeout": "500ms"}}
    adopt(releases, world, namespace, local_env.prometheus.url, steps=STEPS)
    write_behaviour(plane.behaviour, {**HEALTHY, "2.0.0": {"error_rate": 0.0, "latency_ms": 5,
                                                           "health_latency_ms": 30000}})
    with AwsWatch(env_vars, world, task_sets=False) as watch:
        releases.apply(release(world, namespace, "2.0.0", analysed(local_env.prometheus.url, [health])))
        status = rolled_back_while_watched(releases, namespace, world, watch)
        canary = watch.weights_of(world.canary_target_group_arn)
    assert canary in ([0, 20, 0], [0]), canary
    assert "health: the canary did not answer" in status["message"], status["message"]
    assert "provider down" not in status["message"]
    assert condition(status, "Healthy")["reason"] == "AnalysisFailed"
    measured = status["analysis"]["measurements"]
    # Named by its fixed class (tenancy: a request's failure never repeats the exception's text).
    assert any(m.get("error") == "NoAnswer" and "no answer: timeout" in m["message"] for m in measured), measured


def test_a_query_returning_two_series_is_a_spec_error_reported_at_once(
        operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, env_vars: dict[str, str], start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    start_plane(world)
    adopt(releases, world, namespace, prometheus, steps=STEPS)
    # `=~` over both versions, grouped by version: one series until the canary serves, then two. The
    # canary's workload exports its counters at 0 from its start, so `> 0` keeps its series out until
    # it answers requests (at 20%), whenever Prometheus first scrapes it.
    sel = f'service="{world.service}",version=~"{{{{version}}}}|{{{{stableVersion}}}}"'
    query = f"sum by (version) (rate(http_requests_total{{{sel}}}[5s]) > 0)"
    metric = {"name": "request-rate", "prometheus": {"address": prometheus, "query": query}}
    with AwsWatch(env_vars, world, task_sets=False) as watch:
        releases.apply(release(world, namespace, "2.0.0", analysed(prometheus, [metric])))
        status = rolled_back_while_watched(releases, namespace, world, watch)
        canary = watch.weights_of(world.canary_target_group_arn)
    assert canary == [0, 20, 0], canary
    healthy = condition(status, "Healthy")
    assert healthy["status"] == "False" and healthy["reason"] == "AnalysisInvalid", healthy
    assert "metric request-rate" in healthy["message"] and "2 series" in healthy["message"], healthy
    assert "aggregate it" in healthy["message"] and "provider down" not in healthy["message"]
    first_bad = next(m["time"] for m in status["analysis"]["measurements"] if m.get("error") == "Query")
    last = status["analysis"]["measurements"][-1]
    assert last["time"] == first_bad, "reported at the first query error, not after a hold"


def test_blue_green_whose_preview_gets_no_traffic_ends_at_the_progress_deadline(
        operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, env_vars: dict[str, str], start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    plane = start_plane(world)
    adopt(releases, world, namespace, prometheus, steps=STEPS)
    metric = {"name": "error-rate", "max": 0.05,
              "prometheus": {"address": prometheus, "query": error_rate_query(world.service)}}
    blue_green = {"type": "BlueGreen", "blueGreen": {"previewDuration": "2s", "scaleDownDelay": "30s"}}
    started = time.time()
    with AwsWatch(env_vars, world, task_sets=False) as watch:
        releases.apply(release(world, namespace, "2.0.0", analysed(prometheus, [metric], consecutiveErrorLimit=2),
                               strategy=blue_green, progressDeadline="25s"))
        held = releases.wait(namespace, NAME, lambda s: any(r == "AnalysisHeld" for r, _, _ in events(releases, namespace)),
                             60, "a Warning Event that the analysis is held")
        assert held["phase"] in ("Progressing", "Paused") and serving(held) == {"1.0.0": 100}, held
        status = rolled_back_while_watched(releases, namespace, world, watch, timeout=120)
        green = watch.weights_of(world.canary_target_group_arn)
    assert green == [0], green  # the preview never got traffic, and the rollout still ended
    assert "analysis never answered" in status["message"] and "error-rate" in status["message"], status["message"]
    assert condition(status, "Ready")["reason"] == "AnalysisUnanswered", status["conditions"]
    assert status["analysis"]["failures"] == 0  # held, never judged failed: nobody's fault
    said = [(t, m) for r, t, m in events(releases, namespace) if r == "AnalysisHeld"]
    assert said[0][0] == "Warning" and "error-rate" in said[0][1] and "progressDeadline" in said[0][1], said
    assert traffic_of(plane.log(), "2.0.0", since=started).requests == 0


def test_a_frontend_only_change_mid_canary_leaves_the_backend_where_it_is(
        operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, env_vars: dict[str, str], start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    steps = ({"setWeight": 20}, {"pause": {"duration": "2s"}}, {"setWeight": 50}, {"pause": {"duration": "15s"}})
    start_plane(world)
    adopt(releases, world, namespace, prometheus, steps=steps)

    def spec(frontend: str) -> dict[str, Any]:
        return release_for(world, name=NAME, namespace=namespace, version="2.0.0", frontend_version=frontend,
                           strategy={"type": "Canary", "canary": {"steps": [dict(s) for s in steps]}},
                           analysis=analysis_spec(prometheus, world.service))

    with AwsWatch(env_vars, world, task_sets=False) as watch:
        releases.apply(spec("1.0.0"))
        at50 = releases.wait(namespace, NAME, lambda s: serving(s) == {"1.0.0": 50, "2.0.0": 50}
                             and s.get("currentStep") == 3, 90, "backend canary at 50%, in its last pause")
        releases.apply(spec("1.1.0"))
        moved = releases.wait(namespace, NAME, lambda s: s.get("observedGeneration") == 3, 30, "generation 3 seen")
        assert moved["currentStep"] == 3 and moved["stepStartedAt"] == at50["stepStartedAt"], moved
        assert moved["revision"] == at50["revision"] and serving(moved) == {"1.0.0": 50, "2.0.0": 50}, moved
        status = releases.wait_phase(namespace, NAME, "Succeeded", 90, generation=3)
        canary = watch.weights_of(world.canary_target_group_arn)
    assert canary == [0, 20, 50, 100], canary  # never back to 20% after the frontend change
    assert status["backend"]["stableVersion"] == "2.0.0" and status["frontend"]["stableVersion"] == "1.1.0"
    said = events(releases, namespace)
    assert not any("superseded by 2.0.0" in m for _, _, m in said), said
    assert any(r == "SpecUpdated" and "frontend 1.0.0 -> 1.1.0" in m for r, _, m in said), said


def test_a_change_while_paused_shows_what_serves_and_a_delete_after_undo_ends_on_stable(
        operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
        local_env: LocalEnvironment, env_vars: dict[str, str], start_plane: Callable[..., Plane]) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    steps: tuple[dict[str, Any], ...] = ({"setWeight": 20}, {"pause": {}})
    start_plane(world)
    adopt(releases, world, namespace, prometheus, steps=steps)

    def spec(version: str, paused: bool = False) -> dict[str, Any]:
        body = canary_release(world, name=NAME, namespace=namespace, version=version, prometheus_url=prometheus,
                              steps=steps)
        body["spec"]["paused"] = paused
        return body

    with AwsWatch(env_vars, world, task_sets=False) as watch:
        releases.apply(spec("2.0.0"))
        releases.wait(namespace, NAME, lambda s: s.get("phase") == "Paused" and serving(s) == {"1.0.0": 80, "2.0.0": 20},
                      60, "2.0.0 at 20%, waiting for promote")
        cli(env_vars, "pause", NAME, "-n", namespace)
        releases.apply(spec("3.0.0", paused=True))
        st = releases.wait(namespace, NAME, lambda s: s.get("observedGeneration") == 4, 30, "3.0.0 seen, paused")
        # Nothing moves while paused, and the status says so: 2.0.0 still has its 20%.
        assert weights_by_colour(aws, world) == {"blue": 80, "green": 20}
        assert serving(st) == {"1.0.0": 80, "2.0.0": 20}, st["backend"]
        assert st["backend"]["canaryVersion"] == "3.0.0" and st["backend"]["canaryWeight"] == 0
        assert "1.0.0=80%,2.0.0=20%" in cli(env_vars, "list", "-n", namespace).stdout

        cli(env_vars, "undo", NAME, "-n", namespace)
        st = releases.wait(namespace, NAME, lambda s: s.get("observedGeneration") == 5, 30, "undo seen")
        assert serving(st) == {"1.0.0": 80, "2.0.0": 20}, st["backend"]
        releases.kubectl("delete", "release", NAME, "-n", namespace, "--wait=false")
        gone = wait_for("the Release deleted", lambda: releases.kubectl(
            "get", "release", NAME, "-n", namespace, check=False).returncode != 0, 60)
        canary = watch.weights_of(world.canary_target_group_arn)
    assert canary == [0, 20, 0], canary
    assert watch.latest().weights.get(world.stable_target_group_arn) == 100 and gone < 60
    wait_for("only 1.0.0 left", lambda: live_versions(aws, world) == {"1.0.0"}, 30)
