"""`decide`: one reconcile pass of one Release, as a pure function.

Given the spec, the status written by the previous pass, what AWS looks like now and the context
(identity, clock, user requests, measurements taken this pass), return the actions to apply, the
new status, the Events to emit and when to look again. Nothing here talks to AWS, Kubernetes or the
clock; the reconciler does, and applies the actions in the order given.

The status records *where* a rollout is (its target hash, step, timers); the observation says
whether each step *landed*. A step advances only when AWS is observed in its desired state, so an
action that was lost is asked for again, a pass repeated with the same inputs returns the same
decision, and a controller restarted anywhere converges instead of duplicating work.

One rollout, in order:
  1. start (or adopt what already runs the spec), refusing a backend that the live frontend
     cannot use and strategies the service cannot do;
  2. the backend strategy's steps (`steps.Plan`), then promotion (the target groups swap roles);
  3. feature flags, then the frontend's origin path (only when the backend that serves traffic
     satisfies `requiresBackend`);
  4. Succeeded; the previous backend stays warm for the plan's window, then is deleted.
A spec change mid-rollout supersedes it; abort, analysis failure and the progress deadline put
traffic back on the stable version; `paused: true` freezes everything including timers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controller.api.release import (
    ConditionType,
    DegradationAction,
    FrontendStatus,
    HistoryEntry,
    Phase,
    ReleaseSpec,
    ReleaseStatus,
    StrategyType,
    Verdict,
)
from controller.api.types import format_duration
from controller.planner import analysis as analysis_rules
from controller.analysis.verdict import evaluate
from controller.api.release import DriftAction
from controller.planner import drift as drift_rules
from controller.planner.actions import (
    Action,
    DeleteTaskSet,
    DisableStaging,
    PromoteStaging,
    ScaleTaskSet,
    SetStagingWeight,
    UpdateServiceImage,
    external_id_for,
)
from controller.planner.conditions import Status, find, set_condition
from controller.planner.decision import Context, Decision, Event
from controller.planner.fleet import STEADY, Fleet, fleet
from controller.planner.steps import PauseStep, Plan, SetStep
from controller.planner.strategy import NEEDS_TRAFFIC, flags_document, flags_hash, plan_for, resolve, target_hash
from controller.planner.tiers import (
    FrontendStep,
    backend_change_refused,
    frontend_canary_plan,
    frontend_step,
    has_contract,
    origin_path,
    publish_document,
    publish_flags,
    staged_at,
    staging_weight,
    switch_origin,
)
from controller.planner.world import Observation

POLL = 2.0
"""Seconds to the next pass while waiting for AWS to show what was asked (task set running,
weights applied). Short, because each step of a rollout waits on at least one such change."""

AFTER_ACTIONS = 0.5
"""Seconds to the next pass after a pass that asked AWS for changes: most show at once (a weight, a
new task set record), so look again soon; what has not landed then falls back to POLL."""

ECS_POLL = 5.0
"""While an ECS-controller deployment is in progress: ECS needs tens of seconds per task."""

REFUSED_RECHECK = 60.0
"""A refused change waits for a new spec; this only notices a changed world (say, the service's
deployment controller) without a hot loop."""

HISTORY_LIMIT = 20


def decide(spec: ReleaseSpec, status: ReleaseStatus, observation: Observation, ctx: Context) -> Decision:
    """One pass: see the module docstring. Pure and deterministic."""
    return _Pass(spec, status, observation, ctx).run()


def _after_deletes(actions: list[Action]) -> tuple[Action, ...]:
    """The actions without any that name a task set deleted earlier in the same pass: two steps of
    one pass (leftovers first, keep-warm after) may both drain and delete the same task set, and
    ECS refuses to scale one that is gone, which would stop the rest of the pass."""
    out: list[Action] = []
    deleted: set[str] = set()
    for a in actions:
        if isinstance(a, (ScaleTaskSet, DeleteTaskSet)) and a.task_set_id in deleted:
            continue
        if isinstance(a, DeleteTaskSet):
            deleted.add(a.task_set_id)
        out.append(a)
    return tuple(out)


class _Pass:
    """The working state of one `decide` call. Mutable inside, frozen in and out."""

    def __init__(self, spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> None:
        self.spec = spec
        self.obs = obs
        self.ctx = ctx
        self.now: datetime = ctx.now
        self.st = status.model_copy(update={"observed_generation": ctx.generation})
        self.hash = target_hash(spec)
        self.actions: list[Action] = []
        self.events: list[Event] = []
        self.waits: list[float] = []
        self.drifted: tuple[str, ...] = ()
        self.promote_req = False
        self.abort_req = False
        self.retry_req = False

    # ------------------------------------------------------------------ small helpers

    def update(self, **changes: Any) -> None:
        self.st = self.st.model_copy(update=changes)

    def backend(self, **changes: Any) -> None:
        self.update(backend=self.st.backend.model_copy(update=changes))

    def frontend(self, **changes: Any) -> None:
        self.update(frontend=self.st.frontend.model_copy(update=changes))

    def cond(self, type_: ConditionType, status: Status, reason: str, message: str = "") -> None:
        self.update(conditions=set_condition(self.st.conditions, type_, status, reason, message, self.now))

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event(reason=reason, message=message, type="Warning" if warning else "Normal"))

    def wait(self, seconds: float) -> None:
        self.waits.append(max(0.5, seconds))

    def decision(self) -> Decision:
        requeue: float | None = min(self.waits) if self.waits else None
        if requeue is None and self.st.phase == Phase.PROGRESSING:
            requeue = POLL
        if requeue is not None and self.actions:
            requeue = min(requeue, AFTER_ACTIONS)
        return Decision(
            actions=_after_deletes(self.actions), status=self.st, events=tuple(self.events), requeue_after=requeue,
            drift=self.drifted,
        )

    @property
    def ecs_controller(self) -> bool:
        return self.obs.service is not None and self.obs.service.deployment_controller == "ECS"

    @property
    def plan(self) -> Plan:
        return plan_for(self.st.strategy or resolve(self.spec), self.spec)

    @property
    def fleet(self) -> Fleet:
        return fleet(self.spec, self.st, self.obs, self.ctx.namespace, self.ctx.name)

    def record(self, result: Any, message: str, backend_version: str | None, backend_image: str | None) -> None:
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

    # ------------------------------------------------------------------ the pass

    def run(self) -> Decision:
        if self.blocked_by_observation():
            return self.decision()
        self.take_requests()
        st = self.st
        if st.revision == 0 and st.target_hash is None:
            if self.runs_spec_backend():
                self.adopt()
            elif not self.start():
                return self.decision()
        elif st.target_hash != self.hash:
            if not self.start(superseding=st.phase in (Phase.PROGRESSING, Phase.PAUSED)):
                return self.decision()
        elif st.phase in (Phase.ROLLED_BACK, Phase.FAILED):
            if not self.retry_req:
                self.hold_rolled_back()
                return self.decision()
            self.event("Retry", f"retrying the rollout to backend {self.spec.backend.version}")
            self.update(target_hash=None)
            if not self.start():
                return self.decision()
        if self.st.phase == Phase.SUCCEEDED:
            self.settled()
        else:
            self.progress()
        return self.decision()

    def blocked_by_observation(self) -> bool:
        """A part of the world that cannot be read or does not exist: say so, change nothing."""
        obs = self.obs
        problem: tuple[str, str] | None = None
        if obs.errors:
            problem = (obs.errors[0].reason, "; ".join(e.message for e in obs.errors))
        elif obs.service is None or obs.service.status != "ACTIVE":
            ecs = self.spec.backend.ecs
            problem = ("ServiceNotFound", f"ECS service {ecs.service} in cluster {ecs.cluster} not found or not active")
        elif self.spec.backend.traffic is not None and obs.listener is None:
            problem = ("ListenerNotFound", f"listener {self.spec.backend.traffic.listener_arn} not found")
        if problem is None:
            return False
        reason, message = problem
        previous = find(self.st.conditions, ConditionType.READY)
        # Back off with how long the problem has lasted: 5s at first, at most 5 minutes.
        lasted = 0.0
        if previous is not None and previous.reason == reason and previous.status == "False":
            lasted = (self.now - previous.last_transition_time).total_seconds()
        self.cond(ConditionType.READY, "False", reason, message)
        self.wait(min(300.0, max(5.0, lasted)))
        if previous is None or previous.reason != reason:
            self.event(reason, message, warning=True)
        return True

    def take_requests(self) -> None:
        """Acknowledge every new request now, so a stale one never acts on a later rollout.

        A promote made while `paused: true` holds a rollout waits for the unpause instead.
        """
        req, ack = self.ctx.requests, self.st.acknowledged
        changes: dict[str, str] = {}
        if req.abort and req.abort != ack.abort:
            self.abort_req = True
            changes["abort"] = req.abort
        if req.retry and req.retry != ack.retry:
            self.retry_req = True
            changes["retry"] = req.retry
        in_rollout = self.st.phase in (Phase.PROGRESSING, Phase.PAUSED)
        if req.promote and req.promote != ack.promote and not (self.spec.paused and in_rollout):
            self.promote_req = True
            changes["promote"] = req.promote
        if changes:
            self.update(acknowledged=ack.model_copy(update=changes))

    # ------------------------------------------------------------------ starting

    def runs_spec_backend(self) -> bool:
        """Whether the service already serves the spec's image (observed, not from the status)."""
        service = self.obs.service
        assert service is not None
        image = self.spec.backend.image
        if self.ecs_controller:
            return service.image == image
        primary = service.primary
        ext = external_id_for(self.ctx.namespace, self.ctx.name, image)
        return primary is not None and (primary.image == image or primary.external_id == ext)

    def adopt(self) -> None:
        """First sight of a service that already runs the spec: record it as stable, touch nothing."""
        service = self.obs.service
        assert service is not None
        tg = self.primary_group()
        self.update(
            revision=1,
            target_hash=self.hash,
            strategy=resolve(self.spec),
            phase=Phase.PROGRESSING,
            current_step=0,
            step_count=0,
            step_started_at=self.now,
            rollout_started_at=self.now,
            message=f"adopted backend {self.spec.backend.version} already running",
        )
        self.backend(
            stable_version=self.spec.backend.version,
            stable_image=self.spec.backend.image,
            stable_target_group_arn=tg,
            canary_version=None,
            canary_image=None,
            canary_weight=0,
        )
        self.begin_frontend_target()
        self.event("Adopted", f"backend {self.spec.backend.version} ({self.spec.backend.image}) is already running")

    def primary_group(self) -> str | None:
        """The spec's target group the primary task set serves from, if it is one of the two."""
        service, traffic = self.obs.service, self.spec.backend.traffic
        if service is None or service.primary is None or traffic is None:
            return None
        tg = service.primary.target_group_arn
        return tg if tg in (traffic.stable_target_group_arn, traffic.canary_target_group_arn) else None

    def refusal(self, backend_change: bool) -> tuple[ConditionType, str, str] | None:
        """Why this spec cannot be rolled out here at all: (condition, reason, message)."""
        strategy = resolve(self.spec)
        service = self.obs.service
        assert service is not None
        if backend_change:
            if service.deployment_controller not in ("EXTERNAL", "ECS"):
                return (
                    ConditionType.PROGRESSING,
                    "DeploymentControllerNotSupported",
                    f"service {service.name} uses the {service.deployment_controller} deployment controller; "
                    "use EXTERNAL (all strategies) or ECS (Rolling and Fast)",
                )
            if strategy in NEEDS_TRAFFIC and service.deployment_controller != "EXTERNAL":
                return (
                    ConditionType.PROGRESSING,
                    "DeploymentControllerNotExternal",
                    f"strategy {strategy.value} needs task sets, but service {service.name} uses the "
                    f"{service.deployment_controller} deployment controller: recreate it with "
                    "deploymentController EXTERNAL, or use Rolling or Fast",
                )
            if strategy in NEEDS_TRAFFIC and self.spec.backend.traffic is None:
                return (
                    ConditionType.PROGRESSING,
                    "NoTrafficRouting",
                    f"strategy {strategy.value} needs backend.traffic (an ALB listener with two target groups)",
                )
            why = backend_change_refused(self.spec, self.obs, self.st.frontend.stable_version)
            if why is not None:
                return ConditionType.COMPATIBLE, "IncompatibleBackend", why
        return None

    def start(self, superseding: bool = False) -> bool:
        """Begin the rollout to this spec. False when refused (nothing changed but conditions)."""
        service = self.obs.service
        assert service is not None
        # Back to the stable version in the middle of a rollout (the canary may already be primary):
        # not a new backend but the way home; the canary becomes a leftover and goes.
        home = self.st.backend.canary_image is not None and self.spec.backend.image == self.st.backend.stable_image
        backend_change = not home and not self.runs_spec_backend()
        refused = self.refusal(backend_change)
        if refused is not None:
            type_, reason, message = refused
            before = find(self.st.conditions, ConditionType.PROGRESSING)
            if before is None or before.reason != reason:
                # Once per refusal, not per recheck: the condition holds it meanwhile.
                self.event(reason, message, warning=True)
            self.cond(type_, "False", reason, message)
            if type_ != ConditionType.PROGRESSING:
                self.cond(ConditionType.PROGRESSING, "False", reason, message)
            self.update(message=message)
            self.wait(REFUSED_RECHECK)
            return False
        if superseding:
            old = self.st.backend.canary_version or self.st.backend.stable_version
            self.record("Superseded", "the spec changed during the rollout", old, self.st.backend.canary_image)
            self.event("Superseded", f"rollout to backend {old} superseded by {self.spec.backend.version}")
        strategy = resolve(self.spec)
        note = ""
        if backend_change and not self.ecs_controller and service.primary is None:
            strategy, note = StrategyType.FAST, " (nothing runs yet: deploying directly)"
        if self.st.backend.stable_image is None:
            # Not adopted: remember what runs now as the stable version to come back to.
            self.backend(
                stable_image=service.image if self.ecs_controller else (service.primary.image if service.primary else None),
                stable_version=self.st.backend.stable_version or self.obs.backend_version_serving,
                # and the group it serves from (a lost status must not swap the groups' roles)
                stable_target_group_arn=self.st.backend.stable_target_group_arn or self.primary_group(),
            )
        plan = plan_for(strategy, self.spec)
        steps = 1 if self.ecs_controller and backend_change else (len(plan.steps) if backend_change else 0)
        # The flags live now are what a rollback of this rollout flips back to, first.
        live_flags = dict(self.obs.flags) if self.obs.flags is not None else {}
        rollback_flags = live_flags if live_flags != flags_document(self.spec) else None
        self.update(
            revision=self.st.revision + 1,
            target_hash=self.hash,
            strategy=strategy,
            phase=Phase.PROGRESSING,
            current_step=0,
            step_count=steps,
            step_started_at=self.now,
            rollout_started_at=self.now,
            paused_at=None,
            analysis=None,
            rollback_flags=rollback_flags,
            message=f"rolling out backend {self.spec.backend.version} with {strategy.value}{note}",
        )
        if backend_change or home:
            self.update(promoted_at=None)
        if backend_change:
            self.backend(
                canary_version=self.spec.backend.version,
                canary_image=self.spec.backend.image,
                canary_weight=0,
            )
        else:
            # Same image (flags, frontend or a version label changed): no task set moves.
            self.backend(canary_version=None, canary_image=None, canary_weight=0, stable_version=self.spec.backend.version)
            if not home:
                # What serves is the spec's image (the status may be older than the world, after a
                # restart): it is the stable one, in the group it serves from.
                self.backend(stable_image=self.spec.backend.image,
                             stable_target_group_arn=self.primary_group() or self.st.backend.stable_target_group_arn)
        self.begin_frontend_target()
        self.cond(ConditionType.PROGRESSING, "True", "RolloutStarted", self.st.message)
        self.event("RolloutStarted", f"revision {self.st.revision}: {self.st.message}")
        if backend_change and not self.ecs_controller and plan.steps:
            self.enter(0, plan)
        return True

    def begin_frontend_target(self) -> None:
        fe = self.spec.frontend
        target = fe.version if fe is not None and fe.version != self.st.frontend.stable_version else None
        self.update(frontend=self.st.frontend.model_copy(update={"canary_version": target}))
        if self.st.frontend.current_step is not None:
            # A frontend canary of a superseded rollout: its staging traffic stops; the new one starts over.
            if self.spec.frontend is not None:
                self.actions.append(DisableStaging(self.spec.frontend.cloudfront.distribution_id))
            self.frontend(current_step=None, canary_weight=0)

    def enter(self, index: int, plan: Plan) -> None:
        step = plan.steps[index]
        self.event(step.kind, f"{step.label} (step {index + 1}/{len(plan.steps)})")

    # ------------------------------------------------------------------ in progress

    def progress(self) -> None:
        in_backend = self.st.backend.canary_image is not None
        if self.abort_req and in_backend:
            # Honoured even while paused: abort is the way out of a held rollout.
            self.update(paused_at=None)
            self.roll_back("Aborted", "Aborted", "aborted by request", Phase.ROLLED_BACK)
            return
        if self.abort_req and self.st.frontend.current_step is not None:
            self.update(paused_at=None)
            self.roll_back_frontend("Aborted", "Aborted", "aborted by request")
            return
        if self.spec.paused:
            self.hold_paused()
            return
        if self.st.paused_at is not None:
            # Unpaused: timers resume where they stopped, as if the pause had not happened.
            held = self.now - self.st.paused_at
            started = self.st.step_started_at + held if self.st.step_started_at else None
            self.update(paused_at=None, step_started_at=started)
            self.event("Resumed", f"resumed after {format_duration(held)}")
        self.update(phase=Phase.PROGRESSING)
        if not self.analyse():
            return
        if in_backend:
            done = self.ecs_rollout() if self.ecs_controller else self.task_set_rollout()
            if not done:
                return
        self.after_backend()

    def hold_paused(self) -> None:
        if self.st.paused_at is None:
            self.event("Paused", f"spec.paused: holding at step {self.st.current_step + 1}/{self.st.step_count}")
        self.update(phase=Phase.PAUSED, paused_at=self.st.paused_at or self.now)
        self.cond(ConditionType.PROGRESSING, "Unknown", "Paused", "spec.paused is true: holding at the current step")
        self.cond(ConditionType.READY, "False", "Paused", "the rollout is paused")

    def deadline_passed(self) -> bool:
        started = self.st.step_started_at or self.st.rollout_started_at
        return started is not None and self.now - started > self.spec.progress_deadline

    def waiting_on_aws(self, what: str, poll: float = POLL, deadline: bool = True) -> None:
        """A step has not landed yet: poll, or fail once the progress deadline has passed."""
        if deadline and self.deadline_passed():
            # The rollback replaces what this pass asked for so far: those actions move toward the
            # step (a weight onto the canary) and the rollback, decided from the observation, would not
            # undo them.
            self.actions.clear()
            message = (
                f"{what}: no progress for {format_duration(self.spec.progress_deadline)} (progressDeadline)"
            )
            self.roll_back("ProgressDeadlineExceeded", "Failed", message, Phase.FAILED)
            return
        self.cond(ConditionType.PROGRESSING, "True", "Waiting", what)
        self.cond(ConditionType.READY, "False", "RolloutInProgress", self.st.message)
        self.wait(poll)

    def task_set_rollout(self) -> bool:
        """Walk the plan's steps as far as the observation allows. True once promoted."""
        plan = self.plan
        f = self.fleet
        self.backend(canary_weight=f.canary_weight)
        # Leftovers of an earlier rollout go first, traffic taken off them before they are deleted.
        if (f.canary is None or f.canary.stability != STEADY) and f.canary_weight > 0:
            # All traffic goes back to the stable task set only once it is at full scale and steady
            # (a superseded Rolling step may have shrunk it), as in a rollback.
            restore, ready = f.stable_ready()
            if not ready:
                self.actions += restore
                self.waiting_on_aws("restoring the stable task set before taking traffic off the old canary")
                return False
            self.actions += f.set_weights(0)
        if f.stable is not None and any(ts.status == "PRIMARY" for ts in f.others):
            # A leftover may be primary (a superseded promotion): the stable one is primary again
            # before it goes, or the service is left with no primary task set.
            self.actions.append(f.make_primary(f.stable))
        for ts in f.others:
            self.actions += f.delete(ts, drain=True)
        index = self.st.current_step
        n = len(plan.steps)
        step_now = plan.steps[index] if index < n else None
        advance_pause = False
        if self.promote_req:
            if isinstance(step_now, PauseStep) and step_now.duration is None:
                advance_pause = True
            elif index < n:
                self.event("PromoteFull", f"promote requested: skipping steps {index + 1}..{n}")
                index = n
                self.update(current_step=n, step_started_at=self.now)
        while index < n:
            step = plan.steps[index]
            label = f"step {index + 1}/{n} {step.label}"
            if isinstance(step, SetStep):
                acts = f.converge(step)
                if acts or not f.at(step):
                    self.actions += acts
                    self.waiting_on_aws(f"{label}: waiting for the canary task set and weights")
                    return False
            else:
                hold = plan.holding(index)
                if hold is not None and not f.at(hold):
                    self.actions += f.converge(hold)
                    self.waiting_on_aws(f"{label}: restoring {hold.label}")
                    return False
                if self.pause_holds(step, label, advance_pause):
                    return False
                advance_pause = False
            index += 1
            self.update(current_step=index, step_started_at=self.now)
            if index < n:
                self.enter(index, plan)
            else:
                self.event("Promoting", f"steps done: promoting backend {self.st.backend.canary_version}")
        # Promotion: the canary takes full scale and all traffic, then becomes primary.
        acts = f.promote()
        canary = f.canary
        if acts or canary is None or canary.status != "PRIMARY" or not f.weights_are(100):
            self.actions += acts
            self.waiting_on_aws("promoting: canary to 100% and primary")
            return False
        self.promoted(f)
        return True

    def pause_holds(self, step: PauseStep, label: str, promote_requested: bool) -> bool:
        """Whether a pause step still holds the rollout this pass (backend and frontend alike).

        An indefinite pause holds until a promote request; a timed one until its duration has passed
        and, when the step is analysed, until the analysis has Passed.
        """
        if step.duration is None:
            if not promote_requested:
                self.update(phase=Phase.PAUSED)
                self.cond(ConditionType.PROGRESSING, "Unknown", "WaitingForPromote", f"{label}: run promote")
                self.cond(ConditionType.READY, "False", "RolloutInProgress", self.st.message)
                return True
            self.event("Promote", f"{label}: promoted by request")
            return False
        assert self.st.step_started_at is not None
        remaining = (self.st.step_started_at + step.duration - self.now).total_seconds()
        if remaining > 0:
            self.cond(ConditionType.PROGRESSING, "True", "Pausing", f"{label}: {remaining:.0f}s left")
            self.cond(ConditionType.READY, "False", "RolloutInProgress", self.st.message)
            self.wait(remaining)
            return True
        verdict = self.st.analysis.verdict if self.st.analysis else None
        if step.analysed and verdict != Verdict.PASSED:
            why = self.st.analysis.message if self.st.analysis else "not measured yet"
            self.cond(
                ConditionType.PROGRESSING, "True", "WaitingForAnalysis",
                f"{label}: the pause is over but the analysis is {verdict.value if verdict else 'pending'}: {why}",
            )
            self.cond(ConditionType.READY, "False", "RolloutInProgress", self.st.message)
            self.wait(analysis_rules.seconds_until_due(self.spec, self.st, self.now))
            return True
        return False

    def promoted(self, f: Fleet | None) -> None:
        version = self.st.backend.canary_version
        self.backend(
            stable_version=version,
            stable_image=self.st.backend.canary_image,
            stable_target_group_arn=f.canary_tg if f is not None else self.st.backend.stable_target_group_arn,
            canary_version=None,
            canary_image=None,
            canary_weight=0,
        )
        self.update(promoted_at=self.now, current_step=self.st.step_count, analysis=None)
        self.event("Promoted", f"backend {version} promoted: all traffic on it")

    def ecs_rollout(self) -> bool:
        """ECS deployment controller: one UpdateService, then ECS's own deployment (circuit breaker)."""
        service = self.obs.service
        assert service is not None
        image = self.spec.backend.image
        ecs = self.spec.backend.ecs
        if self.st.current_step == 0:
            if service.image != image:
                self.actions.append(UpdateServiceImage(ecs.cluster, ecs.service, ecs.container_name, image))
                self.waiting_on_aws("updating the service's task definition", ECS_POLL)
                return False
            self.update(current_step=1, step_started_at=self.now)
        deployments = [d for d in service.deployments if d.image == image]
        deployment = next((d for d in deployments if d.status == "PRIMARY"), deployments[0] if deployments else None)
        if service.image != image or (deployment is not None and deployment.rollout_state == "FAILED"):
            # The circuit breaker rolled the service back itself: record it, do not try again.
            self.roll_back(
                "DeploymentFailed", "RolledBack",
                f"ECS deployment of {image} failed and was rolled back by the circuit breaker",
                Phase.ROLLED_BACK, issue_actions=False,
            )
            return False
        if deployment is not None and deployment.rollout_state == "IN_PROGRESS":
            self.waiting_on_aws(
                f"ECS deployment {deployment.id}: {deployment.running_count}/{deployment.desired_count} running",
                ECS_POLL,
            )
            return False
        self.promoted(None)
        return True

    # ------------------------------------------------------------------ analysis

    def analyse(self) -> bool:
        """Fold this pass's measurements in; act on a Failed verdict. False: the pass stops here."""
        failed_before = self.st.analysis is not None and self.st.analysis.verdict == Verdict.FAILED
        if not failed_before and not analysis_rules.analysed_state(self.spec, self.st, self.now):
            return True
        if self.ctx.measurements and not failed_before:
            self.update(analysis=evaluate(self.st.analysis, self.ctx.measurements, self.spec.analysis, self.now))
        result = self.st.analysis
        if result is None or result.verdict is None:
            self.wait(analysis_rules.seconds_until_due(self.spec, self.st, self.now))
            return True
        if result.verdict == Verdict.PASSED:
            self.cond(ConditionType.HEALTHY, "True", "AnalysisPassed", result.message)
        elif result.verdict != Verdict.FAILED:
            self.cond(ConditionType.HEALTHY, "Unknown", f"Analysis{result.verdict.value}", result.message)
        if result.verdict != Verdict.FAILED:
            self.wait(analysis_rules.seconds_until_due(self.spec, self.st, self.now))
            return True
        self.cond(ConditionType.HEALTHY, "False", "AnalysisFailed", result.message)
        if self.promote_req and self.st.backend.canary_image is not None:
            # A person looked at the failure and promotes anyway: their call, with fresh analysis.
            self.update(analysis=None)
            self.event("AnalysisOverridden", f"promoted despite: {result.message}", warning=True)
            return True
        in_backend = self.st.backend.canary_image is not None
        in_frontend = self.st.frontend.current_step is not None
        if self.spec.rollback.on_degradation == DegradationAction.PAUSE and not (in_backend or in_frontend):
            # Promoted already: nothing to hold. Say it, keep serving, let a person decide.
            if self.st.message != f"degraded: {result.message}":
                self.event("AnalysisFailed", f"degraded after promotion: {result.message}", warning=True)
            self.update(message=f"degraded: {result.message}")
            return True
        if self.spec.rollback.on_degradation == DegradationAction.PAUSE:
            self.update(phase=Phase.PAUSED)
            self.cond(ConditionType.PROGRESSING, "Unknown", "AnalysisFailed", f"paused: {result.message}")
            self.cond(ConditionType.READY, "False", "AnalysisFailed", result.message)
            if self.st.message != f"paused: {result.message}":
                self.event("AnalysisFailed", f"paused: {result.message}", warning=True)
            self.update(message=f"paused: {result.message}")
            return False
        if in_backend:
            self.roll_back("AnalysisFailed", "RolledBack", result.message, Phase.ROLLED_BACK)
        elif in_frontend:
            self.roll_back_frontend("AnalysisFailed", "RolledBack", result.message)
        else:
            self.roll_back_promoted(result.message)
        return False

    # ------------------------------------------------------------------ going back

    def roll_back(self, reason: str, result: str, message: str, phase: Phase, issue_actions: bool = True) -> None:
        """Back to the stable version before promotion: traffic first, then the canary goes."""
        attempted, image = self.st.backend.canary_version, self.st.backend.canary_image
        if issue_actions:
            self.flip_flags_back()
            if self.ecs_controller:
                service = self.obs.service
                stable = self.st.backend.stable_image
                if service is not None and stable and service.image != stable:
                    ecs = self.spec.backend.ecs
                    self.actions.append(UpdateServiceImage(ecs.cluster, ecs.service, ecs.container_name, stable))
            else:
                self.backend(canary_version=None, canary_image=None)
                acts, done = self.fleet.back_to_stable()
                self.actions += acts
                if not done:
                    self.wait(POLL)
        self.backend(canary_version=None, canary_image=None, canary_weight=0)
        self.record(result, message, attempted, image)
        text = f"backend {attempted}: {message}; traffic back on {self.st.backend.stable_version}"
        self.update(phase=phase, message=text)
        self.cond(ConditionType.PROGRESSING, "False", reason, text)
        self.cond(ConditionType.READY, "False", reason, text)
        self.event("RolledBack" if phase == Phase.ROLLED_BACK else reason, text, warning=True)

    def roll_back_promoted(self, message: str) -> None:
        """Degradation inside the keep-warm window: the previous version takes the traffic back.
        The frontend goes back first (it may need the newer backend), then the backend."""
        prev = next(
            (h for h in reversed(self.st.history) if h.result == "Succeeded" and h.revision < self.st.revision), None
        )
        current = self.st.backend.stable_version
        f = self.fleet
        old = None
        # Flags first: a flag flip is one small write and the cheapest way back.
        flipped = self.flip_flags_back()
        same_backend = prev is None or prev.backend_image in (None, self.st.backend.stable_image)
        if prev is not None and prev.backend_image is not None and not same_backend:
            ext = external_id_for(self.ctx.namespace, self.ctx.name, prev.backend_image)
            old = next((t for t in f.others if t.external_id == ext or t.image == prev.backend_image), None)
        if same_backend or old is None:
            if not flipped and not self.frontend_changed(prev):
                text = f"backend {current}: {message}; no warm previous version to go back to"
                if self.st.message != text:
                    self.event("RollbackUnavailable", text, warning=True)
                self.update(message=text)
                return
            # The backend is not going back (unchanged, or its previous version is gone): flags and frontend do.
            undone = ["feature flags"] if flipped else []
            if self.roll_back_frontend_origin(prev):
                undone.append(f"frontend {self.st.frontend.stable_version}")
            self.record("RolledBack", message, current, self.st.backend.stable_image)
            text = f"{message}; back to the previous revision's {' and '.join(undone)}"
            if not same_backend:
                text += f"; backend {current} stays (no warm previous version)"
            self.update(phase=Phase.ROLLED_BACK, message=text, promoted_at=None)
            self.cond(ConditionType.PROGRESSING, "False", "AnalysisFailed", text)
            self.cond(ConditionType.READY, "False", "AnalysisFailed", text)
            self.event("RolledBack", text, warning=True)
            return
        assert prev is not None
        self.roll_back_frontend_origin(prev)
        self.backend(
            stable_version=prev.backend_version,
            stable_image=prev.backend_image,
            stable_target_group_arn=old.target_group_arn or f.canary_tg,
            canary_version=None,
            canary_image=None,
            canary_weight=0,
        )
        self.update(promoted_at=None)
        acts, done = self.fleet.back_to_stable()
        self.actions += acts
        if not done:
            self.wait(POLL)
        self.record("RolledBack", message, current, self.spec.backend.image)
        text = f"backend {current}: {message}; traffic back on {prev.backend_version}"
        self.update(phase=Phase.ROLLED_BACK, message=text)
        self.cond(ConditionType.PROGRESSING, "False", "AnalysisFailed", text)
        self.cond(ConditionType.READY, "False", "AnalysisFailed", text)
        self.event("RolledBack", text, warning=True)

    def roll_back_frontend_origin(self, prev: HistoryEntry | None) -> bool:
        """The origin path back to the last good revision's frontend, when it differs. True: asked."""
        if not self.frontend_changed(prev):
            return False
        assert prev is not None and prev.frontend_version is not None
        self.actions.append(switch_origin(self.spec, prev.frontend_version))
        self.update(frontend=FrontendStatus(stable_version=prev.frontend_version))
        return True

    def frontend_changed(self, prev: HistoryEntry | None) -> bool:
        """Whether the last good revision ran another frontend than the live one (rollback moves it too)."""
        return (
            self.spec.frontend is not None and prev is not None and bool(prev.frontend_version)
            and prev.frontend_version != self.st.frontend.stable_version
        )

    def flip_flags_back(self) -> bool:
        """Publish the flags live before this rollout, if this rollout changed them. True: asked."""
        if self.st.rollback_flags is None:
            return False
        back = publish_document(self.spec, self.obs, self.ctx.namespace, self.ctx.name, self.st.rollback_flags)
        if back is None:
            return False
        self.actions.append(back)
        self.event("FlagsRolledBack", f"feature flags back to: {', '.join(sorted(self.st.rollback_flags)) or '(none)'}",
                   warning=True)
        return True

    def roll_back_frontend(self, reason: str, result: str, message: str) -> None:
        """A frontend canary failed or was aborted: staging traffic stops; the backend stays as promoted."""
        fe = self.spec.frontend
        assert fe is not None
        self.flip_flags_back()
        self.actions.append(DisableStaging(fe.cloudfront.distribution_id))
        attempted = self.st.frontend.canary_version or fe.version
        self.record(result, f"frontend {attempted}: {message}", self.st.backend.stable_version, self.st.backend.stable_image)
        self.frontend(canary_version=None, current_step=None, canary_weight=0)
        live = self.st.frontend.stable_version or "the previous version"
        text = f"frontend {attempted}: {message}; all viewers back on frontend {live}, backend stays {self.st.backend.stable_version}"
        self.update(phase=Phase.ROLLED_BACK, message=text)
        self.cond(ConditionType.PROGRESSING, "False", reason, text)
        self.cond(ConditionType.READY, "False", reason, text)
        self.event("RolledBack", text, warning=True)

    def hold_rolled_back(self) -> None:
        """RolledBack or Failed for this spec: keep AWS on the stable version until retry or a new spec."""
        if self.st.rollback_flags is not None and self.st.history and self.st.history[-1].result != "Succeeded":
            self.flip_flags_back()  # asked again if the rollback's flag write did not land
        if self.spec.frontend is not None and staging_weight(self.obs, None) > 0:
            self.actions.append(DisableStaging(self.spec.frontend.cloudfront.distribution_id))
        self.hold_frontend_origin()
        if self.ecs_controller:
            return
        acts, done = self.fleet.back_to_stable()
        self.actions += acts
        if not done or acts:
            self.wait(POLL)

    def hold_frontend_origin(self) -> None:
        """A rollback's origin switch that did not land is asked again: while AWS still shows the
        frontend rolled back from, the origin goes to the stable one. (Anything else on the origin
        is a hand-made change, which the drift policy covers once a rollout succeeds.)"""
        fe, live = self.spec.frontend, self.obs.frontend
        stable = self.st.frontend.stable_version
        if fe is None or live is None or not stable or stable == fe.version:
            return
        want = origin_path(self.spec, stable)
        if want is not None and live.origin_path == origin_path(self.spec) != want:
            self.actions.append(switch_origin(self.spec, stable))
            self.wait(POLL)

    # ------------------------------------------------------------------ after the backend

    def keep_warm(self) -> bool:
        """Keep the previous backend for the plan's window, then delete it. True while warm."""
        if self.ecs_controller:
            return False
        f = self.fleet
        if not f.others:
            return False
        promoted = self.st.promoted_at
        if promoted is not None and self.now < promoted + self.plan.keep_warm:
            self.wait((promoted + self.plan.keep_warm - self.now).total_seconds())
            return True
        acts, done = f.back_to_stable()
        self.actions += acts
        if acts:
            self.event("ScaledDown", f"previous backend task set(s) deleted: {', '.join(t.id for t in f.others)}")
        if not done:
            self.wait(POLL)
        return False

    def after_backend(self) -> None:
        warm = self.keep_warm()
        flags = publish_flags(self.spec, self.obs, self.ctx.namespace, self.ctx.name)
        if flags is not None:
            self.actions.append(flags)
            self.waiting_on_aws("publishing feature flags", deadline=False)
            return
        wanted = flags_hash(self.spec)
        if self.st.flags_hash != wanted:
            if self.st.flags_hash is not None or self.spec.feature_flags:
                self.event("FlagsPublished", f"feature flags published: {', '.join(sorted(self.spec.feature_flags))}")
            self.update(flags_hash=wanted)
            if self.st.rollback_flags is not None:
                # The flags are this rollout's change: the analysis window (and a flip back) starts now.
                self.update(promoted_at=self.now)
        fs = frontend_step(self.spec, self.obs, self.st.backend.stable_version)
        known = find(self.st.conditions, ConditionType.COMPATIBLE)
        if known is not None and fs.compatible and known.status == "True" and known.message.startswith(fs.message):
            pass  # keep what the contract gate added when the frontend moved
        elif fs.compatible is not None:
            self.cond(
                ConditionType.COMPATIBLE, "True" if fs.compatible else "False",
                "Compatible" if fs.compatible else "IncompatibleBackend", fs.message,
            )
        if not fs.done and fs.compatible is False:
            self.cond(ConditionType.PROGRESSING, "False", "IncompatibleBackend", fs.message)
            self.cond(ConditionType.READY, "False", "IncompatibleBackend", fs.message)
            self.update(message=f"frontend held: {fs.message}")
            self.wait(REFUSED_RECHECK / 2)
            return
        if not fs.done and not self.contract_gate(fs):
            return
        if frontend_canary_plan(self.spec) and (not fs.done or self.st.frontend.current_step is not None):
            if not self.frontend_canary():
                return
        elif fs.action is not None:
            self.actions.append(fs.action)
            self.frontend(origin_requested=fs.action.origin_path)
            self.waiting_on_aws(f"switching the frontend to {fs.action.origin_path}", deadline=False)
            return
        if self.st.frontend.current_step is not None:
            self.frontend(current_step=None, canary_weight=0)  # the canary was dropped from the spec
        fe = self.spec.frontend
        if fe is not None and self.st.frontend.stable_version != fe.version:
            if self.st.frontend.stable_version is not None:
                want = origin_path(self.spec)
                if not frontend_canary_plan(self.spec) and self.st.frontend.origin_requested != want:
                    # AWS shows the new path, yet no finished pass asked for it: the one that switched it
                    # died before its invalidation. Asked again, the effector only invalidates (once).
                    self.actions.append(switch_origin(self.spec))
                self.event("FrontendSwitched", f"frontend {fe.version} live at {want}")
            self.frontend(stable_version=fe.version)
        self.frontend(canary_version=None, origin_requested=None)
        self.finish(warm)

    def contract_gate(self, fs: FrontendStep) -> bool:
        """The API-contract gate: True when the frontend may move (no contract, or it holds).

        The reconciler checks the contract (network I/O) and passes the result in `ctx.contract`;
        a result for another backend version than the one serving is stale and waited out.
        """
        fe = self.spec.frontend
        if fe is None or not has_contract(self.spec):
            return True
        serving = fs.serving or self.st.backend.stable_version or self.spec.backend.version
        check = self.ctx.contract
        if check is None or check.backend_version != serving:
            self.waiting_on_aws(f"checking frontend {fe.version}'s API contract against backend {serving}", deadline=False)
            return False
        if check.error is not None:
            text = f"API contract of frontend {fe.version} not checked against backend {serving}: {check.error}"
            self.cond(ConditionType.COMPATIBLE, "Unknown", "ApiContractUnavailable", text)
            self.cond(ConditionType.PROGRESSING, "True", "Waiting", text)
            self.cond(ConditionType.READY, "False", "RolloutInProgress", text)
            self.update(message=f"frontend held: {text}")
            self.wait(10.0)
            return False
        if check.problems:
            text = (
                f"frontend {fe.version} uses API operations that backend {serving} does not serve: "
                + "; ".join(check.problems)
            )
            self.cond(ConditionType.COMPATIBLE, "False", "ApiContractBroken", text)
            self.cond(ConditionType.PROGRESSING, "False", "ApiContractBroken", text)
            self.cond(ConditionType.READY, "False", "ApiContractBroken", text)
            if self.st.message != f"frontend held: {text}":
                self.event("ApiContractBroken", text, warning=True)
            self.update(message=f"frontend held: {text}")
            self.wait(REFUSED_RECHECK / 2)
            return False
        text = f"backend {serving} serves every API operation frontend {fe.version} uses"
        self.cond(ConditionType.COMPATIBLE, "True", "Compatible", f"{fs.message}; {text}" if fs.message else text)
        return True

    def frontend_canary(self) -> bool:
        """CloudFront continuous deployment: staging weights stepped up, then promotion. True once the
        primary serves the new origin path and staging takes no traffic."""
        fe = self.spec.frontend
        assert fe is not None
        cf = fe.cloudfront
        want = origin_path(self.spec)
        assert want is not None
        steps = frontend_canary_plan(self.spec)
        n = len(steps)
        index = self.st.frontend.current_step
        if index is None:
            index = 0
            self.frontend(current_step=0, canary_weight=0)
            self.update(step_started_at=self.now)
            self.event("FrontendCanary", f"frontend {fe.version}: continuous deployment in {n} steps, staging at {want}")
        self.frontend(canary_weight=staging_weight(self.obs, want))
        live = self.obs.frontend.origin_path if self.obs.frontend is not None else None
        advance_pause = False
        if self.promote_req and index < n:
            step_now = steps[index]
            if isinstance(step_now, PauseStep) and step_now.duration is None:
                advance_pause = True
            else:
                self.event("PromoteFull", f"promote requested: skipping frontend steps {index + 1}..{n}")
                index = n
                self.frontend(current_step=n)
        while index < n and live != want:
            step = steps[index]
            label = f"frontend step {index + 1}/{n} {step.label}"
            held = step if isinstance(step, SetStep) else next(
                (s for s in reversed(steps[:index]) if isinstance(s, SetStep)), None)
            if held is not None and not staged_at(self.obs, want, held.canary_weight):
                self.actions.append(SetStagingWeight(cf.distribution_id, cf.origin_id, want, held.canary_weight))
                self.waiting_on_aws(f"{label}: waiting for the staging distribution at {held.canary_weight}%",
                                    deadline=False)
                return False
            if isinstance(step, PauseStep):
                if self.pause_holds(step, label, advance_pause):
                    return False
                advance_pause = False
            index += 1
            self.frontend(current_step=index)
            self.update(step_started_at=self.now)
            if index < n:
                self.event(steps[index].kind, f"{steps[index].label} (frontend step {index + 1}/{n})")
        if live != want:
            self.update(phase=Phase.PROGRESSING)
            self.actions.append(PromoteStaging(cf.distribution_id))
            self.waiting_on_aws(f"promoting the staging distribution onto {cf.distribution_id}", deadline=False)
            return False
        if staging_weight(self.obs, None) > 0:
            self.actions.append(DisableStaging(cf.distribution_id))  # promoted: the split is no longer needed
        self.event("FrontendPromoted", f"frontend {fe.version} promoted from staging: all viewers at {want}")
        self.frontend(current_step=None, canary_weight=0)
        return True

    def finish(self, warm: bool) -> None:
        if self.st.phase != Phase.SUCCEEDED:
            self.update(phase=Phase.SUCCEEDED, message=self.summary())
            self.record("Succeeded", self.st.message, self.st.backend.stable_version, self.st.backend.stable_image)
            self.event("Succeeded", f"revision {self.st.revision}: {self.st.message}")
        self.cond(ConditionType.READY, "True", "Succeeded", self.st.message)
        if warm:
            assert self.st.promoted_at is not None
            until = self.st.promoted_at + self.plan.keep_warm
            self.cond(ConditionType.PROGRESSING, "True", "RollbackWindow",
                      f"previous version kept warm until {until.isoformat()}")
        else:
            self.cond(ConditionType.PROGRESSING, "False", "RolloutCompleted", self.st.message)

    def summary(self) -> str:
        parts = [f"backend {self.st.backend.stable_version}"]
        if self.spec.frontend is not None:
            parts.append(f"frontend {self.spec.frontend.version}")
        return " and ".join(parts) + " live"

    def settled(self) -> None:
        """Succeeded: analysis and the keep-warm window continue; a later failure rolls back; what
        AWS shows is compared with the spec (drift), reported and, with `onDrift: Revert`, undone."""
        if not self.analyse():
            return
        if self.check_drift():
            return
        warm = self.keep_warm()
        self.finish(warm)

    def check_drift(self) -> bool:
        """Drift at rest (see `planner.drift`). True: drift was found and this pass stops here."""
        # Earlier versions of this Release are the controller's own leftovers (kept warm, then deleted
        # by `keep_warm`), not drift.
        warm_images = frozenset(
            h.backend_image for h in self.st.history if h.backend_image and h.revision < self.st.revision
        )
        found = drift_rules.detect(self.spec, self.st, self.obs, self.ctx.namespace, self.ctx.name, warm_images)
        previous = find(self.st.conditions, ConditionType.DRIFTED)
        if not found.drifted:
            if previous is not None and previous.status == "True":
                self.cond(ConditionType.DRIFTED, "False", "InSync", "AWS matches the Release again")
                self.event("DriftResolved", "AWS matches the Release again")
            return False
        revert = self.spec.rollback.on_drift == DriftAction.REVERT
        text = found.message
        if previous is None or previous.status != "True" or previous.message != text:
            self.drifted = found.resources
            verb = "reverting" if revert else "reported only (onDrift: Report)"
            self.event("DriftDetected", f"{text}; {verb}", warning=True)
        self.cond(ConditionType.DRIFTED, "True", "DriftReverting" if revert else "DriftDetected", text)
        if revert:
            self.actions += found.revert
            self.wait(POLL)
        return True

