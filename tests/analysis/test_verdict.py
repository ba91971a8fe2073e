"""Verdict tables: runs of measurements in, the verdict a user would see in `status.analysis` out.

Each table row is one analysis run; the expected column is the verdict after that run. The
Mann-Whitney p-values are checked against a brute-force permutation test written here, not in the
module under test.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from itertools import combinations

import pytest

from controller.api.release import Analysis, AnalysisStatus, Measurement, Metric, Verdict
from controller.analysis.base import Sample
from controller.analysis.providers import to_measurement
from controller.analysis.stats import mann_whitney_u
from controller.analysis.verdict import KEEP_MEASUREMENTS, compare, evaluate, judge

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
ERROR_RATE = Metric(name="error-rate", max=0.05)
HEALTH = Metric(name="health", min=1.0)

# A run is a mapping metric name -> what the provider saw: a float, None (no data) or ERR.
ERR = "error"
Run = dict[str, float | str | None]


def measure(metric: Metric, seen: float | str | None, at: datetime) -> Measurement:
    if seen == ERR:
        sample = Sample(error="connection refused")
    else:
        assert not isinstance(seen, str)
        sample = Sample(value=seen)
    return to_measurement(metric, sample, at)


def play(analysis: Analysis, runs: Sequence[Run]) -> list[AnalysisStatus]:
    """Evaluate the runs one after another, one interval apart; every intermediate status."""
    metrics = {m.name: m for m in analysis.metrics}
    status: AnalysisStatus | None = None
    out = []
    for i, run in enumerate(runs):
        now = T0 + i * analysis.interval
        status = evaluate(status, [measure(metrics[name], seen, now) for name, seen in run.items()], analysis, now)
        out.append(status)
    return out


P, F, I, N = Verdict.PASSED, Verdict.FAILED, Verdict.INCONCLUSIVE, Verdict.NO_DATA

TABLES: dict[str, tuple[Analysis, list[Run], list[Verdict]]] = {
    "passes with minSamples good samples, not before": (
        Analysis(failure_limit=1, min_samples=3, metrics=[ERROR_RATE]),
        [{"error-rate": 0.01}, {"error-rate": 0.02}, {"error-rate": 0.0}, {"error-rate": 0.03}],
        [I, I, P, P],
    ),
    "failureLimit failures are tolerated, failureLimit + 1 fail": (
        Analysis(failure_limit=1, min_samples=2, metrics=[ERROR_RATE]),
        [{"error-rate": 0.01}, {"error-rate": 0.31}, {"error-rate": 0.01}, {"error-rate": 0.40}],
        [I, P, P, F],
    ),
    "failureLimit 0 fails on the first bad value": (
        Analysis(failure_limit=0, min_samples=3, metrics=[ERROR_RATE]),
        [{"error-rate": 0.31}],
        [F],
    ),
    "Failed stays Failed when values recover": (
        Analysis(failure_limit=0, min_samples=1, metrics=[ERROR_RATE]),
        [{"error-rate": 0.31}, {"error-rate": 0.01}, {"error-rate": 0.01}],
        [F, F, F],
    ),
    "too few samples is never Passed, however good": (
        Analysis(failure_limit=1, min_samples=5, metrics=[ERROR_RATE, HEALTH]),
        [{"error-rate": 0.0, "health": 1.0}] * 4,
        [I, I, I, I],
    ),
    "a provider that is down is Inconclusive, never Failed": (
        Analysis(failure_limit=0, min_samples=1, consecutive_error_limit=3, metrics=[ERROR_RATE]),
        [{"error-rate": ERR}] * 6,
        [I, I, I, I, I, I],
    ),
    "errors must be consecutive: a good run resets them": (
        Analysis(failure_limit=0, min_samples=1, consecutive_error_limit=2, metrics=[ERROR_RATE]),
        [{"error-rate": ERR}, {"error-rate": 0.01}, {"error-rate": ERR}, {"error-rate": 0.01}],
        [I, P, I, P],
    ),
    "no value at all is NoData": (
        Analysis(min_samples=1, metrics=[ERROR_RATE]),
        [{"error-rate": None}, {"error-rate": None}],
        [N, N],
    ),
    "a healthy endpoint cannot make up for an error rate without data": (
        Analysis(min_samples=2, metrics=[ERROR_RATE, HEALTH]),
        [{"error-rate": None, "health": 1.0}] * 3,
        [N, N, N],
    ),
    "data that stops after passing is no longer Passed": (
        Analysis(min_samples=2, metrics=[ERROR_RATE]),
        [{"error-rate": 0.01}, {"error-rate": 0.01}, {"error-rate": None}, {"error-rate": 0.01}],
        [I, P, I, P],
    ),
    "min bound: an unhealthy check fails": (
        Analysis(failure_limit=0, min_samples=1, metrics=[HEALTH]),
        [{"health": 1.0}, {"health": 0.0}],
        [P, F],
    ),
    "a bound itself is within bounds": (
        Analysis(failure_limit=0, min_samples=1, metrics=[Metric(name="p99", min=0.1, max=2.0)]),
        [{"p99": 2.0}, {"p99": 0.1}, {"p99": 2.0001}],
        [P, P, F],
    ),
    "one bad metric in a run is one failure, not one per metric": (
        Analysis(failure_limit=1, min_samples=1, metrics=[ERROR_RATE, HEALTH]),
        [{"error-rate": 0.5, "health": 0.0}, {"error-rate": 0.01, "health": 1.0}],
        [P, P],
    ),
}


@pytest.mark.parametrize("name", TABLES)
def test_verdict_table(name: str) -> None:
    analysis, runs, expected = TABLES[name]
    assert [s.verdict for s in play(analysis, runs)] == expected


def test_failed_message_names_metric_value_and_bound() -> None:
    analysis = Analysis(failure_limit=1, min_samples=2, metrics=[ERROR_RATE, HEALTH])
    final = play(analysis, [{"error-rate": 0.31, "health": 1.0}, {"error-rate": 0.42, "health": 1.0}])[-1]
    assert final.verdict == Verdict.FAILED
    assert final.failures == 2
    assert "error-rate 0.42 > max 0.05" in final.message
    assert "failureLimit 1" in final.message
    # A good run afterwards keeps the reason a user needs to read.
    later = evaluate(final, [measure(ERROR_RATE, 0.0, T0), measure(HEALTH, 1.0, T0)], analysis, T0)
    assert later.verdict == Verdict.FAILED and "error-rate 0.42 > max 0.05" in later.message


def test_provider_down_message_and_counts() -> None:
    analysis = Analysis(failure_limit=0, min_samples=1, consecutive_error_limit=3, metrics=[ERROR_RATE])
    statuses = play(analysis, [{"error-rate": ERR}] * 3)
    assert "provider down" not in statuses[1].message
    assert "provider error 2/3" in statuses[1].message
    assert statuses[2].message.startswith("provider down: error-rate: provider error: connection refused")
    assert (statuses[2].errors, statuses[2].failures, statuses[2].samples) == (3, 0, 0)


def test_provider_down_after_passing_pauses_rather_than_passes() -> None:
    analysis = Analysis(failure_limit=0, min_samples=2, consecutive_error_limit=2, metrics=[ERROR_RATE])
    statuses = play(analysis, [{"error-rate": 0.01}, {"error-rate": 0.01}, {"error-rate": ERR}, {"error-rate": ERR}])
    assert [s.verdict for s in statuses] == [I, P, I, I]
    assert "provider down" in statuses[-1].message


def test_failures_still_count_while_another_provider_errors() -> None:
    analysis = Analysis(failure_limit=0, min_samples=1, metrics=[ERROR_RATE, HEALTH])
    final = play(analysis, [{"error-rate": 0.9, "health": ERR}])[-1]
    assert final.verdict == Verdict.FAILED and final.errors == 1


def test_too_few_samples_message() -> None:
    analysis = Analysis(min_samples=3, metrics=[ERROR_RATE])
    assert play(analysis, [{"error-rate": 0.01}] * 2)[-1].message == "2 of 3 samples"


def test_status_keeps_the_latest_measurements_and_times() -> None:
    analysis = Analysis(min_samples=1, interval=timedelta(seconds=10), metrics=[ERROR_RATE, HEALTH])
    statuses = play(analysis, [{"error-rate": i / 1000, "health": 1.0} for i in range(100)])
    final = statuses[-1]
    assert KEEP_MEASUREMENTS <= 100  # the CRD's maxItems
    assert len(final.measurements) == KEEP_MEASUREMENTS
    assert final.measurements[-2].metric == "error-rate" and final.measurements[-2].value == 0.099
    assert final.started_at == T0
    assert final.last_run_at == T0 + 99 * timedelta(seconds=10)
    assert final.samples == 100
    # The status fits the CRD: it validates against the model's own limits.
    AnalysisStatus.model_validate(final.to_wire())


def test_a_pass_without_measurements_changes_nothing() -> None:
    analysis = Analysis(min_samples=1, metrics=[ERROR_RATE])
    status = play(analysis, [{"error-rate": 0.01}])[-1]
    assert evaluate(status, [], analysis, T0 + timedelta(hours=1)) == status
    assert evaluate(None, [], analysis, T0).verdict == Verdict.NO_DATA


def test_judge_bounds() -> None:
    assert judge(ERROR_RATE, 0.05) == Verdict.PASSED
    assert judge(ERROR_RATE, 0.0501) == Verdict.FAILED
    assert judge(HEALTH, 0.99) == Verdict.FAILED
    assert judge(HEALTH, float("nan")) == Verdict.NO_DATA
    assert judge(Metric(name="unbounded"), 1e9) == Verdict.PASSED


# --------------------------------------------------------------------------- Mann-Whitney


def brute_force(canary: Sequence[float], stable: Sequence[float]) -> tuple[float, float]:
    """U by counting pairs, and the exact one-sided ("canary greater") permutation p-value: the
    share of all ways to relabel the pooled values whose U is at least the observed one."""

    def u_of(xs: Sequence[float], ys: Sequence[float]) -> float:
        return sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in xs for y in ys)

    observed = u_of(canary, stable)
    pooled = [*canary, *stable]
    hits = total = 0
    for chosen in combinations(range(len(pooled)), len(canary)):
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        hits += u_of([pooled[i] for i in chosen], rest) >= observed - 1e-9
        total += 1
    return observed, hits / total


@pytest.mark.parametrize("seed", range(8))
def test_exact_p_value_matches_permutation_without_ties(seed: int) -> None:
    rng = random.Random(seed)
    n, m = rng.randint(3, 7), rng.randint(3, 7)
    canary = [rng.gauss(1.0, 1.0) for _ in range(n)]
    stable = [rng.gauss(0.0, 1.0) for _ in range(m)]
    u, p = mann_whitney_u(canary, stable)
    expected_u, expected_p = brute_force(canary, stable)
    assert u == expected_u
    assert p == pytest.approx(expected_p, abs=1e-12)


def test_known_example_from_scipy_docs() -> None:
    # scipy.stats.mannwhitneyu's documented example: U=17, two-sided exact p = 0.1111.
    u, p = mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12], alternative="two-sided")
    assert (u, round(p, 4)) == (17.0, 0.1111)
    assert brute_force([19, 22, 16, 29, 24], [20, 11, 17, 12])[1] == pytest.approx(7 / 126)
    # Its asymptotic p (normal approximation with continuity correction), printed in the same docs.
    _, p = mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12], "two-sided", "asymptotic")
    assert p == pytest.approx(0.11134688653314041, rel=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_normal_approximation_with_ties_is_close_to_permutation(seed: int) -> None:
    rng = random.Random(100 + seed)
    # Coarse values, so ties are many: the tie correction matters here.
    canary = [float(rng.randint(2, 7)) for _ in range(8)]
    stable = [float(rng.randint(0, 5)) for _ in range(8)]
    u, p = mann_whitney_u(canary, stable)
    expected_u, expected_p = brute_force(canary, stable)
    assert u == expected_u
    assert p == pytest.approx(expected_p, abs=0.02)


def test_less_is_greater_mirrored() -> None:
    canary, stable = [0.1, 0.4, 0.2, 0.3, 0.25], [0.5, 0.45, 0.6, 0.35]
    assert mann_whitney_u(canary, stable, "less")[1] == pytest.approx(mann_whitney_u(stable, canary, "greater")[1])


def test_all_equal_is_no_evidence() -> None:
    assert mann_whitney_u([1.0] * 30, [1.0] * 30)[1] == 1.0


LATENCY = Metric(name="latency", max=2.0, compare_with_stable=True)
THROUGHPUT = Metric(name="throughput", min=10.0, compare_with_stable=True)
SLOW = [0.30, 0.32, 0.35, 0.31, 0.33, 0.36]
FAST = [0.10, 0.12, 0.11, 0.09, 0.13, 0.14]


def test_compare_with_stable_fails_a_significantly_worse_canary_within_its_bound() -> None:
    measurement = to_measurement(LATENCY, Sample(value=0.33, stable_value=0.12, samples=tuple(SLOW),
                                                 stable_samples=tuple(FAST)), T0)
    assert measurement.verdict == Verdict.FAILED  # 0.33 is under max 2.0: only the comparison fails it
    assert "canary worse than stable" in measurement.message


def test_compare_with_stable_passes_a_better_or_equal_canary() -> None:
    assert compare(LATENCY, FAST, SLOW)[0] == Verdict.PASSED
    rng = random.Random(3)
    same = [0.2 + rng.uniform(-0.01, 0.01) for _ in range(20)]
    other = [0.2 + rng.uniform(-0.01, 0.01) for _ in range(20)]
    assert compare(LATENCY, same, other)[0] == Verdict.PASSED


def test_compare_direction_follows_the_bound() -> None:
    # throughput has a min: lower is worse, higher is fine.
    assert compare(THROUGHPUT, [50, 51, 52, 53, 54], [80, 81, 82, 83, 84])[0] == Verdict.FAILED
    assert compare(THROUGHPUT, [80, 81, 82, 83, 84], [50, 51, 52, 53, 54])[0] == Verdict.PASSED


def test_compare_with_too_few_points_is_inconclusive_and_not_a_sample() -> None:
    analysis = Analysis(min_samples=1, metrics=[LATENCY])
    m = to_measurement(LATENCY, Sample(value=0.3, stable_value=0.1, samples=(0.3,), stable_samples=(0.1,)), T0)
    assert m.verdict == Verdict.INCONCLUSIVE and m.value == 0.3
    status = evaluate(None, [m], analysis, T0)
    assert status.verdict == Verdict.INCONCLUSIVE and status.errors == 0 and status.samples == 0


def test_compare_without_a_stable_version_judges_bounds_only() -> None:
    m = to_measurement(LATENCY, Sample(value=0.3), T0, has_stable=False)
    assert m.verdict == Verdict.PASSED
