"""Phase: verified-upstream promotion (`spec.promotion.requires`), met before a rollout starts.

A rollout of a new backend (or frontend) version waits until each named Release has had that same
version Succeeded and live for at least its `soak`, read from that Release's `status.history` (and
its stable version, for the one it runs now), as Kargo promotes only Freight verified upstream.
Meanwhile Ready=False and Progressing=True, reason AwaitingUpstream, with a message naming what is
missing and, when it is only soak time, when it will be satisfied; the next pass is asked for at
that moment (or every `UPSTREAM_POLL` while the upstream has not got there), so the rollout starts
by itself. The upstream Releases are read by the reconciler (`due` says when) and come in
`Context.upstream`; this module only reads them.

What is gated: starting a rollout whose backend or frontend version differs from the stable one
here. Not gated: adopting what already runs, a change of flags or strategy alone, a retry of a
rolled-back spec (its version was verified when it first started). A spec changed mid-rollout to an
unverified version holds the rollout in progress where it is (nothing moves in AWS) until verified.

When the version is live upstream: from the `finished_at` of its Succeeded history entry until the
next rollout that replaced it began (another version's Succeeded entry), or until it was itself
rolled back after promotion; still live when it is the upstream's stable version now.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.api.reasons import Reason
from controller.api.release import ConditionType, ReleaseSpec, ReleaseStatus, UpstreamRequirement
from controller.planner.conditions import find
from controller.planner.decision import Upstream
from controller.planner.draft import Draft, Inputs, Result
from controller.planner.phases.start import runs_spec_backend
from controller.planner.standing import Standing
from controller.planner.strategy import target_hash

UPSTREAM_POLL = 10.0
"""Seconds between looks at an upstream Release that has not yet Succeeded with the version (a
change there does not wake this Release)."""


def due(spec: ReleaseSpec, status: ReleaseStatus) -> bool:
    """Whether this pass must read the upstream Releases: a rollout to a new spec may start."""
    return bool(spec.promotion.requires) and status.target_hash != target_hash(spec)


def gate(inp: Inputs, status: ReleaseStatus) -> Result:
    """Hold the start of a rollout whose versions are not verified upstream. `holds`: it waits."""
    d = Draft(inp, status)
    if not inp.spec.promotion.requires or not _would_start_new_version(inp, status):
        return d.close()
    found = {(u.namespace, u.name): u for u in inp.ctx.upstream}
    missing: list[str] = []
    waits: list[float] = []
    for req in inp.spec.promotion.requires:
        ref = req.release
        at, why = verified_at(req, found.get((ref.namespace, ref.name)), inp.spec)
        if at is not None and at <= inp.now:
            continue
        missing.append(why)
        waits.append((at - inp.now).total_seconds() if at is not None else UPSTREAM_POLL)
    if not missing:
        return d.close()
    message = "waiting for verified upstream: " + "; ".join(missing)
    previous = find(status.conditions, ConditionType.READY)
    if previous is None or previous.reason != Reason.AWAITING_UPSTREAM:
        d.event(Reason.AWAITING_UPSTREAM, message)
    d.update(message=message)
    d.stand(Standing(progressing=("True", Reason.AWAITING_UPSTREAM, message),
                     ready=("False", Reason.AWAITING_UPSTREAM, message)))
    d.wait(min(waits))  # the first moment something may have changed
    return d.close(holds=True)


def verified_at(req: UpstreamRequirement, upstream: Upstream | None, spec: ReleaseSpec) -> tuple[datetime | None, str]:
    """When `upstream` has verified the spec's versions (maybe in the future, while it soaks), and
    what to say meanwhile; None when it cannot be said yet (not Succeeded with them, unreadable)."""
    ref = f"{req.release.namespace}/{req.release.name}"
    versions = f"backend {spec.backend.version}" + (f" and frontend {spec.frontend.version}" if spec.frontend else "")
    if upstream is None:
        return None, f"{ref} was not read"
    if upstream.error is not None:
        return None, f"{ref} cannot be read: {upstream.error}"
    if upstream.status is None:
        return None, f"{ref} not found"
    best: datetime | None = None
    for live_from, live_until in _live_spans(upstream.status, spec):
        enough = live_from + req.soak
        if live_until is None:  # still live: satisfied once it has soaked
            best = enough if best is None else min(best, enough)
        elif live_until >= enough:
            return live_from, f"{ref} verified {versions}"
    if best is None:
        return None, f"{ref} has not had {versions} Succeeded and live"
    return best, (f"{ref} has had {versions} Succeeded since {best - req.soak:%Y-%m-%dT%H:%M:%SZ}; "
                  f"soaking {_seconds(req.soak)} until {best:%Y-%m-%dT%H:%M:%SZ}")


def _live_spans(up: ReleaseStatus, spec: ReleaseSpec) -> list[tuple[datetime, datetime | None]]:
    """Each time the upstream had the spec's versions Succeeded: (from, until), until None while live."""
    frontend = spec.frontend.version if spec.frontend is not None else None
    backend = spec.backend.version
    spans: list[tuple[datetime, datetime | None]] = []
    history = up.history
    for i, entry in enumerate(history):
        if entry.result != "Succeeded" or entry.backend_version != backend:
            continue
        if frontend is not None and entry.frontend_version != frontend:
            continue
        until: datetime | None = None
        for later in history[i + 1:]:
            if later.result == "Succeeded":
                until = later.started_at  # another rollout replaced it
                break
            if later.backend_version == backend and later.result == "RolledBack":
                until = later.finished_at  # rolled back after promotion
                break
        if until is None and up.backend.stable_version != backend:
            until = entry.finished_at  # no longer its stable version: how it went is not recorded
        spans.append((entry.finished_at, until))
    return spans


def _would_start_new_version(inp: Inputs, status: ReleaseStatus) -> bool:
    """This pass would start (or supersede with) a rollout to a backend or frontend version that
    is not the stable one here (what `start.reconcile` would do, adoption aside)."""
    if status.target_hash == inp.hash:
        return False
    if status.revision == 0 and status.target_hash is None and runs_spec_backend(inp):
        return False  # adopted: it runs here already
    spec = inp.spec
    if spec.backend.version != status.backend.stable_version:
        return True
    return spec.frontend is not None and spec.frontend.version != status.frontend.stable_version


def _seconds(soak: timedelta) -> str:
    total = int(soak.total_seconds())
    return f"{total // 3600}h{total % 3600 // 60:02d}m{total % 60:02d}s" if total >= 3600 else f"{total}s"
