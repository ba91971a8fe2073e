"""Gathering: fetch what the planner says a pass needs (`planner.needs`) before it decides.

The planner is pure; what it cannot know by itself comes from the network: analysis measurements,
hook calls, the upstream Releases of `spec.promotion.requires`, the API-contract check of a backend
version. `planner.needs` names what this pass needs; `gather` fetches exactly that through the
`Sources` it is given and returns it as the fields of `Context` (`Gathered`). The reconciler and
the planner's test driver (tests/planner/sim.py) use this same step with other sources.

Must not: decide anything (which input is due is `planner.needs`'s to say), nor write anywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from controller import metrics
from controller.api.release import Measurement, ReleaseSpec, ReleaseStatus
from controller.planner import Needs
from controller.planner.decision import ContractCheck, HookResult, Upstream
from controller.reconciler.ports import ContractChecker, HookRunner, Measurer, UpstreamReader


@dataclass(frozen=True)
class Sources:
    """Where each networked input is fetched from; None: this process has no such source (the
    input stays empty, as the planner reads an absent one)."""

    measurer: Measurer | None = None
    contracts: ContractChecker | None = None
    upstream: UpstreamReader | None = None
    hooks: HookRunner | None = None


@dataclass(frozen=True)
class Gathered:
    """What `gather` fetched, as `Context` takes it."""

    measurements: tuple[Measurement, ...] = ()
    contract: ContractCheck | None = None
    upstream: tuple[Upstream, ...] = ()
    hooks: tuple[HookResult, ...] = ()


def gather(needs: Needs, sources: Sources, namespace: str, name: str, uid: str, spec: ReleaseSpec,
           status: ReleaseStatus, now: dt.datetime) -> Gathered:
    """Fetch what `needs` names, from `sources`; see the module docstring."""
    measurements: tuple[Measurement, ...] = ()
    if sources.measurer is not None and needs.analysis:
        measurements = sources.measurer(spec, status, now, namespace)
        for m in measurements:
            metrics.ANALYSIS_TOTAL.labels(namespace, name, m.verdict.value).inc()
    contract: ContractCheck | None = None
    if sources.contracts is not None and needs.contract is not None:
        contract = sources.contracts(namespace, spec, needs.contract)
    upstream: tuple[Upstream, ...] = ()
    if sources.upstream is not None:
        upstream = tuple(_upstream(sources.upstream, ref.namespace, ref.name) for ref in needs.upstream)
    hooks: tuple[HookResult, ...] = ()
    if sources.hooks is not None:
        hooks = tuple(sources.hooks(namespace, name, uid, spec, status, point, hook) for point, hook in needs.hooks)
    return Gathered(measurements, contract, upstream, hooks)


def _upstream(read: UpstreamReader, namespace: str, name: str) -> Upstream:
    """One Release `spec.promotion.requires` names: parsed, missing, or why it could not be read."""
    try:
        obj = read(namespace, name)
        up = ReleaseStatus.model_validate((obj or {}).get("status") or {}) if obj is not None else None
        return Upstream(namespace, name, up)
    except ValidationError:
        return Upstream(namespace, name, error="its status is unreadable")
    except Exception as exc:  # the API server's answer, named for the condition (no body: it may be long)
        return Upstream(namespace, name, error=_api_error(exc))


def _api_error(exc: Exception) -> str:
    status: Any = getattr(exc, "status", None)
    reason: Any = getattr(exc, "reason", None)
    if status is not None:
        return f"{status} {reason or ''}".strip()
    return type(exc).__name__
