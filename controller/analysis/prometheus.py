"""The Prometheus metric provider: PromQL over the HTTP API (`/api/v1/query`, `/api/v1/query_range`).

It measures; it does not judge (that is `verdict`). The `httpx.Client` is injected (one per
controller, shared with the HTTP provider), and every request carries a timeout, so an unreachable
Prometheus costs at most that long and is reported as `Sample(error=...)`, never raised.

Results:
* an instant vector with one series, or a scalar -> its value;
* an empty vector, or NaN (e.g. a ratio of two zero rates: no traffic) -> no value (NoData);
* more than one series -> an error naming the count: aggregate in the query (`sum(...)`), since
  picking one series silently would judge an arbitrary slice of the traffic;
* a connection failure, a timeout, an HTTP error or `"status": "error"` -> an error.

The address is a Release author's to pick, so nothing the server returns but numbers is repeated:
an error names the HTTP status code, Prometheus' `errorType` when it is one of the API's documented
kinds, or the failure's fixed class (`controller.tenancy.guard.Failure`), never the `error` text,
a body or a result type the server made up.

With `compareWithStable` (and a stable version to compare with) it also asks the query for the
stable version, and a range query over `ctx.window` for each version, whose points feed the
Mann-Whitney comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from controller.api.release import Metric
from controller.analysis.base import MeasureContext, Sample
from controller.tenancy.guard import describe


class PrometheusError(Exception):
    """Prometheus could not answer the query (reported as a provider error)."""


@dataclass(frozen=True)
class PrometheusProvider:
    client: httpx.Client
    timeout: float = 5.0
    max_points: int = 120  # per version in a comparison: enough for the test, cheap to fetch

    def measure(self, metric: Metric, ctx: MeasureContext) -> Sample:
        spec = metric.prometheus
        if spec is None:
            return Sample(error=f"metric {metric.name} has no prometheus query")
        query = ctx.substitute(spec.query)
        try:
            value = self.instant(spec.address, query, ctx.now)
            if not (metric.compare_with_stable and ctx.stable_version):
                return Sample(value=value)
            stable_query = ctx.substitute(spec.query, version=ctx.stable_version)
            start = ctx.now - ctx.window
            return Sample(
                value=value,
                stable_value=self.instant(spec.address, stable_query, ctx.now),
                samples=self.series(spec.address, query, start, ctx.now),
                stable_samples=self.series(spec.address, stable_query, start, ctx.now),
            )
        except PrometheusError as exc:
            return Sample(error=str(exc))

    # ------------------------------------------------------------------ the two HTTP API calls

    def instant(self, address: str, query: str, at: datetime) -> float | None:
        """The value of an instant query at `at`, None when it returned nothing."""
        data = self._get(address, "/api/v1/query", {"query": query, "time": f"{at.timestamp():.3f}"})
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list):
            return _number(result[1])
        if kind != "vector" or not isinstance(result, list):
            raise PrometheusError(f"query returned a {_known(kind, _RESULT_TYPES)}, not an instant vector: {query}")
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(
                f"query returned {len(result)} series, expected one (aggregate it, e.g. sum(...)): {query}"
            )
        return _number(result[0]["value"][1])

    def series(self, address: str, query: str, start: datetime, end: datetime) -> tuple[float, ...]:
        """The points of a range query over [start, end] (one series; NaN points dropped)."""
        span = max((end - start).total_seconds(), 1.0)
        step = max(span / self.max_points, 1.0)
        data = self._get(
            address,
            "/api/v1/query_range",
            {"query": query, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}", "step": f"{step:g}"},
        )
        result = data.get("result")
        if data.get("resultType") != "matrix" or not isinstance(result, list):
            raise PrometheusError(
                f"range query returned a {_known(data.get('resultType'), _RESULT_TYPES)}, not a matrix: {query}")
        if len(result) > 1:
            raise PrometheusError(
                f"range query returned {len(result)} series, expected one (aggregate it, e.g. sum(...)): {query}"
            )
        try:
            points = [_number(v) for _, v in result[0]["values"]] if result else []
        except (KeyError, TypeError, ValueError, IndexError):
            raise PrometheusError(f"range query: an answer that is not a Prometheus matrix: {query}") from None
        return tuple(p for p in points if p is not None)

    def _get(self, address: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = address.rstrip("/") + path
        try:
            resp = self.client.get(url, params=params, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{url}: {describe(exc).value}") from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PrometheusError(f"{url}: HTTP {resp.status_code}, not a Prometheus API answer")
        if resp.status_code >= 400 or body.get("status") != "success":
            raise PrometheusError(f"{url}: HTTP {resp.status_code}, {_known(body.get('errorType'), _ERROR_TYPES)} "
                                  "(the server's error text is not repeated)")
        data = body.get("data")
        if not isinstance(data, dict):
            raise PrometheusError(f"{url}: answer without data")
        return data


# The HTTP API's documented values (prometheus.io/docs/prometheus/latest/querying/api/): anything else
# a server says is named only as "another".
_RESULT_TYPES = frozenset({"matrix", "vector", "scalar", "string"})
_ERROR_TYPES = frozenset({"bad_data", "timeout", "canceled", "execution", "internal", "unavailable", "not_found",
                          "too_many_samples", "bad_response"})


def _known(value: Any, known: frozenset[str]) -> str:
    """`value` when it is one of the documented words, else a fixed stand-in."""
    return value if isinstance(value, str) and value in known else "unknown kind"


def _number(text: Any) -> float | None:
    """Prometheus sends sample values as strings ("0.05", "NaN", "+Inf"); NaN means no value. A value
    that is not a number is an error that does not repeat it."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise PrometheusError("a sample value that is not a number") from None
    return None if math.isnan(value) else value

