"""What every phase is given and what it hands back, and the small writer a phase works with.

`Inputs` is the frozen part of one pass: the spec, the observation, the context, the target hash
and the user requests this pass honours (acknowledged once, in `phases.requests`). A phase is a
function `(Inputs, ReleaseStatus) -> Result`: it opens a `Draft` on the status so far, writes to it
(status changes, actions, Events, waits) and closes it into a frozen `Result`, which also says
whether the pass stops there (`holds`). `core.decide` runs the phases and folds their results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.api.release import ConditionType, HistoryEntry, ReleaseSpec, ReleaseStatus
from controller.planner.actions import Action
from controller.planner.conditions import Status, set_condition
from controller.planner.decision import Context, Event
from controller.planner import group
from controller.planner.fleet import Fleet, fleet
from controller.planner.native import runs_natively
from controller.planner.standing import Standing
from controller.planner.steps import Plan
from controller.planner.strategy import plan_for, resolve
from controller.planner.world import Observation

HISTORY_LIMIT = 20


@dataclass(frozen=True)
class Inputs:
    """The frozen inputs of one pass, shared by every phase."""

    spec: ReleaseSpec
    obs: Observation
    ctx: Context
    hash: str  # `strategy.target_hash(spec)`
    promote: bool = False  # a new promote request, honoured this pass: ends the current pause
    promote_full: bool = False  # ... made with --full: skips every remaining step and its analysis
    abort: bool = False
    retry: bool = False

    @property
    def now(self) -> datetime:
        return self.ctx.now

    @property
    def ecs_controller(self) -> bool:
        return self.obs.service is not None and self.obs.service.deployment_controller == "ECS"

    @property
    def native(self) -> bool:
        """ECS runs this Canary or BlueGreen itself (`planner.native.runs_natively`)."""
        return runs_natively(self.spec, resolve(self.spec), self.obs.service)


@dataclass(frozen=True)
class Result:
    """What one phase decided: the status after it, what to do, what to say, when to look again."""

    status: ReleaseStatus
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()
    waits: tuple[float, ...] = ()
    holds: bool = False  # the pass stops after this phase
    standings: tuple[Standing, ...] = ()  # where the rollout stands: Ready and Progressing follow
    drift: tuple[str, ...] = ()  # resources found newly drifted
    warm: bool = False  # settle.keep_warm: the previous backend is still kept warm


@dataclass
class Draft:
    """A phase's working copy: mutable inside one phase function, closed into a `Result`."""

    inp: Inputs
    st: ReleaseStatus
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    drift: tuple[str, ...] = ()
    standings: list[Standing] = field(default_factory=list)

    def close(self, holds: bool = False, warm: bool = False) -> Result:
        return Result(
            self.st, tuple(self.actions), tuple(self.events), tuple(self.waits), holds, tuple(self.standings),
            self.drift, warm,
        )

    # ------------------------------------------------------------------ shorthands

    @property
    def spec(self) -> ReleaseSpec:
        return self.inp.spec

    @property
    def obs(self) -> Observation:
        return self.inp.obs

    @property
    def now(self) -> datetime:
        return self.inp.ctx.now

    @property
    def ecs_controller(self) -> bool:
        return self.inp.ecs_controller

    @property
    def plan(self) -> Plan:
        return plan_for(self.st.strategy or resolve(self.spec), self.spec)

    @property
    def fleet(self) -> Fleet:
        """The one service of a single-service Release (for several: `members`)."""
        return fleet(self.spec, self.st, self.obs, self.inp.ctx.namespace, self.inp.ctx.name)

    @property
    def several(self) -> bool:
        """Whether the backend tier names more than one service (`planner.group`)."""
        return self.spec.backend.several

    @property
    def members(self) -> tuple[group.Member, ...]:
        """Each service of the backend tier as a Release of one (`planner.group.members`)."""
        return group.members(self.spec, self.st, self.obs, self.inp.ctx.namespace, self.inp.ctx.name)

    # ------------------------------------------------------------------ writing

    def update(self, **changes: Any) -> None:
        self.st = self.st.model_copy(update=changes)

    def backend(self, **changes: Any) -> None:
        self.update(backend=self.st.backend.model_copy(update=changes))

    def service(self, name: str, **changes: Any) -> None:
        """Service `name`'s own status fields (`group.with_service`; one service: `backend`)."""
        self.st = group.with_service(self.st, self.spec, name, **changes)

    def every_service(self, **changes: Any) -> None:
        """The same change of every service's own status fields (and the tier's)."""
        for s in self.spec.backend.service_list():
            self.service(s.name, **changes)

    def frontend(self, **changes: Any) -> None:
        self.update(frontend=self.st.frontend.model_copy(update=changes))

    def cond(self, type_: ConditionType, status: Status, reason: str, message: str = "") -> None:
        """A phase's own condition (Healthy, Compatible, Drifted); Ready, Progressing, Reconciling and
        Stalled follow `stand`."""
        assert type_ not in (ConditionType.READY, ConditionType.PROGRESSING, ConditionType.RECONCILING,
                             ConditionType.STALLED), "use Draft.stand"
        self.update(conditions=set_condition(self.st.conditions, type_, status, reason, message, self.now))

    def drop(self, *types: ConditionType) -> None:
        """Remove a phase's own conditions that are not about the current spec any more."""
        self.update(conditions=[c for c in self.st.conditions if c.type not in types])

    def stand(self, standing: Standing) -> None:
        """Where the rollout stands now (see `planner.standing`): Ready and Progressing follow."""
        self.standings.append(standing)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event(reason=reason, message=message, type="Warning" if warning else "Normal"))

    def wait(self, seconds: float) -> None:
        self.waits.append(max(0.5, seconds))

    def record(self, result: Any, message: str, backend_version: str | None, backend_image: str | None) -> None:
        """One line of `status.history` for a rollout that ended (or was superseded) now."""
        entry = HistoryEntry(
            revision=max(1, self.st.revision),
            backend_version=backend_version or self.spec.backend.version,
            backend_image=backend_image,
            frontend_version=self.st.frontend.canary_version or self.st.frontend.stable_version,
            flags_hash=self.st.flags_hash,
            strategy=self.st.strategy.value if self.st.strategy else None,
            result=result,
            message=message[:1000],
            started_at=self.st.rollout_started_at or self.now,
            finished_at=self.now,
        )
        self.update(history=[*self.st.history, entry][-HISTORY_LIMIT:])
