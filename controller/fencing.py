"""The fence every write passes: AWS changes and status writes happen only while this process leads.

`controller.operator.leadership.Leadership` holds a Lease and implements `Fence`; this module is the
part every layer may import (no Kubernetes client, no kopf, no botocore): the `NotLeading` error,
the `Fence` protocol, the pass's leadership term in a context variable, and the botocore hook that
checks the fence right before each mutating AWS request is sent (`before-send`, so botocore's
retries are fenced too: a retry after a pause of the process is checked again).

A pass begins with `Fence.begin()`, which returns the term (a number that grows each time this
process starts leading) and raises `NotLeading` when it does not lead. Each write checks that same
term with `Fence.check(term)`: a pass that started before leadership was lost and taken again acted
on what the process remembered before the gap, and must not write.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol


class NotLeading(Exception):
    """This process does not hold the leadership (or no longer holds the term a pass began in)."""


class Fence(Protocol):
    def begin(self) -> int:
        """The current leadership term; raises NotLeading when this process does not lead."""
        ...

    def check(self, term: int | None = None) -> None:
        """Raise NotLeading unless this process leads now, in `term` when given, with its renewal
        deadline not passed."""
        ...


# The fence and term of the pass running in this context (a worker thread runs one pass at a time;
# controller/operator/runtime.py copies the context into the thread).
PASS_TERM: contextvars.ContextVar[tuple[Fence, int] | None] = contextvars.ContextVar("pass_term", default=None)


@contextmanager
def in_term(fence: Fence | None) -> Iterator[int | None]:
    """Run a pass in the current term: NotLeading at once when this process does not lead."""
    if fence is None:
        yield None
        return
    term = fence.begin()
    token = PASS_TERM.set((fence, term))
    try:
        yield term
    finally:
        PASS_TERM.reset(token)


def check(fence: Fence | None) -> None:
    """Before a write: the fence of the pass (its own term), else `fence` in any term."""
    held = PASS_TERM.get()
    if held is not None:
        held[0].check(held[1])
    elif fence is not None:
        fence.check()


READ_PREFIXES = ("Describe", "List", "Get", "Head")


def is_read(operation: str) -> bool:
    """AWS API operations that change nothing (the controller calls no other kind of read)."""
    return operation.startswith(READ_PREFIXES)


def aws_hook(fence: Fence) -> Callable[..., None]:
    """A botocore `before-send` handler: a mutating request is sent only while the fence holds.

    Registered on every client by `controller.app` when the operator elects a leader; the event is
    named `before-send.<service>.<Operation>`.
    """

    def before_send(event_name: str = "", **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        if not is_read(operation):
            check(fence)

    return before_send
