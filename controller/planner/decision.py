"""The planner's contract: what it is given and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from controller.api.release import Measurement, Moment, ReleaseStatus
from controller.planner.actions import Action


@dataclass(frozen=True)
class Requests:
    """User requests made through the CLI (annotations); a value is acted on once.

    The value is an opaque token (the time the request was made); the planner compares it with
    `status.acknowledged` so a request is honoured exactly once, even across restarts.
    """

    promote: str | None = None
    abort: str | None = None
    retry: str | None = None

    @property
    def abort_forced(self) -> bool:
        """An abort made with `--force` (its token ends FORCE_SUFFIX), or by deleting the Release: it
        rolls back even after an irreversible hook passed."""
        token = self.abort or ""
        return token.endswith(FORCE_SUFFIX) or token.startswith("deleted:")


    @property
    def promote_full(self) -> bool:
        """A promote made with `--full` (its token ends FULL_SUFFIX): every remaining step and its
        analysis skipped, as Argo Rollouts' `promote --full`."""
        return (self.promote or "").endswith(FULL_SUFFIX)


FULL_SUFFIX = "#full"
"""Ends the token of a promote request made with `--full` (`kubectl release promote NAME --full`)."""

FORCE_SUFFIX = "#force"
"""Ends the token of an abort request made with `--force` (`kubectl release abort NAME --force`)."""


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to emit. `type` is Normal or Warning."""

    reason: str
    message: str
    type: str = "Normal"


@dataclass(frozen=True)
class ContractCheck:
    """The API-contract gate's result for one backend version, found by the reconciler (it needs
    the network: the backend's OpenAPI document, maybe a ConfigMap) and handed to the planner.

    `error` says the check could not be made (document unreachable, unreadable contract): the gate
    is then neither passed nor failed, and the frontend waits.
    """

    backend_version: str
    problems: tuple[str, ...] = ()
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and not self.problems


@dataclass(frozen=True)
class Upstream:
    """One Release named by `spec.promotion.requires`, as the reconciler read it this pass.

    `status` None: the Release does not exist. `error`: it could not be read (say, no RBAC grant
    in its namespace); the gate then waits, naming the error.
    """

    namespace: str
    name: str
    status: ReleaseStatus | None = None
    error: str | None = None


@dataclass(frozen=True)
class HookResult:
    """One hook call the reconciler made this pass (`phases.hooks.due` named it).

    `passed`: the hook passed (a 2xx answer, a task that exited 0). Not passed and `final`: it failed
    for good, at once (a task that exited non-zero). Not passed, not final: not yet (a refused or
    unanswered webhook, a task still running): asked again, until the hook's timeout."""

    point: str
    name: str
    revision: int
    passed: bool
    message: str = ""
    final: bool = False


@dataclass(frozen=True)
class Refusal:
    """Why the reconciler could not take this pass to AWS, found before or while it applied, given
    to the planner so that the conditions, the Events and the next look are decided with the rest
    (`planner.refusal`). `reason` is a `Reason`: InvalidSpec (the spec does not validate), Conflict
    (another Release owns what it names), InvalidTraffic (the traffic it names is not its own),
    AwsUnreachable or another AWS error (from the observation, or from an action that failed).

    `since`: for AwsUnreachable, when the first pass that could not reach AWS began (the reconciler
    remembers it across passes). `during`: the decision whose actions AWS refused part way; its
    status is kept (what landed is seen again next pass), with the refusal said on it."""

    reason: str
    message: str
    since: datetime | None = None
    during: Decision | None = None


@dataclass(frozen=True)
class Context:
    """Identity of the Release and the clock, passed in so the planner never reads either."""

    namespace: str
    name: str
    generation: int
    now: datetime
    requests: Requests = field(default_factory=Requests)
    measurements: tuple[Measurement, ...] = ()  # taken this pass, when analysis was due
    contract: ContractCheck | None = None  # checked this pass, when `tiers.contract_target` named a version
    upstream: tuple[Upstream, ...] = ()  # read this pass, when `phases.upstream.due` said so
    hooks: tuple[HookResult, ...] = ()  # called this pass, when `phases.hooks.due` said so
    refusal: Refusal | None = None  # the reconciler could not go to AWS: decide only what to say


class Outcome(StrEnum):
    """What a pass amounted to, for metrics and logs (read this, not an Event's reason)."""

    PROGRESSED = "Progressed"  # asked AWS for something, or moved the status on
    UNCHANGED = "Unchanged"  # nothing to do, nothing written
    SUCCEEDED = "Succeeded"  # the rollout reached Succeeded this pass
    ROLLED_BACK = "RolledBack"  # this pass ended the rollout by going back
    FAILED = "Failed"  # this pass failed the rollout (the progress deadline)
    REFUSED = "Refused"  # the spec cannot be rolled out here; nothing changes in AWS
    BLOCKED = "Blocked"  # AWS could not be read or changed (a `Refusal` that passes): retried with back-off
    WORLD_MISSING = "WorldMissing"  # the service or listener the spec names does not exist


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    status: ReleaseStatus
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None  # seconds until the next pass is needed, None: none by time
    drift: tuple[str, ...] = ()  # resources found drifted this pass, newly (the reconciler counts them)
    outcome: Outcome = Outcome.PROGRESSED
    # The notification moments this pass produced (`planner.moments`): (moment, step), step set for
    # StepCompleted. The ledger (`controller.notify`) plans a delivery for each sink listening.
    moments: tuple[tuple[Moment, int | None], ...] = ()
