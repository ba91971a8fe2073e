"""The data plane's pure parts: error sequence, weighted round-robin, image tags, listener weights."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest

from pathlib import Path

from controller.testing.dataplane.__main__ import main as cli
from controller.testing.dataplane.balancer import Balancer, Router, SmoothWeightedRoundRobin, Target, read_log
from controller.testing.dataplane.loadgen import LoadGenerator
from controller.testing.dataplane.supervisor import desired_workloads, version_from_image, weights_from_listener
from controller.testing.dataplane.workload import Behaviour, behaviour_for, fails, openapi_document


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.1, 0.3, 0.5, 0.95, 1.0])
def test_error_sequence_fails_exactly_the_rate_in_every_hundred(rate: float) -> None:
    outcomes = [fails(n, rate) for n in range(1000)]
    for start in range(0, 1000, 100):
        assert sum(outcomes[start:start + 100]) == round(rate * 100)


def test_error_sequence_spreads_failures_evenly() -> None:
    outcomes = [fails(n, 0.3) for n in range(100)]
    # No window of 10 consecutive requests deviates from 3 errors by more than one.
    assert all(2 <= sum(outcomes[i:i + 10]) <= 4 for i in range(91))


def test_smooth_wrr_matches_nginx_worked_example() -> None:
    wrr = SmoothWeightedRoundRobin({"a": 5, "b": 1, "c": 1})
    assert [wrr.pick() for _ in range(7)] == ["a", "a", "b", "a", "c", "a", "a"]


@pytest.mark.parametrize("weights", [{"blue": 90, "green": 10}, {"blue": 50, "green": 50}, {"blue": 1, "green": 99}, {"blue": 100, "green": 0}])
def test_smooth_wrr_is_exact_over_a_period(weights: dict[str, int]) -> None:
    wrr = SmoothWeightedRoundRobin(weights)
    picks = Counter(wrr.pick() for _ in range(300))
    assert {k: picks.get(k, 0) for k in weights} == {k: 3 * w for k, w in weights.items()}


def test_router_answers_no_target_for_zero_weights_or_an_empty_group() -> None:
    router = Router()
    assert router.route().target is None
    router.update({"blue": 1, "green": 1}, {"blue": [Target("127.0.0.1", 1, "1.4.0", "ts-1")]})
    routes = [router.route() for _ in range(4)]
    assert [r.target_group for r in routes] == ["blue", "green", "blue", "green"]
    assert [r.target is None for r in routes] == [False, True, False, True]


def test_router_restarts_the_sequence_when_weights_change() -> None:
    router = Router()
    targets = {"blue": [Target("h", 1, "1", "a")], "green": [Target("h", 2, "2", "b")]}
    router.update({"blue": 50, "green": 50}, targets)
    router.route()
    router.update({"blue": 90, "green": 10}, targets)
    assert Counter(router.route().target_group for _ in range(100)) == {"blue": 90, "green": 10}


@pytest.mark.parametrize(("image", "version"), [
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:1.4.0", "1.4.0"),
    ("repo/pratiko-backend:v2.0.0-rc.1", "2.0.0-rc.1"),
    ("localhost:5000/pratiko-backend", "latest"),
    ("repo/app@sha256:abcd", "sha256:abcd"),
    ("repo/app:stable", "stable"),
    (None, "unknown"),
])
def test_version_from_image_tag(image: str | None, version: str) -> None:
    assert version_from_image(image) == version


def test_listener_weights_from_forward_config_and_single_target_group() -> None:
    weighted = {"DefaultActions": [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": "tg/blue", "Weight": 90}, {"TargetGroupArn": "tg/green", "Weight": 10}]}}]}
    assert weights_from_listener(weighted) == {"tg/blue": 90, "tg/green": 10}
    assert weights_from_listener({"DefaultActions": [{"Type": "forward", "TargetGroupArn": "tg/blue"}]}) == {"tg/blue": 1}
    assert weights_from_listener({"DefaultActions": [{"Type": "fixed-response"}]}) == {}


def test_desired_workloads_skip_task_sets_scaled_to_zero() -> None:
    def ts(id_: str, td: str, scale: float) -> dict[str, Any]:
        return {"id": id_, "taskDefinition": td, "scale": {"value": scale, "unit": "PERCENT"},
                "loadBalancers": [{"targetGroupArn": f"tg/{id_}", "containerName": "api"}]}

    images = {"td:1": "repo/app:1.4.0", "td:2": "repo/app:1.5.0"}
    service = {"status": "ACTIVE", "deploymentController": {"type": "EXTERNAL"},
               "taskSets": [ts("a", "td:1", 100), ts("b", "td:2", 0)]}
    got = desired_workloads(service, lambda td, container: images[td] if container == "api" else None)
    assert [(d.key, d.version, d.target_group) for d in got] == [("a", "1.4.0", "tg/a")]


def test_behaviour_falls_back_to_default_and_rejects_nonsense() -> None:
    doc = {"1.5.0": {"error_rate": 0.3, "latency_ms": 20}, "default": {"latency_ms": 5}}
    assert behaviour_for(doc, "1.5.0") == Behaviour(error_rate=0.3, latency_ms=20)
    assert behaviour_for(doc, "1.4.0") == Behaviour(latency_ms=5)
    assert behaviour_for({}, "1.4.0") == Behaviour()
    with pytest.raises(ValueError):
        behaviour_for({"1.4.0": {"error_rate": 3}}, "1.4.0")


def test_openapi_documents_differ_in_a_breaking_way_between_majors() -> None:
    v1, v15, v2 = (openapi_document(v) for v in ("1.4.0", "1.5.0", "2.0.0"))
    assert "/api/v1/chat" in v1["paths"] and "/api/v2/chat" in v2["paths"]
    assert v1["components"]["schemas"]["ChatRequest"]["required"] == ["message"]
    assert "stream" in v15["components"]["schemas"]["ChatRequest"]["properties"]
    assert v2["components"]["schemas"]["ChatRequest"]["required"] == ["prompt"]


def test_cli_behaviour_edits_one_version_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "behaviour.json"
    assert cli(["behaviour", "--file", str(path), "default", "latency_ms=5"]) == 0
    assert cli(["behaviour", "--file", str(path), "1.5.0", "error_rate=0.3", "healthy=false"]) == 0
    doc = json.loads(path.read_text())
    assert behaviour_for(doc, "1.5.0") == Behaviour(error_rate=0.3, healthy=False)
    assert behaviour_for(doc, "1.4.0") == Behaviour(latency_ms=5)


@pytest.mark.timeout(30)
def test_loadgen_sends_at_a_steady_rate_and_stops_by_itself(tmp_path: Path) -> None:
    # A balancer with no target answers every request 503 at once, and logs it.
    balancer = Balancer(log_path=tmp_path / "lb.jsonl")
    url = balancer.start()
    try:
        load = LoadGenerator(url, rate=50, duration=2.0).start()
        time.sleep(1.0)
        halfway = load.stats().sent
        stats = load.join(timeout=10)
    finally:
        balancer.stop()
    assert load.finished
    assert stats.sent == 100 and stats.by_status == {503: 100}
    assert 40 <= halfway <= 60  # spread over the duration, not sent in a burst
    assert 1.9 <= stats.elapsed <= 3.0
    entries = read_log(tmp_path / "lb.jsonl")
    assert len(entries) == 100 and {(e["status"], e["version"], e["target_group"]) for e in entries} == {(503, None, None)}
