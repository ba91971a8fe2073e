"""Judging what the providers measured: `to_measurement` and `measure_all`.

`measure_all` asks the provider chosen by the spec field that is set (`prometheus`, `cloudwatch` or
`http`, see `base.provider_key`) and judges each sample with `verdict.assess` / `compare`. The
interface the providers implement is in `base.py`; `registry.build_providers` builds them.

This module imports no network library and no provider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from controller.api.release import Measurement, MeasurementError, Metric, Verdict
from controller.analysis.base import MeasureContext, Provider, Sample, provider_key
from controller.analysis.verdict import assess, compare


def to_measurement(metric: Metric, sample: Sample, now: datetime, has_stable: bool = True) -> Measurement:
    """Judge one sample: a provider or query error, or too little traffic -> Inconclusive without a
    value (`error` says which); a probe of the canary that did not answer -> NoData (NoAnswer); no value -> NoData;
    otherwise the bounds (`assess`) and, for `compareWithStable`, the Mann-Whitney comparison.
    A failure of either makes the measurement Failed; a comparison short of points makes it
    Inconclusive (with its value, so it is not mistaken for a provider error). Without a stable
    version (`has_stable` False: the first release) there is nothing to compare with, and only the
    bounds count."""
    dry = True if metric.dry_run else None
    if sample.error is not None:
        kind = sample.error_kind
        if kind == MeasurementError.NO_ANSWER:
            return Measurement(metric=metric.name, verdict=Verdict.NO_DATA, message=f"{metric.name}: {sample.error}",
                               time=now, error=kind, dry_run=dry)
        prefix = {
            MeasurementError.PROVIDER: "provider error",
            MeasurementError.QUERY: "query error (fix the metric's query in the spec)",
            MeasurementError.LOW_TRAFFIC: "not judged",
        }[kind]
        return Measurement(metric=metric.name, verdict=Verdict.INCONCLUSIVE, message=f"{prefix}: {sample.error}",
                           time=now, error=kind, dry_run=dry)
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
        dry_run=dry,
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
                # Its kind only: an exception's text may quote what the remote end answered.
                sample = Sample(error=f"the provider failed ({type(exc).__name__})")
        out.append(to_measurement(metric, sample, ctx.now, has_stable=bool(ctx.stable_version)))
    return tuple(out)
