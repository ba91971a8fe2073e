"""The provider registry: the spec field that is set picks the provider; a broken one is an error."""

from __future__ import annotations

from datetime import datetime, timezone

from controller.api.release import Metric, Verdict
from controller.analysis.base import MeasureContext, Provider, Sample, provider_key
from controller.analysis.providers import measure_all

CTX = MeasureContext("2.0.0", None, "staging", datetime(2025, 6, 1, tzinfo=timezone.utc))
PROM = Metric.model_validate({"name": "errors", "prometheus": {"address": "http://p", "query": "q"}, "max": 0.05})
HTTP = Metric.model_validate({"name": "health", "http": {"url": "http://h/{{environment}}"}, "min": 1})


class Fixed:
    def __init__(self, sample: Sample) -> None:
        self.sample = sample
        self.seen: list[tuple[str, MeasureContext]] = []

    def measure(self, metric: Metric, ctx: MeasureContext) -> Sample:
        self.seen.append((metric.name, ctx))
        return self.sample


class Broken:
    def measure(self, metric: Metric, ctx: MeasureContext) -> Sample:
        raise KeyError("result")


def test_each_metric_goes_to_the_provider_of_its_spec_field() -> None:
    prom, http = Fixed(Sample(value=0.5)), Fixed(Sample(value=1.0))
    providers: dict[str, Provider] = {"prometheus": prom, "http": http}
    out = measure_all([PROM, HTTP], CTX, providers)
    assert [(m.metric, m.verdict) for m in out] == [("errors", Verdict.FAILED), ("health", Verdict.PASSED)]
    assert [name for name, _ in prom.seen] == ["errors"] and [name for name, _ in http.seen] == ["health"]
    assert all(m.time == CTX.now for m in out)
    assert provider_key(PROM) == "prometheus" and provider_key(HTTP) == "http"


def test_a_raising_or_missing_provider_is_a_counted_error_not_a_crash() -> None:
    out = measure_all([PROM, HTTP], CTX, {"prometheus": Broken()})
    assert [m.verdict for m in out] == [Verdict.INCONCLUSIVE, Verdict.INCONCLUSIVE]
    assert all(m.value is None for m in out)
    assert "KeyError" in out[0].message
    assert "no provider registered for http" in out[1].message


def test_placeholders() -> None:
    assert CTX.substitute("{{version}}/{{stableVersion}}/{{environment}}/{{unknown}}") == "2.0.0//staging/{{unknown}}"
