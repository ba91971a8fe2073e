"""Whose credentials the AWS calls of the pass in progress are made with.

A pass runs in one worker thread; the reconciler enters `scope(Acting(...))` around it (as it enters
`controller.aws.budget.scope`), and the clients the effectors hold (`controller.aws.roles.routed`)
send each call with the credentials of that scope: the IAM role of the ReleasePolicy that covers the
Release's namespace, or the operator's own. The notification worker enters the same scope around a Release's
EventBridge deliveries. Outside a scope (the CLI, tooling) the operator's own credentials serve.

When the role cannot be told (the ReleasePolicies cannot be read, or two of them name different
roles), the scope holds no clients and every call raises `NoRole` before anything is sent: a Release
never falls back to the operator's own, wider, role. This module holds no clients of its own and
never logs or returns a credential.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError


@dataclass(frozen=True)
class Acting:
    """The credentials of a pass: `clients` (an AwsClients) signing as `role_arn` (None: the operator's
    own); `clients` None: the role could not be told (`why`), no call may be sent."""

    role_arn: str | None
    clients: Any
    why: str = ""


class NoRole(BotoCoreError):
    """A call of a Release whose IAM role cannot be told: not sent."""

    fmt = "not sent: the IAM role of this Release cannot be told ({why})"


_ACTING: contextvars.ContextVar[Acting | None] = contextvars.ContextVar("aws_acting", default=None)


def current() -> Acting | None:
    """The scope of the pass in progress in this thread; None outside a pass."""
    return _ACTING.get()


def role() -> str | None:
    """The role ARN the calls in progress are made with; None: the operator's own credentials."""
    acting = _ACTING.get()
    return acting.role_arn if acting is not None else None


@contextmanager
def scope(acting: Acting) -> Iterator[None]:
    token = _ACTING.set(acting)
    try:
        yield
    finally:
        _ACTING.reset(token)
