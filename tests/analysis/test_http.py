"""The HTTP health provider against a local server answering a multi-layer health document."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from controller.api.release import Analysis, MeasurementError, Metric, Verdict
from controller.analysis.http import HttpProvider
from controller.analysis.base import MeasureContext, Sample
from controller.analysis.providers import measure_all
from controller.analysis.registry import build_providers
from controller.analysis.verdict import evaluate
from controller.testing.ports import free_port

from tests.analysis.conftest import HealthDocs

pytestmark = pytest.mark.timeout(60)

HEALTHY = {"status": "ok", "checks": {"database": "ok", "cache": "ok", "dependencies": {"llm": "ok", "auth": "ok"}}}
DEGRADED = {"status": "degraded", "checks": {"database": "ok", "cache": "down",
                                             "dependencies": {"llm": "timeout", "auth": "ok"}}}
CTX = MeasureContext("2.0.0", "1.9.0", "production", datetime(2025, 6, 1, tzinfo=timezone.utc))


def health(url: str, **check: Any) -> Metric:
    return Metric.model_validate({"name": "health", "http": {"url": url, **check}, "min": 1})


def serve(docs: HealthDocs, path: str, status: int, body: Any) -> None:
    docs.routes[path] = (status, json.dumps(body).encode())


def test_healthy_document_is_one(health_server: tuple[str, HealthDocs], http_client: httpx.Client) -> None:
    base, docs = health_server
    serve(docs, "/v/2.0.0/health", 200, HEALTHY)
    metric = health(base + "/v/{{version}}/health", jsonPath="checks.database", expectValue="ok")
    assert HttpProvider(http_client).measure(metric, CTX) == Sample(value=1.0)
    (measurement,) = measure_all([metric], CTX, build_providers(http_client))
    assert measurement.verdict == Verdict.PASSED


def test_degraded_document_says_which_check_failed_never_its_value(
    health_server: tuple[str, HealthDocs], http_client: httpx.Client
) -> None:
    base, docs = health_server
    serve(docs, "/health", 503, DEGRADED)
    metric = health(base + "/health", jsonPath="checks.dependencies.llm", expectValue="ok")
    (measurement,) = measure_all([metric], CTX, build_providers(http_client))
    assert measurement.value == 0.0 and measurement.verdict == Verdict.FAILED
    assert "health 0 < min 1" in measurement.message
    assert "HTTP 503, expected 200" in measurement.message
    assert "checks.dependencies.llm does not match expectValue" in measurement.message
    assert "timeout" not in measurement.message  # the endpoint's value is not repeated
    status = evaluate(None, [measurement], Analysis(failure_limit=0, min_samples=1, metrics=[metric]), CTX.now)
    assert status.verdict == Verdict.FAILED and "does not match" in status.message and "timeout" not in status.message


def test_a_json_path_naming_an_object_is_a_spec_error(
    health_server: tuple[str, HealthDocs], http_client: httpx.Client
) -> None:
    base, docs = health_server
    serve(docs, "/health", 200, {"checks": {"database": {"password": "hunter2"}}})
    for path in ("checks", "checks.database"):
        (measurement,) = measure_all([health(base + "/health", jsonPath=path, expectValue="ok")], CTX,
                                     build_providers(http_client))
        assert measurement.verdict == Verdict.INCONCLUSIVE and measurement.value is None
        assert f"jsonPath {path} names an object or a list" in measurement.message
        assert "hunter2" not in measurement.message and "password" not in measurement.message


def test_single_field_and_status_only_checks(
    health_server: tuple[str, HealthDocs], http_client: httpx.Client
) -> None:
    base, docs = health_server
    serve(docs, "/health", 200, DEGRADED)
    provider = HttpProvider(http_client)
    assert provider.measure(health(base + "/health", jsonPath="checks.database", expectValue="ok"), CTX).value == 1.0
    assert provider.measure(health(base + "/health", jsonPath="checks.cache", expectValue="ok"), CTX).value == 0.0
    assert provider.measure(health(base + "/health", jsonPath="checks.queue"), CTX).note == "checks.queue is missing"
    # Without jsonPath only the status counts: a 200 with a degraded body is healthy.
    assert provider.measure(health(base + "/health"), CTX).value == 1.0
    assert provider.measure(health(base + "/nowhere"), CTX).value == 0.0
    serve(docs, "/ready", 204, {})
    assert provider.measure(health(base + "/ready", expectStatus=204), CTX).value == 1.0


def test_unreachable_or_slow_canary_is_no_answer_counted_against_it(
    health_server: tuple[str, HealthDocs], http_client: httpx.Client
) -> None:
    provider = HttpProvider(http_client)
    closed = provider.measure(health(f"http://127.0.0.1:{free_port()}/health"), CTX)
    assert closed.value is None and closed.error is not None and closed.error.endswith("connection refused")
    assert closed.error_kind == MeasurementError.NO_ANSWER

    base, docs = health_server
    serve(docs, "/health", 200, HEALTHY)
    docs.delay = 1.0
    slow = provider.measure(health(base + "/health", timeout="200ms"), CTX)
    assert slow.error is not None and slow.error.endswith("timeout")
    (measurement,) = measure_all([health(base + "/health", timeout="200ms")], CTX, build_providers(http_client))
    # The canary did not answer its own probe: NoData of kind NoAnswer, which the verdict counts
    # towards the metric's noDataLimit and then as failures (never a "provider down" hold).
    assert measurement.verdict == Verdict.NO_DATA and measurement.error == MeasurementError.NO_ANSWER
    metric = health(base + "/health", timeout="200ms")
    analysis = Analysis(failure_limit=0, min_samples=1, metrics=[metric.model_copy(update={"no_data_limit": 1})])
    status = evaluate(None, [measurement], analysis, CTX.now, serving=False)
    assert status.verdict != Verdict.FAILED
    status = evaluate(status, [measurement], analysis, CTX.now, serving=False)
    assert status.verdict == Verdict.FAILED and "did not answer 2 consecutive probes" in status.message


def test_a_url_that_cannot_be_sent_is_a_query_error(http_client: httpx.Client) -> None:
    # The API server refuses a scheme other than http(s) (the CRD's pattern); a URL with no host
    # passes the pattern and still cannot be sent.
    (measurement,) = measure_all([health("http://:80/health")], CTX, build_providers(http_client))
    assert measurement.error == MeasurementError.QUERY and "cannot be sent" in measurement.message
