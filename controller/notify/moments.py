"""Which moments a pass produced (`moments`), and the document each delivery sends (pure).

`moments` reads a pass's `Decision` against the status it started from (its outcome, phase and
step moves, promotion time, drift reverted), never the Events' free text. The package docstring
(`controller.notify`) explains the delivery guarantees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.api.release import (
    ConditionType,
    DriftAction,
    Moment,
    Notification,
    Phase,
    ReleaseSpec,
    ReleaseStatus,
)
from controller.api.reasons import Reason
from controller.kube.client import ObjectRef
from controller.planner.decision import Decision, Outcome

SOURCE = "release-controller"


def moments(before: ReleaseStatus, decision: Decision, spec: ReleaseSpec) -> list[tuple[Moment, int | None]]:
    """The moments this pass produced: (moment, step) with step set for StepCompleted."""
    after = decision.status
    out: list[tuple[Moment, int | None]] = []
    if after.revision > before.revision:
        out.append((Moment.STARTED, None))
    elif after.revision == before.revision and after.current_step > before.current_step:
        out.extend((Moment.STEP_COMPLETED, step) for step in range(before.current_step, after.current_step))
    if after.phase == Phase.PAUSED and before.phase != Phase.PAUSED:
        out.append((Moment.PAUSED, None))
    if _progressing_reason(after) == Reason.WAITING_FOR_PROMOTE and _progressing_reason(before) != Reason.WAITING_FOR_PROMOTE:
        out.append((Moment.AWAITING_APPROVAL, None))
    if after.promoted_at is not None and after.promoted_at != before.promoted_at:
        out.append((Moment.PROMOTED, None))
    if decision.outcome == Outcome.SUCCEEDED:
        out.append((Moment.SUCCEEDED, None))
    elif decision.outcome == Outcome.ROLLED_BACK:
        out.append((Moment.ROLLED_BACK, None))
    elif decision.outcome == Outcome.FAILED:
        out.append((Moment.STALLED, None))
    for reason, moment in ((Reason.ROLLBACK_UNSAFE, Moment.STALLED), (Reason.HOOK_FAILED, Moment.HOOK_FAILED)):
        if _ready_reason(after) == reason and _ready_reason(before) != reason:
            out.append((moment, None))
    failed_before = {(h.point, h.name, h.revision) for h in before.hooks or [] if h.failed_at is not None}
    if any(h.failed_at is not None and (h.point, h.name, h.revision) not in failed_before for h in after.hooks or []) \
            and (Moment.HOOK_FAILED, None) not in out:
        out.append((Moment.HOOK_FAILED, None))  # also a postPromotion or onRollback hook: Ready says nothing
    if decision.drift and spec.rollback.on_drift == DriftAction.REVERT:
        out.append((Moment.DRIFT_REVERTED, None))
    return out


def _ready_reason(status: ReleaseStatus) -> str | None:
    return next((c.reason for c in status.conditions if c.type == ConditionType.READY), None)


def _progressing_reason(status: ReleaseStatus) -> str | None:
    return next((c.reason for c in status.conditions if c.type == ConditionType.PROGRESSING), None)


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


