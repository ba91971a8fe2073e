"""Errors shared across layers, so that effectors need not import the reconciler that catches them."""

from __future__ import annotations


class EffectError(Exception):
    """An AWS change that cannot be made now; `reason` becomes the Ready condition's reason."""

    def __init__(self, reason: str, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable
