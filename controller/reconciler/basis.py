"""The status a pass decides from, and its one write: read-your-writes from `Memory`, conditioned on
the resourceVersion it was read at, so a pass never writes over a status someone else wrote since
(another process, or this one before a pause). Must not: trust memory over the API server's copy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from controller import fencing
from controller.api.release import ReleaseStatus
from controller.errors import ObjectGone
from controller.kube.client import ObjectRef
from controller.planner.decision import Event
from controller.reconciler.apply import comparable
from controller.reconciler.memory import Memory
from controller.reconciler.ports import Key, StatusSink

log = logging.getLogger("controller.reconciler.driver")  # one logger for the pass's lines


def _mine(mem: Memory | None, obj: Mapping[str, Any]) -> bool:
    return mem is not None and mem.written is not None and mem.written_uid == obj.get("metadata", {}).get("uid")


def raw_status(mem: Memory | None, obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The status to decide from: what this process last wrote to this very object (same uid; a
    Release deleted and created again under its name starts afresh), else the API server's.

    What it wrote is only a guess that the watch lags: the status write is conditioned on the
    resourceVersion that write returned (`basis_rv`), and the check before AWS is changed
    (`current`) compares it with the API server's, so a status someone else wrote since wins.
    Memory is dropped whole after any gap in leadership (`Reconciler.forget_all`)."""
    if _mine(mem, obj):
        assert mem is not None and mem.written is not None
        return mem.written
    return obj.get("status") or {}


def basis_rv(mem: Memory | None, obj: Mapping[str, Any]) -> str | None:
    """The resourceVersion of the status `raw_status` returns."""
    if _mine(mem, obj):
        assert mem is not None
        return mem.written_rv
    rv = obj.get("metadata", {}).get("resourceVersion")
    return str(rv) if rv else None


def stale(mem: Memory, key: Key) -> None:
    """The status changed since the one the pass decided from: forget what this process wrote."""
    log.info("%s/%s: the status changed since the one this pass decided from; deciding again from the "
             "API server's copy", *key)
    mem.written = mem.written_rv = None
    if not mem.gap_written:  # the held timers never reached the API server: hold them again, from its copy
        mem.gap_term, mem.gap_moot = None, False


def current(sink: StatusSink, mem: Memory, ref: ObjectRef, generation: int,
            raw: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Check, just before AWS is changed, that the object this pass decided for still exists.

    The body a worker holds can be old: the operator may have been paused (a long GC, a frozen
    node) while the Release was deleted or re-created. A watch event saying so may still be on
    its way, so ask the API server itself. Gone or replaced: raise ObjectGone, nothing is
    applied. The same object at a newer generation: return it, to be decided again.

    The same object with another status than the one this pass decided from (another process
    wrote it, or this one remembered a status from before a pause): return it, to be decided
    again from the API server's copy, without this process's memory of what it wrote. The same
    status at a newer resourceVersion (an annotation, a finalizer): the status write is
    conditioned on that version.
    """
    found = sink.current(ref.namespace, ref.name)
    found_uid = (found or {}).get("metadata", {}).get("uid")
    if found is None or found_uid != ref.uid:
        raise ObjectGone(ref.namespace, ref.name, ref.uid, found_uid)
    if int(found["metadata"].get("generation", 1)) != generation:
        return found
    found_rv = found["metadata"].get("resourceVersion")
    if found_rv is not None and mem.basis_rv is not None and found_rv != mem.basis_rv:
        if comparable(found.get("status") or {}) != comparable(raw):
            stale(mem, (ref.namespace, ref.name))
            return found
        mem.basis_rv = found_rv
    return None


def write(sink: StatusSink, fence: fencing.Fence | None, mem: Memory, ref: ObjectRef, raw: Mapping[str, Any],
          status: ReleaseStatus, events: Sequence[Event]) -> bool:
    """The pass's one status write (skipped when unchanged) and its Events, each fenced; True when written."""
    wire = status.to_wire()
    changed = wire != comparable(raw)
    if changed:
        fencing.check(fence)
        rv = sink.replace_status(ref.namespace, ref.name, wire, ref.uid, resource_version=mem.basis_rv)
        mem.written, mem.written_uid, mem.written_rv = wire, ref.uid, rv
        mem.basis_rv = rv
        mem.gap_written = mem.gap_term is not None  # this term's hold (if any) is in the API server's copy
    for event in events:
        fencing.check(fence)
        sink.event(ref, event.reason, event.message, event.type)
    return changed
