"""What this process remembers of one Release between passes (`Memory`), dropped in one piece, and
the steering requests read from a Release's annotations. Must not: be trusted over the API server's
copy (see `controller.reconciler.basis.raw_status`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from controller.api.release import ReleaseSpec
from controller.kube.client import REQUEST_ANNOTATIONS
from controller.planner.decision import Requests
from controller.planner.world import Observation


def _requests(annotations: Mapping[str, str]) -> Requests:
    return Requests(**{kind: annotations.get(key) for kind, key in REQUEST_ANNOTATIONS.items()})


@dataclass
class Memory:
    """What this process remembers of one Release between passes; dropped in one piece."""

    failures: int = 0  # passes in a row that AWS refused (the back-off's exponent)
    # The status this process last wrote: the watch may not have delivered it yet, and deciding
    # from an older status would repeat a step. Read-your-writes without an extra GET.
    written: dict[str, Any] | None = None
    written_uid: str | None = None  # the object it was written to: a re-created Release starts afresh
    written_rv: str | None = None  # the object's resourceVersion after that write
    # The resourceVersion of the object whose status this pass decides from: its status write is
    # conditioned on it, so a pass that decided from a status someone else has since replaced
    # (another process, or this one before a pause) writes nothing and decides again.
    basis_rv: str | None = None
    # The inputs and the world of the last pass that found nothing to do (see `Reconciler.resync`).
    settled: tuple[tuple[Any, ...], Observation] | None = None
    # The parsed spec and its (uid, generation): a spec never changes without a new generation.
    spec: tuple[tuple[Any, Any], ReleaseSpec] | None = None
    # The (uid, generation) whose traffic was found its own before it adopted or changed anything.
    traffic_checked: tuple[Any, int] | None = None
    # The term whose leadership gap this Release's timers were held by (`controller.reconciler.adjust.held_by_gap`).
    gap_term: int | None = None
    gap_written: bool = False  # a status carrying that hold was written (it is not held twice)
    gap_moot: bool = False  # that hold had nothing to move (no rollout under way through the gap)
    # When the first pass that could not reach AWS began (None: AWS answers). The rollout's timers
    # are moved on by the outage when it ends, so a pause does not run down unseen.
    unreachable_since: dt.datetime | None = None
    # Its claim was refused (Conflict) and no pass has acted since: a pass that then holds what it
    # names takes over (`controller.reconciler.adjust.taken_over`), even when another refusal wrote Ready in between.
    waited_in_conflict: bool = False

    def parsed_spec(self, obj: Mapping[str, Any]) -> ReleaseSpec | None:
        """The spec of `obj`, parsed once per generation; None when it does not validate."""
        meta = obj.get("metadata", {})
        version = (meta.get("uid"), meta.get("generation"))
        if self.spec is not None and self.spec[0] == version:
            return self.spec[1]
        try:
            spec = ReleaseSpec.model_validate(obj.get("spec") or {})
        except ValidationError:
            return None
        self.spec = (version, spec)
        return spec


Gap = tuple[float, "dt.datetime | None"]
"""Seconds nobody acted, and when that began (None: unknown)."""


def joined(a: Gap, b: Gap) -> Gap:
    """Both gaps: their seconds added, beginning when the earlier one began (a gap of no seconds has no start)."""
    began = [t for seconds, t in (a, b) if seconds > 0 and t is not None]
    return a[0] + b[0], min(began) if began else None


@dataclass
class Owed:
    """Leadership gaps whose hold a Release has not yet written, kept across terms (unlike `Memory`).

    A term can end before its first pass writes the hold of the gap it began after: a renewal that
    answers late leaves the next one past its deadline, which starts another term at once (an e2e
    run: term 2 began after a 198 s API server outage, term 3 half a second later; term 2's pass was
    stopped before its status write, and term 3's gap was 1.5 s, so the pause ran 198 s short). The
    unwritten gap is owed to the next term's first pass. The gaps are disjoint stretches of time
    (each ends where a term began, the next begins at that term's deadline), so adding them holds
    no moment twice. A status write that landed but whose answer was lost holds twice: a longer
    pause, never a shorter one.
    """

    default: Gap = (0.0, None)  # owed by every Release without an entry of its own
    by_key: dict[tuple[str, str], Gap] = field(default_factory=dict)

    def of(self, key: tuple[str, str]) -> Gap:
        return self.by_key.get(key, self.default)

    def term_ended(self, gap: Gap, memory: Mapping[tuple[str, str], "Memory"], term: int | None) -> None:
        """The term that began after `gap` ended; a Release whose pass in it wrote the hold owes
        nothing, every other one owes what it owed in that term (the gap included) still."""
        owed = {key: joined(gap, held) for key, held in self.by_key.items()}
        for key, mem in list(memory.items()):
            if mem.gap_term == term and (mem.gap_written or mem.gap_moot):
                owed[key] = (0.0, None)
            else:
                owed.setdefault(key, joined(gap, self.default))
        self.default = joined(gap, self.default)
        self.by_key = {key: held for key, held in owed.items() if held[0] > 0 or self.default[0] > 0}

    def forget(self, key: tuple[str, str]) -> None:
        self.by_key.pop(key, None)
