"""The Prometheus metric provider: PromQL over the HTTP API (`/api/v1/query`, `/api/v1/query_range`).

It measures; it does not judge (that is `verdict`). The `httpx.Client` is injected (one per
controller, shared with the HTTP provider), and every request carries a timeout, so an unreachable
Prometheus costs at most that long and is reported as `Sample(error=...)`, never raised.

Results:
* an instant vector with one series, or a scalar -> its value;
* an empty vector, or NaN (e.g. a ratio of two zero rates: no traffic) -> no value (NoData);
* more than one series -> a query error naming the count: aggregate in the query (`sum(...)`), since
  picking one series silently would judge an arbitrary slice of the traffic;
* Prometheus refusing the query (HTTP 400 `bad_data`, 422 `execution`: a parse error, a bad
  function), or a result of another type -> a query error: the spec is wrong, and waiting will not
  fix it;
* a connection failure, a timeout, another HTTP error or an answer that is not Prometheus's -> a
  provider error: monitoring is down, which says nothing about the canary.

With `trafficQuery` and the metric's `minRequests`, the canary's request count is asked first and
the metric is not judged (LOW_TRAFFIC) while it is below.

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

from controller.api.release import MeasurementError, Metric
from controller.analysis.base import MeasureContext, Sample, shown_url
from controller.analysis.sigv4 import NoCredentials
from controller.tenancy.guard import describe


class PrometheusError(Exception):
    """Prometheus could not answer the query (reported as a provider error)."""


class QueryError(PrometheusError):
    """Prometheus answered that the query is wrong, or its result cannot be judged: a spec error."""


QUERY_ERROR_TYPES = frozenset({"bad_data", "execution"})
"""Prometheus's `errorType`s that blame the query, not the server (its HTTP API documentation:
400 Bad Request when parameters are missing or incorrect, 422 when an expression cannot be executed)."""


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
        if metric.name in ctx.auth_errors:
            return Sample(error=f"prometheus.auth: {ctx.auth_errors[metric.name]}", error_kind=MeasurementError.QUERY)
        headers = dict(ctx.headers.get(metric.name, {}))
        signer = ctx.signers.get(metric.name)
        try:
            if metric.min_requests > 0 and spec.traffic_query:
                served = self.instant(spec.address, ctx.substitute(spec.traffic_query), ctx.now, headers, signer) or 0.0
                if served < metric.min_requests:
                    return Sample(error=f"{served:.0f} of {metric.min_requests} requests served by {ctx.version}"
                                  " in the window: too little traffic to judge", error_kind=MeasurementError.LOW_TRAFFIC)
            value = self.instant(spec.address, query, ctx.now, headers, signer)
            if not (metric.compare_with_stable and ctx.stable_version):
                return Sample(value=value)
            stable_query = ctx.substitute(spec.query, version=ctx.stable_version)
            start = ctx.now - ctx.window
            return Sample(
                value=value,
                stable_value=self.instant(spec.address, stable_query, ctx.now, headers, signer),
                samples=self.series(spec.address, query, start, ctx.now, headers, signer),
                stable_samples=self.series(spec.address, stable_query, start, ctx.now, headers, signer),
            )
        except QueryError as exc:
            return Sample(error=str(exc), error_kind=MeasurementError.QUERY)
        except PrometheusError as exc:
            return Sample(error=str(exc))

    # ------------------------------------------------------------------ the two HTTP API calls

    def instant(self, address: str, query: str, at: datetime, headers: dict[str, str] | None = None,
                signer: httpx.Auth | None = None) -> float | None:
        """The value of an instant query at `at`, None when it returned nothing."""
        data = self._get(address, "/api/v1/query", {"query": query, "time": f"{at.timestamp():.3f}"}, headers, signer)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list):
            return _number(result[1])
        if kind != "vector" or not isinstance(result, list):
            raise QueryError(f"query returned a {_known(kind, _RESULT_TYPES)}, not an instant vector or a scalar: {query}")
        if not result:
            return None
        if len(result) > 1:
            raise QueryError(
                f"query returned {len(result)} series, expected one (aggregate it, e.g. sum(...)): {query}"
            )
        return _number(result[0]["value"][1])

    def series(self, address: str, query: str, start: datetime, end: datetime,
               headers: dict[str, str] | None = None, signer: httpx.Auth | None = None) -> tuple[float, ...]:
        """The points of a range query over [start, end] (one series; NaN points dropped)."""
        span = max((end - start).total_seconds(), 1.0)
        step = max(span / self.max_points, 1.0)
        data = self._get(
            address,
            "/api/v1/query_range",
            {"query": query, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}", "step": f"{step:g}"},
            headers,
            signer,
        )
        result = data.get("result")
        if data.get("resultType") != "matrix" or not isinstance(result, list):
            raise QueryError(
                f"range query returned a {_known(data.get('resultType'), _RESULT_TYPES)}, not a matrix: {query}")
        if len(result) > 1:
            raise QueryError(
                f"range query returned {len(result)} series, expected one (aggregate it, e.g. sum(...)): {query}"
            )
        try:
            points = [_number(v) for _, v in result[0]["values"]] if result else []
        except (KeyError, TypeError, ValueError, IndexError):
            raise PrometheusError(f"range query: an answer that is not a Prometheus matrix: {query}") from None
        return tuple(p for p in points if p is not None)

    def _get(self, address: str, path: str, params: dict[str, str],
             headers: dict[str, str] | None = None, signer: httpx.Auth | None = None) -> dict[str, Any]:
        url = address.rstrip("/") + path
        shown = shown_url(url)
        try:
            resp = self.client.get(url, params=params, timeout=self.timeout, headers=headers or None,
                                   auth=signer if signer is not None else httpx.USE_CLIENT_DEFAULT)
        except NoCredentials:
            raise QueryError(f"{shown}: no AWS credentials to sign the query with (prometheus.auth SigV4)") from None
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{shown}: {describe(exc).value}") from None
        if resp.status_code in (401, 403):
            raise QueryError(f"{shown}: HTTP {resp.status_code}: Prometheus refused the credentials "
                             "(prometheus.auth: its Secret, or for SigV4 the role's aps:QueryMetrics)")
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PrometheusError(f"{shown}: HTTP {resp.status_code}, not a Prometheus API answer")
        if body.get("status") != "success" and body.get("errorType") in QUERY_ERROR_TYPES:
            raise QueryError(f"the query was refused ({body.get('errorType')}: a PromQL parse or evaluation error); "
                             "check the metric's query (the server's error text is not repeated)")
        if resp.status_code >= 400 or body.get("status") != "success":
            raise PrometheusError(f"{shown}: HTTP {resp.status_code}, {_known(body.get('errorType'), _ERROR_TYPES)} "
                                  "(the server's error text is not repeated)")
        data = body.get("data")
        if not isinstance(data, dict):
            raise PrometheusError(f"{shown}: answer without data")
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

