"""The HTTP health-check metric provider: GET a health endpoint, check status and JSON.

It measures; it does not judge (that is `verdict`). The `httpx.Client` is injected (the operator's
is `controller.tenancy.guard.guarded_client`) and every request carries the spec's timeout.

The value is **1.0 when healthy and 0.0 when not**, so a metric says `min: 1` to require health:

    - name: health
      http: {url: "http://api.internal/health", expectStatus: 200, jsonPath: checks.database, expectValue: ok}
      min: 1

Healthy means the status code equals `expectStatus` and, when `jsonPath` is set, the JSON value at
that dotted path (`checks.database`; list indexes as numbers, `items.0.state`) equals `expectValue`
(compared as text; JSON true/false/null as `true`/`false`/`null`). With `jsonPath` and no
`expectValue` the value must merely be present and not false, null or empty.

The endpoint is untrusted (a Release author picks the URL): nothing it returns is repeated. A
measurement says its number, the status code, and for the comparison only *matched* or *does not
match*; a `jsonPath` that names an object or a list is a spec error (name one value in it), so an
internal document cannot be copied out through the measurement's message.

An http metric probes the canary itself (its URL names the canary, usually with `{{version}}`): a
timeout, a refused or reset connection is the canary not answering, counted as no answer
(NoAnswer, towards the metric's `noDataLimit`, then as failed measurements), never as a monitoring
outage that would hold the rollout for ever. A URL httpx cannot even send (bad scheme, malformed)
is a query error: the spec is wrong.
A failure is named by its fixed class (`controller.tenancy.guard.Failure`), never by the
exception's text; a forbidden address (link-local, instance metadata) is a spec error too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from controller.api.release import HttpCheck, MeasurementError, Metric
from controller.analysis.base import MeasureContext, Sample, shown_url
from controller.tenancy.guard import Failure, describe

HEALTHY = 1.0
UNHEALTHY = 0.0
_MISSING = object()


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)


def _lookup(doc: Any, path: str) -> Any:
    node = doc
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


class SpecError(ValueError):
    """The check cannot be asked of this document as written (a jsonPath naming an object)."""


def check_document(check: HttpCheck, doc: Any) -> list[str]:
    """What is wrong with a health document, without a word of its content (empty: healthy).

    >>> from controller.api.release import HttpCheck
    >>> c = HttpCheck(url="http://x/health", json_path="checks.cache", expect_value="ok")
    >>> check_document(c, {"status": "ok", "checks": {"database": "ok", "cache": "ok"}})
    []
    >>> check_document(c, {"checks": {"cache": "SecretAccessKey=AKIA..."}})
    ['checks.cache does not match expectValue']
    >>> check_document(HttpCheck(url="http://x/health", json_path="checks.queue"), {"checks": {}})
    ['checks.queue is missing']
    """
    if check.json_path is None:
        return []
    node = _lookup(doc, check.json_path)
    if node is _MISSING:
        return [f"{check.json_path} is missing"]
    if isinstance(node, dict | list):
        raise SpecError(f"jsonPath {check.json_path} names an object or a list: name one value in it "
                        f"(e.g. {check.json_path}.status)")
    if check.expect_value is None:
        return [] if node not in (False, None, "") else [f"{check.json_path} is empty, false or null"]
    return [] if _text(node) == check.expect_value else [f"{check.json_path} does not match expectValue"]


@dataclass(frozen=True)
class HttpProvider:
    client: httpx.Client

    def measure(self, metric: Metric, ctx: MeasureContext) -> Sample:
        check = metric.http
        if check is None:
            return Sample(error=f"metric {metric.name} has no http check")
        url = ctx.substitute(check.url)
        shown = shown_url(url)
        try:
            resp = self.client.get(url, timeout=check.timeout.total_seconds())
        except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError) as exc:
            return Sample(error=f"GET {shown} cannot be sent: {type(exc).__name__}: {shown_url(str(exc)) or 'no detail'}",
                          error_kind=MeasurementError.QUERY)
        except httpx.HTTPError as exc:
            failure = describe(exc)
            if failure in (Failure.FORBIDDEN, Failure.SCHEME):  # the URL itself is wrong: a spec error
                return Sample(error=f"GET {shown} cannot be sent: {failure.value}", error_kind=MeasurementError.QUERY)
            return Sample(error=f"GET {shown}: no answer: {failure.value}", error_kind=MeasurementError.NO_ANSWER)
        problems: list[str] = []
        if resp.status_code != check.expect_status:
            problems.append(f"HTTP {resp.status_code}, expected {check.expect_status}")
        if check.json_path is not None:
            try:
                doc = resp.json()
            except ValueError:
                problems.append("body is not JSON")
            else:
                try:
                    problems.extend(check_document(check, doc))
                except SpecError as exc:
                    return Sample(error=f"metric {metric.name}: {exc}")
        if problems:
            return Sample(value=UNHEALTHY, note="; ".join(problems))
        return Sample(value=HEALTHY)
