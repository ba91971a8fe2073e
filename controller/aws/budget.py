"""A pass's time with AWS is bounded: botocore's retries of a throttled or slow AWS stop early.

With 8 attempts in adaptive mode and botocore's back-off, one call AWS keeps throttling took tens of
seconds and a pass of several calls 106 s, holding a worker thread with nothing said. The
reconciler runs each pass in `scope()`; two botocore handlers, registered on every client
(controller/aws/clients.py), end it early:

- `needs-retry` notes when a call of the pass was first throttled;
- `before-send` (each attempt, retries included) raises `Throttled` once the pass has been
  throttled for `THROTTLED_FOR` seconds, and `PassTooLong` once the pass has run for `limit`
  seconds (the read timeout: with the call in flight, a pass holds its worker for at most about
  twice the read timeout).

Both are botocore errors: the observer and the effectors classify them like any other failure
(`Throttled`: reason Throttled; `PassTooLong`: AwsUnreachable, whose timers are held), the pass says
so in its conditions and the next pass comes after the reconciler's capped back-off. Outside a pass
(the resync round's batched reads, notifications) nothing is cut short.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError

THROTTLED_FOR = 3.0
"""Seconds a pass keeps retrying calls AWS throttles before it gives up and says Throttled."""
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "SlowDown",
})


class Throttled(BotoCoreError):
    fmt = "AWS throttled this pass's requests for {seconds:.0f}s ({code}); the next pass tries again"


class PassTooLong(BotoCoreError):
    fmt = "AWS took {seconds:.0f}s to answer this pass's requests; the next pass tries again"


@dataclass
class _Pass:
    started: float
    limit: float
    throttled_since: float | None = None
    code: str = ""


_PASS: contextvars.ContextVar[_Pass | None] = contextvars.ContextVar("aws_pass", default=None)


@contextmanager
def scope(limit: float) -> Iterator[None]:
    """One pass: its AWS calls, retries included, end within about `limit` seconds."""
    token = _PASS.set(_Pass(time.monotonic(), limit))
    try:
        yield
    finally:
        _PASS.reset(token)


def before_send(**_: Any) -> None:
    state = _PASS.get()
    if state is None:
        return
    now = time.monotonic()
    if state.throttled_since is not None and now - state.throttled_since >= THROTTLED_FOR:
        raise Throttled(seconds=now - state.throttled_since, code=state.code)
    if now - state.started >= state.limit:
        raise PassTooLong(seconds=now - state.started)


def needs_retry(response: Any = None, **_: Any) -> None:
    state = _PASS.get()
    if state is None or not response:
        return
    parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else None
    code = str(((parsed or {}).get("Error") or {}).get("Code") or "")
    if code in THROTTLING_CODES and state.throttled_since is None:
        state.throttled_since, state.code = time.monotonic(), code
