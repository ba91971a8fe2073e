"""The Prometheus provider against a real Prometheus scraping a real exporter every second."""

from __future__ import annotations

import time
from dataclasses import replace
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from controller.api.release import Analysis, MeasurementError, Metric, Verdict
from controller.analysis.prometheus import PrometheusProvider
from controller.analysis.base import MeasureContext, Sample
from controller.analysis.providers import measure_all
from controller.analysis.registry import build_providers
from controller.analysis.verdict import evaluate
from controller.testing.ports import free_port

from tests.analysis.conftest import Exporter, Prometheus

pytestmark = pytest.mark.timeout(120)


def ctx(version: str = "2.0.0", stable: str | None = "1.9.0", window: float = 20) -> MeasureContext:
    return MeasureContext(version, stable, "production", datetime.now(timezone.utc), timedelta(seconds=window))


def metric(address: str, query: str, **bounds: object) -> Metric:
    return Metric.model_validate({"name": "error-rate", "prometheus": {"address": address, "query": query}, **bounds})


def poll(provider: PrometheusProvider, m: Metric, until: Callable[[Sample], object], timeout: float = 20,
         **kw: Any) -> Sample:
    """Measure until the sample satisfies `until` or `timeout` seconds pass (scrapes are 1 s apart)."""
    deadline = time.monotonic() + timeout
    while True:
        sample = provider.measure(m, ctx(**kw))
        if until(sample) or time.monotonic() > deadline:
            return sample
        time.sleep(0.5)


def test_counter_with_version_label_is_measured(
    prometheus: Prometheus, exporter: Exporter, http_client: httpx.Client
) -> None:
    exporter.requests.labels(version="2.0.0", code="200").inc(40)
    exporter.requests.labels(version="2.0.0", code="500").inc(2)
    exporter.requests.labels(version="1.9.0", code="200").inc(7)
    provider = PrometheusProvider(http_client)
    m = metric(prometheus.address, 'sum(demo_requests_total{version="{{version}}", environment="{{environment}}"})')
    sample = poll(provider, m, lambda s: s.value == 42.0)
    assert sample == Sample(value=42.0)
    # {{stableVersion}} is substituted as well (the scrape job labels every series environment="production").
    stable = metric(prometheus.address, 'sum(demo_requests_total{version="{{stableVersion}}"})')
    assert poll(provider, stable, lambda s: s.value == 7.0).value == 7.0


def test_bad_canary_fails_the_analysis_with_the_value_in_the_message(
    prometheus: Prometheus, exporter: Exporter, http_client: httpx.Client
) -> None:
    exporter.error_ratio.labels(version="3.0.0").set(0.3)
    m = metric(prometheus.address, 'demo_error_ratio{version="{{version}}"}', max=0.05)
    providers = build_providers(http_client)
    analysis = Analysis(failure_limit=0, min_samples=1, metrics=[m])
    deadline = time.monotonic() + 20
    while True:
        (measurement,) = measure_all([m], ctx("3.0.0"), providers)
        if measurement.verdict != Verdict.NO_DATA or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    status = evaluate(None, [measurement], analysis, measurement.time)
    assert status.verdict == Verdict.FAILED
    assert "error-rate 0.3 > max 0.05" in status.message


def test_query_matching_nothing_is_no_data(prometheus: Prometheus, http_client: httpx.Client) -> None:
    m = metric(prometheus.address, 'sum(rate(demo_requests_total{version="{{version}}"}[30s]))', max=0.05)
    (measurement,) = measure_all([m], ctx("9.9.9"), build_providers(http_client))
    assert measurement.verdict == Verdict.NO_DATA and measurement.value is None


def test_nan_ratio_without_traffic_is_no_data(prometheus: Prometheus, http_client: httpx.Client) -> None:
    m = metric(prometheus.address, "vector(0) / vector(0)")
    assert PrometheusProvider(http_client).measure(m, ctx()) == Sample(value=None)


def test_closed_port_is_a_provider_error_not_a_failure(http_client: httpx.Client) -> None:
    m = metric(f"http://127.0.0.1:{free_port()}", "up", max=0.05)
    analysis = Analysis(failure_limit=0, min_samples=1, consecutive_error_limit=2, metrics=[m])
    providers = build_providers(http_client)
    status = None
    for _ in range(2):
        measurements = measure_all([m], ctx(), providers)
        assert measurements[0].verdict == Verdict.INCONCLUSIVE and measurements[0].value is None
        assert "connection refused" in measurements[0].message
        status = evaluate(status, measurements, analysis, measurements[0].time)
    assert status is not None
    assert status.verdict == Verdict.INCONCLUSIVE and status.message.startswith("provider down")


