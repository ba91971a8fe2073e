"""The CloudWatch metric provider: `GetMetricData` with the spec's `metricDataQueries`.

It measures; it does not judge (that is `verdict`). The boto3 CloudWatch client is injected (built
by the one client factory, region passed explicitly); a call that fails is reported as
`Sample(error=...)`, never raised.

The spec's camelCase queries are translated to the API's shape, `{{version}}`, `{{stableVersion}}`
and `{{environment}}` substituted in expressions and dimension values, and asked for
[now - lookback, now]. The measured value is the latest datapoint of the first query that returns
data (`returnData` absent or true, as in the API); no datapoint in the window is NoData. With
`compareWithStable` the same queries are asked for the stable version and every datapoint of each
side feeds the Mann-Whitney comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from controller.api.release import CloudWatchQuery, Metric
from controller.analysis.base import MeasureContext, Sample


def to_api_query(query: CloudWatchQuery, ctx: MeasureContext, version: str | None = None) -> dict[str, Any]:
    """One spec query in `GetMetricData`'s shape, placeholders filled.

    >>> from controller.api.release import CloudWatchQuery
    >>> q = CloudWatchQuery.model_validate({"id": "p99", "metricStat": {"metric": {
    ...     "namespace": "AWS/ApplicationELB", "metricName": "TargetResponseTime",
    ...     "dimensions": [{"name": "TargetGroup", "value": "tg-{{version}}"}]}, "stat": "p99"}})
    >>> ctx = MeasureContext("2.0.0", "1.9.0", "production", datetime(2025, 1, 1))
    >>> to_api_query(q, ctx)["MetricStat"]["Metric"]["Dimensions"]
    [{'Name': 'TargetGroup', 'Value': 'tg-2.0.0'}]
    """
    out: dict[str, Any] = {"Id": query.id}
    if query.expression is not None:
        out["Expression"] = ctx.substitute(query.expression, version)
    if query.metric_stat is not None:
        stat = query.metric_stat
        out["MetricStat"] = {
            "Metric": {
                "Namespace": stat.metric.namespace,
                "MetricName": stat.metric.metric_name,
                "Dimensions": [
                    {"Name": d.name, "Value": ctx.substitute(d.value, version)} for d in stat.metric.dimensions
                ],
            },
            "Period": stat.period,
            "Stat": stat.stat,
        }
    if query.return_data is not None:
        out["ReturnData"] = query.return_data
    return out


@dataclass(frozen=True)
class CloudWatchProvider:
    client: Any  # a boto3 CloudWatch client (typed loosely: stubs are a test dependency)

    def measure(self, metric: Metric, ctx: MeasureContext) -> Sample:
        spec = metric.cloudwatch
        if spec is None:
            return Sample(error=f"metric {metric.name} has no cloudwatch queries")
        first = next((q for q in spec.metric_data_queries if q.return_data is not False), None)
        if first is None:
            return Sample(error=f"metric {metric.name}: no query has returnData")
        start = ctx.now - spec.lookback
        try:
            points = self._points(spec.metric_data_queries, first.id, ctx, None, start)
            value = points[-1] if points else None
            if not (metric.compare_with_stable and ctx.stable_version):
                return Sample(value=value)
            stable = self._points(spec.metric_data_queries, first.id, ctx, ctx.stable_version, start)
        except (BotoCoreError, ClientError) as exc:
            return Sample(error=f"GetMetricData: {exc}")
        return Sample(
            value=value,
            stable_value=stable[-1] if stable else None,
            samples=tuple(points),
            stable_samples=tuple(stable),
        )

    def _points(
        self, queries: list[CloudWatchQuery], wanted: str, ctx: MeasureContext, version: str | None, start: datetime
    ) -> list[float]:
        """Every datapoint of query `wanted` in the window, oldest first (all pages)."""
        request: dict[str, Any] = {
            "MetricDataQueries": [to_api_query(q, ctx, version) for q in queries],
            "StartTime": start,
            "EndTime": ctx.now,
            "ScanBy": "TimestampAscending",
        }
        found: list[tuple[datetime, float]] = []
        while True:
            resp = self.client.get_metric_data(**request)
            for result in resp.get("MetricDataResults", []):
                if result.get("Id") == wanted:
                    found.extend(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
            token = resp.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
        found.sort(key=lambda point: point[0])
        return [float(v) for _, v in found]
