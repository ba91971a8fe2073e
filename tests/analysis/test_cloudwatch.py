"""The CloudWatch provider against a moto server: PutMetricData in, GetMetricData through the provider."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest

from controller.api.release import Analysis, Metric, Verdict
from controller.analysis.cloudwatch import CloudWatchProvider
from controller.analysis.base import MeasureContext, Sample
from controller.analysis.providers import measure_all
from controller.analysis.registry import build_providers
from controller.analysis.verdict import evaluate
from controller.testing.ports import free_port

pytestmark = pytest.mark.timeout(120)

NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)


def p99_metric(namespace: str, **extra: Any) -> Metric:
    return Metric.model_validate({
        "name": "p99-latency",
        "cloudwatch": {
            "lookback": "10m",
            "metricDataQueries": [
                {
                    "id": "p99",
                    "metricStat": {
                        "metric": {
                            "namespace": namespace,
                            "metricName": "TargetResponseTime",
                            "dimensions": [{"name": "TargetGroup", "value": "pratiko-{{environment}}-{{version}}"}],
                        },
                        "period": 60,
                        "stat": "Maximum",
                    },
                },
                # Not returned: only the first returnData query is the measured value.
                {
                    "id": "other",
                    "returnData": False,
                    "metricStat": {
                        "metric": {"namespace": namespace, "metricName": "RequestCount"},
                        "period": 60,
                        "stat": "Sum",
                    },
                },
            ],
            **extra.pop("cloudwatch", {}),
        },
        "max": 2.0,
        **extra,
    })


def put(client: Any, namespace: str, version: str, points: list[tuple[timedelta, float]]) -> None:
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": "TargetResponseTime",
                "Dimensions": [{"Name": "TargetGroup", "Value": f"pratiko-production-{version}"}],
                "Timestamp": NOW - ago,
                "Value": value,
            }
            for ago, value in points
        ],
    )


def ctx(version: str = "2.0.0", stable: str | None = "1.9.0") -> MeasureContext:
    return MeasureContext(version, stable, "production", NOW + timedelta(seconds=30))


@pytest.fixture()
def namespace() -> str:
    return f"Test/{uuid.uuid4().hex[:8]}"


def test_latest_datapoint_of_the_first_returned_query(cloudwatch: Any, namespace: str) -> None:
    put(cloudwatch, namespace, "2.0.0", [(timedelta(minutes=4), 0.4), (timedelta(minutes=1), 2.6)])
    put(cloudwatch, namespace, "1.9.0", [(timedelta(minutes=1), 0.3)])
    metric = p99_metric(namespace)
    assert CloudWatchProvider(cloudwatch).measure(metric, ctx()) == Sample(value=2.6)

    (measurement,) = measure_all([metric], ctx(), build_providers(None, cloudwatch))
    status = evaluate(None, [measurement], Analysis(failure_limit=0, min_samples=1, metrics=[metric]), NOW)
    assert status.verdict == Verdict.FAILED
    assert "p99-latency 2.6 > max 2" in status.message


def test_datapoints_outside_the_lookback_are_no_data(cloudwatch: Any, namespace: str) -> None:
    put(cloudwatch, namespace, "2.0.0", [(timedelta(minutes=30), 0.4)])
    (measurement,) = measure_all([p99_metric(namespace)], ctx(), build_providers(None, cloudwatch))
    assert measurement.verdict == Verdict.NO_DATA


def test_unreachable_cloudwatch_is_a_provider_error() -> None:
    dead = boto3.client(
        "cloudwatch", endpoint_url=f"http://127.0.0.1:{free_port()}", region_name="eu-west-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=boto3.session.Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )
    sample = CloudWatchProvider(dead).measure(p99_metric("Test/none"), ctx())
    assert sample.value is None and sample.error is not None and "GetMetricData" in sample.error


def test_compare_with_stable_over_the_lookback(cloudwatch: Any, namespace: str) -> None:
    canary = [(timedelta(minutes=i), 0.9 + i / 100) for i in range(1, 9)]
    stable = [(timedelta(minutes=i), 0.3 + i / 100) for i in range(1, 9)]
    put(cloudwatch, namespace, "2.0.0", canary)
    put(cloudwatch, namespace, "1.9.0", stable)
    metric = p99_metric(namespace, compareWithStable=True)
    sample = CloudWatchProvider(cloudwatch).measure(metric, ctx())
    assert sample.value == pytest.approx(0.91)  # the latest point, one minute ago
    assert sorted(sample.samples) == pytest.approx(sorted(v for _, v in canary))
    assert sorted(sample.stable_samples) == pytest.approx(sorted(v for _, v in stable))
    (measurement,) = measure_all([metric], ctx(), build_providers(None, cloudwatch))
    assert measurement.verdict == Verdict.FAILED and "canary worse than stable" in measurement.message
