"""The metric-provider interface, the registry that picks a provider, and `measure_all`.

A provider turns one `Metric` spec into numbers (`Sample`); it never judges them, and it never
raises for an unreachable backend: it reports `Sample(error=...)` so the verdict can count provider
errors apart from failures. `measure_all` asks the provider chosen by the spec field that is set
(`prometheus`, `cloudwatch` or `http`) and judges each sample with `verdict.assess` / `compare`.

This module imports no network library itself; the concrete providers (`prometheus.py`,
`cloudwatch.py`, `http.py`) receive their clients from the caller, never build global ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from controller.api.release import Measurement, Metric, Verdict
from controller.analysis.verdict import assess, compare


@dataclass(frozen=True)
class MeasureContext:
    """What a query may refer to, and the clock, passed in.

    `window` is how far back a comparison with the stable version looks (range queries); the
    caller usually passes the time since the current step started, capped at a few minutes.
    """

    version: str
    stable_version: str | None
    environment: str
    now: datetime
    window: timedelta = timedelta(minutes=2)

    def substitute(self, template: str, version: str | None = None) -> str:
        """Fill `{{version}}`, `{{stableVersion}}` and `{{environment}}` (spaces inside the braces
        allowed). `version` overrides `{{version}}`: the stable side of a comparison asks the same
        query for the stable version.

        >>> ctx = MeasureContext("2.0.0", "1.9.0", "production", datetime(2025, 1, 1))
        >>> ctx.substitute('rate(x{version="{{version}}",env="{{ environment }}"}[1m])')
        'rate(x{version="2.0.0",env="production"}[1m])'
        >>> ctx.substitute('x{version="{{version}}"}', version=ctx.stable_version)
        'x{version="1.9.0"}'
        """
        values = {
            "version": version if version is not None else self.version,
            "stableVersion": self.stable_version or "",
            "environment": self.environment,
        }
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class Sample:
    """What a provider saw for one metric.

    `value` None with no `error` means the source answered with nothing (NoData). `samples` and
    `stable_samples` are the two versions' series over the window, filled only for
    `compareWithStable`. `note` is a human explanation the provider adds (e.g. which health check
    is down); it ends up in the measurement's message.
    """

    value: float | None = None
    stable_value: float | None = None
    samples: tuple[float, ...] = ()
    stable_samples: tuple[float, ...] = ()
    error: str | None = None
    note: str = ""


class Provider(Protocol):
    def measure(self, metric: Metric, ctx: MeasureContext) -> Sample:
        """Measure `metric` for `ctx.version`; report unreachable sources as `Sample(error=...)`."""
        ...


PROVIDER_FIELDS = ("prometheus", "cloudwatch", "http")


def provider_key(metric: Metric) -> str | None:
    """The spec field that is set, which is the registry key of the metric's provider.

    >>> from controller.api.release import HttpCheck
    >>> provider_key(Metric(name="health", http=HttpCheck(url="http://x/health")))
    'http'
    """
    return next((name for name in PROVIDER_FIELDS if getattr(metric, name) is not None), None)


def to_measurement(metric: Metric, sample: Sample, now: datetime, has_stable: bool = True) -> Measurement:
    """Judge one sample: provider error -> Inconclusive without a value; no value -> NoData;
    otherwise the bounds (`assess`) and, for `compareWithStable`, the Mann-Whitney comparison.
    A failure of either makes the measurement Failed; a comparison short of points makes it
    Inconclusive (with its value, so it is not mistaken for a provider error). Without a stable
    version (`has_stable` False: the first release) there is nothing to compare with, and only the
    bounds count."""
    if sample.error is not None:
        return Measurement(
            metric=metric.name, verdict=Verdict.INCONCLUSIVE, message=f"provider error: {sample.error}", time=now
        )
    verdict, message = assess(metric, sample.value, sample.stable_value)
    if verdict != Verdict.NO_DATA and metric.compare_with_stable and has_stable:
        compared, why = compare(metric, sample.samples, sample.stable_samples)
        if verdict == Verdict.FAILED:
            pass  # the bound already failed; the comparison adds nothing a user needs first
        elif compared == Verdict.FAILED or compared == Verdict.INCONCLUSIVE:
            verdict, message = compared, why
        else:
            message = f"{message}; {why}"
    if sample.note:
        message = f"{message}: {sample.note}"
    return Measurement(
        metric=metric.name,
        value=sample.value,
        stable_value=sample.stable_value,
        verdict=verdict,
        message=message,
        time=now,
    )


def measure_all(
    metrics: Sequence[Metric], ctx: MeasureContext, providers: Mapping[str, Provider]
) -> tuple[Measurement, ...]:
    """Measure every metric with the provider its spec field selects, one measurement each.

    A provider that raises, or a metric whose provider is not registered, yields a provider-error
    measurement rather than an exception: one broken metric source must not stop the others from
    being measured, nor the reconcile from finishing.
    """
    out: list[Measurement] = []
    for metric in metrics:
        key = provider_key(metric)
        provider = providers.get(key) if key else None
        if provider is None:
            sample = Sample(error=f"no provider registered for {key or 'a metric without a source'}")
        else:
            try:
                sample = provider.measure(metric, ctx)
            except Exception as exc:  # noqa: BLE001 - any provider bug becomes a counted error
                sample = Sample(error=f"{type(exc).__name__}: {exc}")
        out.append(to_measurement(metric, sample, ctx.now, has_stable=bool(ctx.stable_version)))
    return tuple(out)


def build_providers(http_client: Any, cloudwatch_client: Any | None = None) -> dict[str, Provider]:
    """The registry of the three providers: `http_client` is an `httpx.Client` (Prometheus and
    HTTP checks share it), `cloudwatch_client` a boto3 CloudWatch client (without one, CloudWatch
    metrics report a provider error)."""
    # Imported here, not at the top: the providers import this module for Sample and MeasureContext.
    from controller.analysis.cloudwatch import CloudWatchProvider
    from controller.analysis.http import HttpProvider
    from controller.analysis.prometheus import PrometheusProvider

    providers: dict[str, Provider] = {
        "prometheus": PrometheusProvider(http_client),
        "http": HttpProvider(http_client),
    }
    if cloudwatch_client is not None:
        providers["cloudwatch"] = CloudWatchProvider(cloudwatch_client)
    return providers
