"""Errors shared across layers, so that effectors need not import the reconciler that catches them."""

from __future__ import annotations


class EffectError(Exception):
    """An AWS change that cannot be made now; `reason` becomes the Ready condition's reason."""

    def __init__(self, reason: str, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable


class ObjectGone(Exception):
    """The Release a pass works for was deleted, or replaced by a new object of the same name.

    Raised before any AWS write (and by a status write that finds no object): the worker that
    raised it must end at once, since nothing it decided applies to an object that exists.
    """

    def __init__(self, namespace: str, name: str, uid: str | None, found_uid: str | None = None) -> None:
        what = "was deleted" if found_uid is None else f"was replaced (uid {found_uid})"
        super().__init__(f"Release {namespace}/{name} (uid {uid}) {what}")
        self.namespace = namespace
        self.name = name


class StaleStatus(Exception):
    """A status write found the object changed since the status the pass decided from was read
    (its resourceVersion precondition failed): the pass decides again from the API server's copy."""

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"the status of Release {namespace}/{name} changed under the pass")
        self.namespace = namespace
        self.name = name
