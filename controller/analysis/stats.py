"""The Mann-Whitney U test the stable comparison uses (`compareWithStable`), in pure Python. PURE.

Kept in pure Python so that the analysis layer needs no numerical library; its doctests check it
against scipy's documented examples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

EXACT_LIMIT = 20
"""Exact Mann-Whitney distribution (no ties) up to this many points in total; normal above."""

Alternative = Literal["greater", "less", "two-sided"]
Method = Literal["auto", "exact", "asymptotic"]


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Mid-ranks (1-based; ties share the mean rank) and the sizes of the tie groups."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mid = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = mid
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def _exact_upper_tail(u: float, n: int, m: int) -> float:
    """P(U >= u) under H0 without ties: count the rank sets of size n with U >= u.

    Uses the classic recurrence on f(n, m, u), the number of arrangements with statistic u:
    f(n, m, u) = f(n-1, m, u-m) + f(n, m-1, u), the largest value being either from x or from y.
    """
    # counts[j][k]: number of arrangements of (i x's, j y's) with U == k, built row by row in i.
    prev = [[1] + [0] * (n * m) for _ in range(m + 1)]  # i == 0: only U == 0
    for i in range(1, n + 1):
        cur = [[0] * (n * m + 1) for _ in range(m + 1)]
        cur[0][0] = 1
        for j in range(1, m + 1):
            for k in range(n * m + 1):
                # largest element is an x: it beats all j y's
                a = prev[j][k - j] if k >= j else 0
                # largest element is a y: it adds nothing to U
                cur[j][k] = a + cur[j - 1][k]
        prev = cur
    counts = prev[m]
    total = sum(counts)
    threshold = math.ceil(u - 1e-9)
    return sum(counts[threshold:]) / total


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def mann_whitney_u(
    canary: Sequence[float],
    stable: Sequence[float],
    alternative: Alternative = "greater",
    method: Method = "auto",
) -> tuple[float, float]:
    """Mann-Whitney U of `canary` against `stable` and its p-value, in pure Python.

    U counts the (canary, stable) pairs in which the canary value is larger, a tie counting one
    half. `alternative="greater"` (the default) asks whether the canary tends to be larger. With
    `method="auto"`, without ties and with at most 20 points in all the p-value is exact; otherwise
    it is the normal approximation with tie correction and continuity correction (as scipy's
    `mannwhitneyu`). "exact" is refused with ties (the distribution would be a different one).

    scipy's documented example (its two-sided exact p is 0.1111, so one-sided is half):

    >>> u, p = mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12])
    >>> u, round(p, 4)
    (17.0, 0.0556)
    >>> mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12], alternative="two-sided")[1]
    0.1111111111111111
    >>> round(mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12], "two-sided", "asymptotic")[1], 6)
    0.111347

    Normal approximation with ties: 12 points each, canary shifted up by one step.

    >>> u, p = mann_whitney_u([2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 7], [1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6])
    >>> u, round(p, 4)
    (98.5, 0.0631)
    """
    n, m = len(canary), len(stable)
    if n == 0 or m == 0:
        raise ValueError("Mann-Whitney U needs at least one value on each side")
    ranks, ties = _ranks([*canary, *stable])
    u = sum(ranks[:n]) - n * (n + 1) / 2
    mean = n * m / 2
    if alternative == "less":
        u_tail = n * m - u  # P(U <= u) == P(U' >= nm - u) by symmetry
    elif alternative == "greater":
        u_tail = u
    else:
        u_tail = max(u, n * m - u)

    no_ties = all(t == 1 for t in ties)
    if method == "exact" and not no_ties:
        raise ValueError("the exact Mann-Whitney distribution assumes no ties")
    if method == "exact" or (method == "auto" and no_ties and n + m <= EXACT_LIMIT):
        p = _exact_upper_tail(u_tail, n, m)
    else:
        total = n + m
        tie_term = sum(t**3 - t for t in ties) / (total * (total - 1))
        sigma = math.sqrt(n * m / 12 * ((total + 1) - tie_term))
        if sigma == 0:  # every value equal: no evidence either way
            return u, 1.0
        z = (u_tail - mean - 0.5) / sigma
        p = _normal_sf(z)
    if alternative == "two-sided":
        p = min(1.0, 2 * p)
    return u, p
