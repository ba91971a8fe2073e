"""`needs`: what the reconciler must gather over the network before this pass's `decide`.

The planner is pure, so what it cannot know by itself (analysis measurements, hook calls, the
upstream Releases of `spec.promotion.requires`, the API-contract check of a backend version) is
fetched by the reconciler (`controller.reconciler.gather`) and handed back in `Context`. Which of
them this pass needs is the planner's to say, from the spec, the status, the world and the clock;
this is the one public function that says it, so nothing outside the planner reads its phases.
Must not: fetch anything, read the clock, or decide anything a phase decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.api.release import Hook, ReleaseRef, ReleaseSpec, ReleaseStatus
from controller.planner.analysis import analysis_due
from controller.planner.phases import hooks, upstream
from controller.planner.tiers import contract_target
from controller.planner.world import Observation


@dataclass(frozen=True)
class Needs:
    """The networked inputs of one pass.

    `analysis`: measure `spec.analysis.metrics` now. `hooks`: the (point, hook) calls to make now.
    `upstream`: the Releases to read (empty: none). `contract`: the backend version whose OpenAPI
    document to check (None: no check)."""

    analysis: bool = False
    hooks: tuple[tuple[str, Hook], ...] = ()
    upstream: tuple[ReleaseRef, ...] = ()
    contract: str | None = None


def needs(spec: ReleaseSpec, status: ReleaseStatus, observation: Observation, now: datetime) -> Needs:
    """What this pass needs gathered; see the module docstring. Pure."""
    return Needs(
        analysis=bool(spec.analysis.metrics) and analysis_due(spec, status, now),
        hooks=tuple(hooks.due(spec, status, now)),
        upstream=tuple(r.release for r in spec.promotion.requires) if upstream.due(spec, status) else (),
        contract=contract_target(spec, status, observation),
    )
