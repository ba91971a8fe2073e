"""The apply step's parts after AWS: the GitOps write-back of a rollback, the Events a pass adds of
its own (the first pass's Accepted), the status as it compares, and the per-Release gauges.

A write-back is an effect like an AWS action: its result (the commit that names what serves
again) is recorded in the status the pass writes, and a failure is an Event and a retry
(`backoff.WRITE_BACK_RETRY`). Must not: decide anything a planner phase decides, nor write the
status (the driver writes it once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from controller import metrics

from controller.api.reasons import Reason
from controller.api.release import Phase, ReleaseSpec, ReleaseStatus
from controller.gitops.rollback import SecretReader, with_revert_commit, write_back_rollback
from controller.gitops.writeback import GitWriteBackError, GitWriter
from controller.planner.decision import Decision, Event


@dataclass(frozen=True)
class Applied:
    """The decision as applied: its status and Events with what the effects after AWS recorded."""

    decision: Decision
    write_back_failed: bool = False


def write_back(writer: GitWriter, secrets: SecretReader, namespace: str, name: str, spec: ReleaseSpec,
               decision: Decision) -> Applied:
    """Git learns of the rollback: the file names what serves again (controller/gitops).

    Asked on every pass while the status's rollback entry records no commit, so a crash between
    the rollback's status write and the push asks again, and the writer finds its own commit
    by its trailer instead of pushing a second one. A failure is an Event and a pass soon.
    """
    try:
        result = write_back_rollback(writer, secrets, namespace, name, spec, decision.status)
    except GitWriteBackError as exc:
        event = Event(exc.reason, f"writing the rollback back to Git: {exc.message}", "Warning")
        return Applied(replace(decision, events=(*decision.events, event)), write_back_failed=True)
    status = with_revert_commit(decision.status, result)
    if result is None:
        return Applied(replace(decision, status=status))
    said = (f"pushed {result.commit[:12]} to {result.ref}" if result.commit
            else "Git already names the versions that serve")
    return Applied(replace(decision, status=status,
                           events=(*decision.events, Event(Reason.ROLLBACK_WRITTEN_BACK, said))))


def accepted(spec: ReleaseSpec) -> Event:
    """The first pass's Event: what the Release asks for."""
    tiers = f"backend {spec.backend.version}" + (f", frontend {spec.frontend.version}" if spec.frontend else "")
    return Event(Reason.ACCEPTED, f"Release accepted: {tiers}, strategy {spec.strategy.type.value}")


def in_flight(status: ReleaseStatus) -> bool:
    """A rollout has something that a deletion must put back: a backend or frontend canary."""
    return (status.phase in (Phase.PROGRESSING, Phase.PAUSED) or status.backend.canary_image is not None
            or status.frontend.current_step is not None)


def comparable(raw_status: Mapping[str, Any]) -> dict[str, Any]:
    """The stored status as our own models would write it, so equal content compares equal."""
    try:
        return ReleaseStatus.model_validate(raw_status).to_wire()
    except ValidationError:
        return dict(raw_status)


def record(namespace: str, name: str, status: ReleaseStatus) -> None:
    """The gauges of a Release after a pass that went to AWS: its phase and canary weights."""
    metrics.record_phase(namespace, name, status.phase.value)
    metrics.CANARY_WEIGHT.labels(namespace, name, "backend").set(status.backend.canary_weight)
    metrics.CANARY_WEIGHT.labels(namespace, name, "frontend").set(status.frontend.canary_weight)
    metrics.record_serving(namespace, name, {s.version: s.weight for s in status.backend.serving})


def rollback_line(namespace: str, name: str, why: str, before: ReleaseStatus, after: ReleaseStatus) -> str:
    """The one log line of a rollback: the reason, what served (AWS's weights) and the analysis's numbers.

    >>> from controller.api.release import AnalysisStatus, BackendStatus
    >>> before = ReleaseStatus(backend=BackendStatus(traffic="1.0.0 80%, 2.0.0 20%", canary_version="2.0.0"))
    >>> after = ReleaseStatus(message="backend 2.0.0: error-rate 0.3 > max 0.05; traffic back on 1.0.0",
    ...     analysis=AnalysisStatus(failures=2, samples=3, errors=0))
    >>> rollback_line("prod", "app", "AnalysisFailed", before, after)
    'prod/app rolled back (AnalysisFailed): serving was 1.0.0 80%, 2.0.0 20%; analysis 2 failed runs, 3 samples, 0 consecutive errors; backend 2.0.0: error-rate 0.3 > max 0.05; traffic back on 1.0.0'
    """
    analysis = after.analysis or before.analysis
    numbers = (f"analysis {analysis.failures} failed runs, {analysis.samples} samples, {analysis.errors} consecutive errors"
               if analysis is not None else "no analysis")
    return (f"{namespace}/{name} rolled back ({why}): serving was {before.backend.traffic or 'unknown'}; "
            f"{numbers}; {after.message}")
