"""Nothing a remote endpoint returns reaches a measurement: the HTTP and Prometheus providers against
loopback servers that answer like an instance-metadata service or a hostile Prometheus."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from controller.analysis.http import HttpProvider
from controller.analysis.prometheus import PrometheusProvider
from controller.analysis.providers import measure_all
from controller.analysis.registry import build_providers
from controller.analysis.base import MeasureContext
from controller.api.release import MeasurementError, Metric, Verdict
from controller.tenancy.guard import guarded_client
from tests.tenancy.conftest import Loopback

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
IMDS = {"Code": "Success", "AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": SECRET, "Token": SECRET,
        "database": {"password": SECRET}}
CTX = MeasureContext("2.0.0", "1.9.0", "production", datetime(2025, 6, 1, tzinfo=timezone.utc))


def http_metric(url: str, **check: object) -> Metric:
    return Metric.model_validate({"name": "health", "http": {"url": url, **check}, "min": 1})


@pytest.mark.parametrize("check", [
    {"jsonPath": "SecretAccessKey", "expectValue": "x"},
    {"jsonPath": "SecretAccessKey"},
    {"jsonPath": "database", "expectValue": "ok"},
    {"jsonPath": "database.password", "expectValue": "ok"},
    {"jsonPath": "nothing.here", "expectValue": "ok"},
    {"expectStatus": 204},
])
def test_an_internal_document_is_measured_not_copied(loopback: Loopback, check: dict[str, object]) -> None:
    loopback.routes["/latest/meta-data/iam/security-credentials/role"] = (200, {"X-Secret": SECRET},
                                                                         json.dumps(IMDS).encode())
    metric = http_metric(loopback.url + "/latest/meta-data/iam/security-credentials/role", **check)
    (m,) = measure_all([metric], CTX, build_providers(guarded_client()))
    assert SECRET not in m.model_dump_json()
    assert "ASIAEXAMPLE" not in m.model_dump_json()


def test_the_metadata_address_is_an_error_class(loopback: Loopback) -> None:
    sample = HttpProvider(guarded_client()).measure(http_metric("http://169.254.169.254/latest/meta-data/"), CTX)
    assert sample.error == "GET http://169.254.169.254/latest/meta-data/ cannot be sent: " \
                           "address not allowed (link-local or instance metadata)"
    assert sample.error_kind == MeasurementError.QUERY  # the URL itself is wrong: never a "no answer" hold


@pytest.mark.parametrize(("status", "body"), [
    (400, {"status": "error", "errorType": "bad_data", "error": f"parse error near {SECRET}"}),
    (400, {"status": "error", "errorType": SECRET, "error": SECRET}),
    (200, {"status": "success", "data": {"resultType": SECRET, "result": []}}),
    (200, {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, SECRET]}]}}),
    (200, {"status": "success", "data": {"resultType": "scalar", "result": [1, SECRET]}}),
    (500, {"error": SECRET}),
])
def test_a_hostile_prometheus_is_measured_not_copied(loopback: Loopback, status: int, body: object) -> None:
    loopback.routes["/api/v1/query"] = (status, {}, json.dumps(body).encode())
    metric = Metric.model_validate({"name": "errors", "max": 0.05,
                                    "prometheus": {"address": loopback.url, "query": "up"}})
    sample = PrometheusProvider(guarded_client()).measure(metric, CTX)
    assert sample.error is not None and SECRET not in sample.error
    (m,) = measure_all([metric], CTX, build_providers(guarded_client()))
    assert m.verdict == Verdict.INCONCLUSIVE and SECRET not in m.model_dump_json()
