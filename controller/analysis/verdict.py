"""The analysis verdict: measurements in, Passed / Failed / Inconclusive / NoData out. PURE.

This module judges numbers; it never fetches them. It imports only the standard library and
`controller.api` (an import-linter contract forbids boto3, httpx, kopf, asyncio and kubernetes
here), and it never reads the clock: `now` is a parameter. Providers (`base.py` and its
neighbours) turn a metric spec into numbers; the planner turns the verdict into traffic changes.

Vocabulary
----------
* A *measurement* is one metric measured once. Its verdict says what that one number means:
  Passed / Failed (judged against the metric's `max` / `min`, and against the stable version when
  `compareWithStable`), NoData (the provider answered, with nothing), or Inconclusive. An
  Inconclusive measurement *without a value* is a provider error (it could not be asked); one *with*
  a value was measured but could not be judged (too few points for the stable comparison).
* A *run* is one call of `evaluate`: the measurements of every metric taken in one analysis pass.
* A run is a *sample* when every configured metric was judged (Passed or Failed). A run in which a
  metric had no data or its provider failed is not a sample: thin data never adds up to a Passed.
* A run is a *failure* when at least one metric was Failed. Failures accumulate across runs and the
  analysis is Failed once they exceed `failureLimit` (Argo Rollouts' semantics: `failureLimit`
  failures are tolerated). Counting runs rather than metric values keeps one bad pass of three
  metrics from counting three times.
* A run is an *error* when a provider failed. Errors count apart from failures and only while they
  are consecutive: at `consecutiveErrorLimit` the verdict is Inconclusive "provider down", never
  Failed, because a monitoring outage says nothing about the canary. Below the limit the verdict is
  plain Inconclusive (wait and measure again), so a blip delays a step by one interval, no more.

The overall verdict, first match wins:

1. Failed        failures > failureLimit
2. Inconclusive  consecutive errors >= consecutiveErrorLimit ("provider down")
3. Passed        samples >= minSamples and this run is a sample (never promote on stale evidence)
4. NoData        nothing judged at all yet and this run had a metric without data
5. Inconclusive  otherwise (fewer samples than minSamples, no data or a provider error this run)

Worked example (failureLimit 1, minSamples 3, one metric `error-rate` with `max: 0.05`)::

    run  value   measurement  samples failures  verdict
    1    0.01    Passed       1       0         Inconclusive  (1 of 3 samples)
    2    0.02    Passed       2       0         Inconclusive  (2 of 3 samples)
    3    0.09    Failed       3       1         Passed        (1 failure tolerated)
    4    0.12    Failed       4       2         Failed        error-rate 0.12 > max 0.05
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from controller.analysis.stats import Alternative, mann_whitney_u
from controller.api.release import (
    Analysis,
    AnalysisStatus,
    Measurement,
    MeasurementError,
    Metric,
    Verdict,
)

KEEP_MEASUREMENTS = 60
"""How many measurements `status.analysis.measurements` keeps (the CRD allows at most 100)."""

SIGNIFICANCE = 0.05
"""One-sided p-value below which the canary counts as significantly worse than the stable."""

MIN_COMPARISON_POINTS = 3
"""Fewer points than this on either side and the stable comparison is Inconclusive: with 3 and 3
the smallest possible exact one-sided p-value is 1/20 = 0.05, so no verdict could be reached."""



# --------------------------------------------------------------------------- one measurement


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def assess(metric: Metric, value: float | None, stable_value: float | None = None) -> tuple[Verdict, str]:
    """Judge one value against the metric's bounds; return the verdict and a message saying why.

    `stable_value` is only reported; the stable comparison uses whole sample lists (`compare`).

    >>> from controller.api.release import Metric
    >>> m = Metric(name="error-rate", max=0.05)
    >>> assess(m, 0.31)
    (<Verdict.FAILED: 'Failed'>, 'error-rate 0.31 > max 0.05')
    >>> assess(m, 0.01, 0.02)
    (<Verdict.PASSED: 'Passed'>, 'error-rate 0.01 within bounds (max 0.05; stable 0.02)')
    >>> assess(Metric(name="health", min=1), 0.0)[1]
    'health 0 < min 1'
    >>> assess(m, None)
    (<Verdict.NO_DATA: 'NoData'>, 'error-rate: no data')
    """
    if value is None or math.isnan(value):
        return Verdict.NO_DATA, f"{metric.name}: no data"
    if metric.max is not None and value > metric.max:
        return Verdict.FAILED, f"{metric.name} {_fmt(value)} > max {_fmt(metric.max)}"
    if metric.min is not None and value < metric.min:
        return Verdict.FAILED, f"{metric.name} {_fmt(value)} < min {_fmt(metric.min)}"
    bounds = [f"{name} {_fmt(bound)}" for name, bound in (("min", metric.min), ("max", metric.max)) if bound is not None]
    if stable_value is not None and not math.isnan(stable_value):
        bounds.append(f"stable {_fmt(stable_value)}")
    detail = f" ({'; '.join(bounds)})" if bounds else ""
    return Verdict.PASSED, f"{metric.name} {_fmt(value)} within bounds{detail}"


def judge(metric: Metric, value: float | None, stable_value: float | None = None) -> Verdict:
    """The verdict of one value: NoData without a value, Failed outside `min`/`max`, else Passed.

    >>> from controller.api.release import Metric
    >>> judge(Metric(name="p99", max=2.0), 2.0)      # the bound itself is allowed
    <Verdict.PASSED: 'Passed'>
    >>> judge(Metric(name="p99", max=2.0), 2.5)
    <Verdict.FAILED: 'Failed'>
    >>> judge(Metric(name="health", min=1.0), 0.0)
    <Verdict.FAILED: 'Failed'>
    >>> judge(Metric(name="p99", max=2.0), None)
    <Verdict.NO_DATA: 'NoData'>
    """
    return assess(metric, value, stable_value)[0]


def worse_direction(metric: Metric) -> Alternative:
    """Which way is worse for this metric, read from its bounds: a `max` means higher is worse
    (error rates, latency), a `min` alone means lower is worse (health, throughput). Without bounds
    higher is worse, the common case for the metrics a canary is compared on."""
    if metric.max is None and metric.min is not None:
        return "less"
    return "greater"


def compare(metric: Metric, canary: Sequence[float], stable: Sequence[float]) -> tuple[Verdict, str]:
    """Kayenta-style canary-vs-stable judgement with a one-sided Mann-Whitney U test.

    Failed when the canary is significantly worse (p < 0.05) in the direction the metric's bound
    guards (`worse_direction`); Inconclusive with fewer than 3 points on either side; else Passed.

    >>> from controller.api.release import Metric
    >>> m = Metric(name="latency", max=2.0, compare_with_stable=True)
    >>> compare(m, [0.30, 0.32, 0.35, 0.31, 0.33], [0.10, 0.12, 0.11, 0.09, 0.13])
    (<Verdict.FAILED: 'Failed'>, 'latency canary worse than stable (Mann-Whitney U=25, one-sided p=0.00397 < 0.05)')
    >>> compare(m, [0.10, 0.12, 0.11, 0.09, 0.13], [0.30, 0.32, 0.35, 0.31, 0.33])[0]
    <Verdict.PASSED: 'Passed'>
    >>> compare(m, [0.3], [0.1, 0.1, 0.1])[0]
    <Verdict.INCONCLUSIVE: 'Inconclusive'>
    """
    canary = [x for x in canary if not math.isnan(x)]
    stable = [x for x in stable if not math.isnan(x)]
    if len(canary) < MIN_COMPARISON_POINTS or len(stable) < MIN_COMPARISON_POINTS:
        return (
            Verdict.INCONCLUSIVE,
            f"{metric.name}: too few points to compare with stable ({len(canary)} canary, {len(stable)} stable;"
            f" need {MIN_COMPARISON_POINTS} each)",
        )
    direction = worse_direction(metric)
    u, p = mann_whitney_u(canary, stable, alternative=direction)
    test = f"Mann-Whitney U={_fmt(u)}, one-sided p={p:.3g}"
    if p < SIGNIFICANCE:
        return Verdict.FAILED, f"{metric.name} canary worse than stable ({test} < {SIGNIFICANCE:g})"
    return Verdict.PASSED, f"{metric.name} canary not worse than stable ({test})"


# --------------------------------------------------------------------------- a run of measurements


def is_error(measurement: Measurement) -> bool:
    """A provider error: Inconclusive, no value, and the source's fault (not the query's, not too
    little traffic). See the module docstring."""
    if measurement.error is not None:
        return measurement.error == MeasurementError.PROVIDER
    return measurement.verdict == Verdict.INCONCLUSIVE and measurement.value is None


def is_unanswered(measurement: Measurement, serving: bool, running: bool = True) -> bool:
    """No answer about the canary: a probe of it that did not answer while it runs, or no data
    while it serves (a probe of a canary whose tasks are not up yet, or no data about a canary
    without traffic, is nobody's fault)."""
    if measurement.verdict != Verdict.NO_DATA:
        return False
    return running if measurement.error == MeasurementError.NO_ANSWER else serving


def evaluate(
    previous: AnalysisStatus | None,
    measurements: Sequence[Measurement],
    analysis: Analysis,
    now: datetime,
    serving: bool = True,
    running: bool = True,
) -> AnalysisStatus:
    """Fold one run of measurements into the analysis status and decide the verdict.

    `previous` is the status of the same analysis (None when it starts: the caller passes None
    for a new rollout or step so that failures of an earlier version are not carried over). An empty
    `measurements` means no run happened this pass: the status is returned unchanged. An analysis
    without metrics is Passed: the user asked for no health gate. `serving`: the canary receives
    traffic (as AWS reports the weights), so no data about it is the canary's fault, counted per
    metric towards its `noDataLimit` and then as a failed measurement; `running`: its tasks are up
    and steady, so a probe of it that does not answer is counted the same way. A query error fails the
    analysis at once (the spec is wrong; waiting will not fix it). `dryRun` metrics are kept and
    shown but never decide.

    >>> from datetime import datetime, timezone
    >>> from controller.api.release import Analysis, Measurement, Metric, Verdict
    >>> t = datetime(2025, 1, 1, tzinfo=timezone.utc)
    >>> a = Analysis(failure_limit=0, min_samples=1, metrics=[Metric(name="error-rate", max=0.05)])
    >>> ok = Measurement(metric="error-rate", value=0.01, verdict=Verdict.PASSED, time=t)
    >>> evaluate(None, [ok], a, t).verdict
    <Verdict.PASSED: 'Passed'>
    >>> bad = Measurement(metric="error-rate", value=0.3, verdict=Verdict.FAILED,
    ...                   message="error-rate 0.3 > max 0.05", time=t)
    >>> s = evaluate(None, [bad], a, t)
    >>> s.verdict, s.message
    (<Verdict.FAILED: 'Failed'>, 'error-rate 0.3 > max 0.05 (1 failed run, failureLimit 0)')

    No data while the canary serves: tolerated `noDataLimit` times, then a failed measurement.

    >>> a = Analysis(failure_limit=0, min_samples=1, metrics=[Metric(name="error-rate", max=0.05, no_data_limit=1)])
    >>> none = Measurement(metric="error-rate", verdict=Verdict.NO_DATA, message="error-rate: no data", time=t)
    >>> s = evaluate(None, [none], a, t)
    >>> s.verdict, s.unanswered
    (<Verdict.NO_DATA: 'NoData'>, {'error-rate': 1})
    >>> s = evaluate(s, [none], a, t)
    >>> s.verdict, s.message
    (<Verdict.FAILED: 'Failed'>, 'error-rate: no data for 2 consecutive measurements while the canary receives traffic (noDataLimit 1) (1 failed run, failureLimit 0)')
    >>> evaluate(None, [none], a, t, serving=False).unanswered   # a preview without traffic: not its fault
    {}
    """
    if not analysis.metrics:
        base = previous or AnalysisStatus(started_at=now)
        return base.model_copy(
            update={"verdict": Verdict.PASSED, "message": "no metrics configured: nothing to judge", "last_run_at": now}
        )
    if not measurements:
        return previous or AnalysisStatus(verdict=Verdict.NO_DATA, message="not measured yet", started_at=now)

    prev = previous or AnalysisStatus(started_at=now)
    kept = [*prev.measurements, *measurements][-KEEP_MEASUREMENTS:]
    deciding = [metric for metric in analysis.metrics if not metric.dry_run]
    if not deciding:
        return prev.model_copy(update={
            "verdict": Verdict.PASSED, "message": "only dryRun metrics: measured, never deciding",
            "last_run_at": now, "measurements": kept, "started_at": prev.started_at or now})
    names = [metric.name for metric in deciding]
    limits = {metric.name: metric.no_data_limit for metric in deciding}
    by_metric = {m.metric: m for m in measurements if m.metric in limits}
    run = list(by_metric.values())
    missing = [name for name in names if name not in by_metric]

    unanswered = dict(prev.unanswered)
    over: list[str] = []
    for m in run:
        if is_unanswered(m, serving, running):
            unanswered[m.metric] = count = unanswered.get(m.metric, 0) + 1
            if count > limits[m.metric]:
                what = (f"the canary did not answer {count} consecutive probes" if m.error == MeasurementError.NO_ANSWER
                        else f"no data for {count} consecutive measurements while the canary receives traffic")
                over.append(f"{m.metric}: {what} (noDataLimit {limits[m.metric]})")
        elif m.verdict in (Verdict.PASSED, Verdict.FAILED) or m.value is not None:
            unanswered.pop(m.metric, None)

    invalid = [m for m in run if m.error == MeasurementError.QUERY]
    failed = [m for m in run if m.verdict == Verdict.FAILED]
    errored = [m for m in run if is_error(m)]
    no_data = [m for m in run if m.verdict == Verdict.NO_DATA]
    low = [m for m in run if m.error == MeasurementError.LOW_TRAFFIC]
    unjudged = [m for m in run if m.verdict == Verdict.INCONCLUSIVE and m.value is not None]
    is_sample = not missing and all(by_metric[n].verdict in (Verdict.PASSED, Verdict.FAILED) for n in names)

    failures = prev.failures + (1 if failed or over else 0)
    errors = prev.errors + 1 if errored else 0
    samples = prev.samples + (1 if is_sample else 0)

    verdict: Verdict
    if invalid:
        verdict = Verdict.FAILED
        message = "; ".join(f"metric {m.metric}: {m.message}" for m in invalid)
    elif failures > analysis.failure_limit:
        verdict = Verdict.FAILED
        if failed or over:
            reasons = "; ".join([*(m.message or f"{m.metric} failed" for m in failed), *over])
            runs = "run" if failures == 1 else "runs"
            message = f"{reasons} ({failures} failed {runs}, failureLimit {analysis.failure_limit})"
        else:  # Failed earlier and stays Failed: keep naming what failed then
            message = prev.message
    elif errors >= analysis.consecutive_error_limit:
        verdict = Verdict.INCONCLUSIVE
        reasons = "; ".join(f"{m.metric}: {m.message}" for m in errored)
        message = f"provider down: {reasons} ({errors} consecutive errors)"
    elif samples >= analysis.min_samples and is_sample:
        verdict = Verdict.PASSED
        tolerated = f", {failures} failed run(s) tolerated (failureLimit {analysis.failure_limit})" if failures else ""
        message = f"{samples} samples (minSamples {analysis.min_samples}){tolerated}"
        if failed:
            message = f"{message}; latest: " + "; ".join(m.message for m in failed)
    elif samples == 0 and failures == 0 and not errored and not low and (no_data or missing):
        verdict = Verdict.NO_DATA
        message = "no data: " + ", ".join([*(m.metric for m in no_data), *missing])
    else:
        verdict = Verdict.INCONCLUSIVE
        why: list[str] = [
            f"{samples} of {analysis.min_samples} samples"
            if samples < analysis.min_samples
            else f"{samples} samples, but not every metric was judged this run"
        ]
        if errored:
            why.append(
                f"provider error {errors}/{analysis.consecutive_error_limit}: "
                + "; ".join(f"{m.metric}: {m.message}" for m in errored)
            )
        if no_data or missing:
            why.append("no data: " + ", ".join([*(m.metric for m in no_data), *missing]))
        if low:
            why.append("; ".join(f"{m.metric}: {m.message}" for m in low))
        if unjudged:
            why.append("; ".join(m.message for m in unjudged))
        if failed or over:
            why.append(
                "; ".join([*(m.message for m in failed), *over])
                + f" ({failures} of {analysis.failure_limit} failures tolerated)"
            )
        message = "; ".join(why)

    return AnalysisStatus(
        verdict=verdict,
        message=message,
        started_at=prev.started_at or now,
        last_run_at=now,
        failures=failures,
        errors=errors,
        samples=samples,
        unanswered=unanswered,
        last_sample_at=now if is_sample else prev.last_sample_at,
        held_since=None if is_sample else (prev.held_since or now),
        unjudged=0 if is_sample else prev.unjudged + 1,
        measurements=kept,
    )
