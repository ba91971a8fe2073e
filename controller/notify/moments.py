"""The document each delivery sends, and its id (pure).

The moments themselves are the planner's (`controller.planner.moments`, carried in
`Decision.moments`); `moments` is re-exported here for the tests that read them. The package
docstring (`controller.notify`) explains the delivery guarantees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.api.release import ConditionType, Moment, Notification, ReleaseStatus
from controller.kube.client import ObjectRef
from controller.planner.moments import moments

__all__ = ["Delivery", "SOURCE", "complete", "delivery_id", "document", "moments", "webhook_body"]

SOURCE = "release-controller"


def document(moment: Moment, step: int | None, namespace: str, name: str, status: ReleaseStatus,
             now: datetime) -> dict[str, Any]:
    """The json format's document (fields listed in the README)."""
    ready = next((c for c in status.conditions if c.type == ConditionType.READY), None)
    analysis = status.analysis
    return {
        "moment": moment.value,
        "namespace": namespace,
        "name": name,
        "revision": status.revision,
        "phase": status.phase.value,
        "backend": {"stableVersion": status.backend.stable_version, "canaryVersion": status.backend.canary_version},
        "frontend": {"stableVersion": status.frontend.stable_version, "canaryVersion": status.frontend.canary_version},
        "step": step if step is not None else status.current_step,
        "stepCount": status.step_count,
        "weight": status.backend.canary_weight,
        "analysis": ({"verdict": analysis.verdict.value if analysis.verdict else None, "message": analysis.message}
                     if analysis is not None else None),
        "condition": ({"type": "Ready", "status": ready.status, "reason": ready.reason, "message": ready.message}
                      if ready is not None else None),
        "message": status.message,
        "time": now.isoformat(),
    }


# The document's shape with every field null: the API server drops null fields from what the status
# keeps of a pending delivery, and a receiver gets each documented field, null or not.
_NULLS: dict[str, Any] = {
    "id": None, "moment": None, "namespace": None, "name": None, "revision": None, "phase": None,
    "backend": {"stableVersion": None, "canaryVersion": None},
    "frontend": {"stableVersion": None, "canaryVersion": None},
    "step": None, "stepCount": None, "weight": None,
    "analysis": {"verdict": None, "message": None},
    "condition": {"type": None, "status": None, "reason": None, "message": None},
    "message": None, "time": None,
}
_NULLABLE_OBJECTS = ("analysis", "condition")  # null as a whole when absent


def complete(doc: Mapping[str, Any]) -> dict[str, Any]:
    """`doc` with the fields the status dropped (null ones) back, as null."""
    out = dict(doc)
    for field, empty in _NULLS.items():
        value = out.get(field)
        if isinstance(empty, dict):
            if value is None:
                out[field] = None if field in _NULLABLE_OBJECTS else dict(empty)
            elif isinstance(value, Mapping):
                out[field] = {**empty, **value}
        elif field not in out:
            out[field] = None
    return out


def _text(doc: Mapping[str, Any]) -> str:
    versions = doc["backend"]["canaryVersion"] or doc["backend"]["stableVersion"]
    condition = doc["condition"] or {}
    return (f"Release {doc['namespace']}/{doc['name']}: {doc['moment']} (revision {doc['revision']}, backend "
            f"{versions}, step {doc['step']}/{doc['stepCount']}, weight {doc['weight']}%): "
            f"{condition.get('message') or doc['message']}")


def webhook_body(fmt: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    if fmt == "slack":
        return {"text": _text(doc)}
    if fmt == "teams":
        return {"@type": "MessageCard", "@context": "https://schema.org/extensions",
                "summary": f"{doc['namespace']}/{doc['name']}: {doc['moment']}", "text": _text(doc)}
    return dict(doc)


def delivery_id(ref: ObjectRef, key: str) -> str:
    """The stable id of one delivery, the receivers' dedupe key: the Release object's uid (a
    Release deleted and created again under its name starts its revisions afresh) and the key."""
    return f"{ref.uid or f'{ref.namespace}/{ref.name}'}/{key}"


@dataclass(frozen=True)
class Delivery:
    key: str
    ref: ObjectRef
    sink: Notification
    document: Mapping[str, Any]

    @property
    def id(self) -> str:
        return delivery_id(self.ref, self.key)


def _kind(sink: Notification) -> str:
    return "webhook" if sink.webhook is not None else "eventBridge"