def test_bad_query_and_many_series_are_errors(prometheus: Prometheus, exporter: Exporter,
                                             http_client: httpx.Client) -> None:
    provider = PrometheusProvider(http_client)
    bad = provider.measure(metric(prometheus.address, "sum(("), ctx())
    assert bad.error is not None and "bad_data" in bad.error
    assert bad.error_kind == MeasurementError.QUERY  # the spec's fault: reported at once, not held
    exporter.error_ratio.labels(version="a").set(0.1)
    exporter.error_ratio.labels(version="b").set(0.2)
    many = poll(provider, metric(prometheus.address, 'demo_error_ratio{version=~"a|b"}'), lambda s: s.error)
    assert many.error is not None and "2 series" in many.error
    assert many.error_kind == MeasurementError.QUERY
    # Judged: the analysis fails at once, naming the metric and what to fix.
    m = metric(prometheus.address, 'demo_error_ratio{version=~"a|b"}', max=0.5)
    (measurement,) = measure_all([m], ctx(), build_providers(http_client))
    status = evaluate(None, [measurement], Analysis(metrics=[m]), measurement.time)
    assert status.verdict == Verdict.FAILED
    assert "metric error-rate" in status.message and "aggregate it, e.g. sum(...)" in status.message
    # Prometheus down stays apart: the source's fault.
    down = provider.measure(metric(f"http://127.0.0.1:{free_port()}", "up"), ctx())
    assert down.error_kind == MeasurementError.PROVIDER


def test_min_requests_guard_judges_only_once_the_canary_served_enough(
    prometheus: Prometheus, exporter: Exporter, http_client: httpx.Client
) -> None:
    exporter.requests.labels(version="7.0.0", code="200").inc(5)
    exporter.error_ratio.labels(version="7.0.0").set(0.01)
    m = Metric.model_validate({
        "name": "error-rate", "max": 0.05, "minRequests": 20,
        "prometheus": {"address": prometheus.address, "query": 'demo_error_ratio{version="{{version}}"}',
                       "trafficQuery": 'sum(demo_requests_total{version="{{version}}"})'}})
    provider = PrometheusProvider(http_client)
    low = poll(provider, m, lambda s: s.error is not None and s.error.startswith("5 of 20"), version="7.0.0")
    assert low.error_kind == MeasurementError.LOW_TRAFFIC and low.value is None, low
    exporter.requests.labels(version="7.0.0", code="200").inc(30)
    judged = poll(provider, m, lambda s: s.value is not None, version="7.0.0")
    assert judged == Sample(value=0.01)


def test_compare_with_stable_uses_both_versions_series(
    prometheus: Prometheus, exporter: Exporter, http_client: httpx.Client
) -> None:
    # Noise is +-10% around each mean, so these ranges never overlap: the outcome is certain.
    exporter.latency.means.update({"5.0.0": 0.4, "4.0.0": 0.1, "6.0.0": 0.08})
    provider = PrometheusProvider(http_client)
    slow = Metric.model_validate({
        "name": "latency",
        "prometheus": {"address": prometheus.address, "query": 'demo_latency_seconds{version="{{version}}"}'},
        "max": 2.0,
        "compareWithStable": True,
    })

    def enough(s: Sample) -> bool:
        return len(s.samples) >= 6 and len(s.stable_samples) >= 6

    worse = poll(provider, slow, enough, timeout=30, version="5.0.0", stable="4.0.0", window=10)
    assert enough(worse), worse
    assert worse.value is not None and worse.stable_value is not None
    assert worse.value > worse.stable_value
    (measurement,) = measure_all([slow], ctx("5.0.0", "4.0.0", window=10), {"prometheus": provider})
    assert measurement.verdict == Verdict.FAILED  # within max 2.0, but worse than stable
    assert "canary worse than stable" in measurement.message

    same = poll(provider, slow, enough, timeout=30, version="6.0.0", stable="4.0.0", window=10)
    assert enough(same), same
    (measurement,) = measure_all([slow], ctx("6.0.0", "4.0.0", window=10), {"prometheus": provider})
    assert measurement.verdict == Verdict.PASSED, measurement.message


def test_credentials_in_the_address_never_reach_a_message(http_client: httpx.Client) -> None:
    m = metric(f"http://admin:s3cret-pw@127.0.0.1:{free_port()}", "up")
    (measurement,) = measure_all([m], ctx(), build_providers(http_client))
    assert "s3cret-pw" not in measurement.message and "admin" not in measurement.message
    assert "http://***@127.0.0.1" in measurement.message


@pytest.mark.parametrize("kind", ["Basic", "Bearer"])
def test_credentials_from_a_secret_reach_prometheus_and_no_message(
        guarded_prometheus: Prometheus, http_client: httpx.Client, kind: str) -> None:
    from controller.analysis.base import auth_headers
    from tests.analysis.conftest import PASSWORD

    m = Metric.model_validate({"name": "up", "min": 1, "prometheus": {
        "address": guarded_prometheus.address, "query": "vector(1)",
        "auth": {"type": kind, "secretRef": {"name": "prom"}}}})
    providers = build_providers(http_client)
    (refused,) = measure_all([m], ctx(), providers)
    assert refused.error == MeasurementError.QUERY and "refused the credentials" in refused.message, refused
    if kind == "Basic":
        headers = auth_headers(kind, {"username": b"admin", "password": PASSWORD.encode()})
        (ok,) = measure_all([m], replace(ctx(), headers={"up": headers}), providers)
        assert ok.verdict == Verdict.PASSED and ok.value == 1.0, ok
    else:
        # Prometheus's own web config knows only basic users: a bearer token is refused, and said so.
        (bad,) = measure_all([m], replace(ctx(), headers={"up": auth_headers(kind, {"token": b"t0ken-xyz"})}), providers)
        assert bad.error == MeasurementError.QUERY and "t0ken-xyz" not in bad.message
    (missing,) = measure_all([m], replace(ctx(), auth_errors={"up": "Secret prom has no key password"}), providers)
    assert missing.error == MeasurementError.QUERY and "Secret prom has no key password" in missing.message
