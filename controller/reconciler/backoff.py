"""When to look at a Release again: the one place that turns what a pass amounted to into its
requeue-after (as controller-runtime's `reconcileHandler` turns a `Result` or an error into the
queue's rate-limited retries), for every Release alike.

A pass asks for a time (`Decision.requeue_after`: the planner's timers, a refusal's recheck, a
pending notification's recheck). What went wrong on the way adds a retry: AWS refusing or not
answering backs off exponentially (capped at `UNREACHABLE_POLL` while AWS does not answer, so the
rollout goes on soon after it answers again), a Git write-back that failed is tried again soon, a
spec that changed twice within one pass is decided again at once, a pass that raised is retried.

Must not: read the clock or any state (`failures` is counted by the reconciler), nor decide what
a pass does.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_BACKOFF_SECONDS = 60.0
"""The longest wait after passes that AWS refused in a row (2, 4, 8, ... seconds up to this): a persistent
AWS error is retried every minute."""
UNREACHABLE_POLL = 5.0
"""The back-off's cap while AWS does not answer: the rollout goes on soon after it answers again."""
WRITE_BACK_RETRY = 15.0
"""A rollback that could not be written back to Git is tried again this soon."""
AFTER_SPEC_CHANGE = 0.5
"""A spec that changed twice within one pass is decided on the next pass, this soon."""
ERROR_RETRY = 10.0
"""A pass that raised (a bug, the API server down) is tried again this soon; its worker lives on."""


@dataclass(frozen=True)
class PassResult:
    """What a pass amounted to, as far as its next look is concerned."""

    requeue_after: float | None = None  # the time the pass asked for (None: none by time)
    blocked: bool = False  # AWS could not be read or changed (`Outcome.BLOCKED`)
    failures: int = 0  # passes in a row that were blocked or refused, this one included
    unreachable: bool = False  # ... because AWS does not answer
    write_back_failed: bool = False  # the rollback could not be written back to Git
    spec_changed: bool = False  # the spec changed again under a pass that was deciding a change
    error: bool = False  # the pass raised


def requeue_after(result: PassResult) -> float | None:
    """Seconds until the next pass; None: none by time (a change, or the resync, wakes it).

    >>> requeue_after(PassResult(blocked=True, failures=3)), requeue_after(PassResult(blocked=True, failures=9))
    (8.0, 60.0)
    >>> requeue_after(PassResult(blocked=True, failures=9, unreachable=True))
    5.0
    >>> requeue_after(PassResult(requeue_after=60.0, write_back_failed=True)), requeue_after(PassResult())
    (15.0, None)
    """
    if result.error:
        return ERROR_RETRY
    if result.spec_changed:
        return AFTER_SPEC_CHANGE
    if result.blocked:
        after = min(2.0**result.failures, MAX_BACKOFF_SECONDS)
        return min(after, UNREACHABLE_POLL) if result.unreachable else after
    waits = [w for w in (result.requeue_after, WRITE_BACK_RETRY if result.write_back_failed else None) if w is not None]
    return min(waits) if waits else None
