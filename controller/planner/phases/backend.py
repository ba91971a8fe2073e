"""Phase 2: the backend tier in progress.

`gate` runs first on a rollout in progress: an abort request rolls back (even while paused),
`paused: true` freezes everything including timers, and an unpause shifts the step timer by the
time paused. After the analysis gate, `reconcile` walks the strategy's steps (`steps.Plan`) on task
sets as far as the observation allows, then promotes (the canary takes all traffic and becomes the
primary task set; the target groups swap roles); or, with the ECS deployment controller, makes one
UpdateService and follows ECS's own deployment.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from controller.api.reasons import Reason
from controller.api.release import ConditionType, Phase, ReleaseStatus
from controller.planner import group, identity, standing
from controller.api.types import format_duration
from controller.planner.actions import Action, SetListenerWeights, UpdateServiceImage
from controller.planner.conditions import find
from controller.planner.draft import Draft, Inputs, Result
from controller.planner.fleet import STEADY, Fleet, tasks_keep_stopping
from controller.planner.phases import hooks, native, preview, rollback
from controller.planner.phases.rollback import waiting_on_aws
from controller.planner.phases.start import enter
from controller.planner.phases.walker import TierSteps, walk
from controller.planner.steps import Plan, PreviewStep, SetStep, Step

ECS_POLL = 5.0
"""While an ECS-controller deployment is in progress: ECS needs tens of seconds per task."""


def gate(inp: Inputs, status: ReleaseStatus) -> Result:
    """Abort, pause and resume. `holds`: aborted or paused, the pass stops here."""
    d = Draft(inp, status)
    unsafe = find(d.st.conditions, ConditionType.READY)
    held_unsafe = unsafe is not None and unsafe.reason == Reason.ROLLBACK_UNSAFE and d.st.phase == Phase.PAUSED
    if inp.abort and (d.st.backend.canary_image is not None or held_unsafe) and not inp.ctx.requests.abort_forced:
        passed = rollback.irreversible_passed(d)
        if passed:
            # The backend would go back onto what an irreversible hook changed: only with --force.
            d.event(Reason.ROLLBACK_UNSAFE, f"abort not done: irreversible hook {', '.join(passed)} passed, so going "
                    "back needs a person's informed choice: kubectl release abort --force", warning=True)
            inp = replace(inp, abort=False)
    if inp.abort and held_unsafe and d.st.backend.canary_image is None:
        # Held as unsafe after promotion: the forced abort is the rollback that was refused.
        d.update(paused_at=None)
        rollback.roll_back_promoted(d, "aborted by request (--force)", force=True)
        return d.close(holds=True)
    if inp.abort and d.st.backend.canary_image is not None:
        # Honoured even while paused: abort is the way out of a held rollout.
        d.update(paused_at=None)
        rollback.roll_back(d, Reason.ABORTED, "Aborted", "aborted by request", Phase.ROLLED_BACK)
        return d.close(holds=True)
    if inp.abort and d.st.frontend.current_step is not None:
        d.update(paused_at=None)
        rollback.roll_back_frontend(d, Reason.ABORTED, "Aborted", "aborted by request")
        return d.close(holds=True)
    if inp.abort and deleting(inp) and not d.ecs_controller:
        # Deleted while nothing is named in rollout, yet traffic may still be where a paused rollout
        # left it (pause, then undo: the status names no canary, the old one keeps its 20%): a
        # deletion ends with all traffic on the stable version whatever else was asked, spec.paused
        # included.
        d.update(paused_at=None)
        acts, done = group.back_to_stable(d.members, d.spec.backend.rollback_order())
        d.actions += acts
        if not done:
            d.wait(rollback.POLL)
        d.record("Aborted", "deleted: all traffic back on the stable version", d.st.backend.stable_version,
                 d.st.backend.stable_image)
        rollback.end(d, Phase.ROLLED_BACK, Reason.ABORTED,
                     f"deleted: all traffic back on {d.st.backend.stable_version}")
        return d.close(holds=True)
    if inp.spec.paused:
        if d.st.paused_at is None:
            d.event(Reason.PAUSED, f"spec.paused: holding at step {d.st.current_step + 1}/{d.st.step_count}")
        d.update(phase=Phase.PAUSED, paused_at=d.st.paused_at or d.now)
        d.stand(standing.paused(Reason.PAUSED, "spec.paused is true: holding at the current step", "the rollout is paused"))
        for m in d.members:
            d.actions += _idle_leftovers(m.fleet)
        return d.close(holds=True)
    if d.st.paused_at is not None:
        # Unpaused: timers resume where they stopped, as if the pause had not happened.
        held = d.now - d.st.paused_at
        shifted = hold_timers(d.st.model_copy(update={"paused_at": None}), held)
        d.update(paused_at=None, step_started_at=shifted.step_started_at, hooks=shifted.hooks)
        d.frontend(step_started_at=shifted.frontend.step_started_at)
        d.event(Reason.RESUMED, f"resumed after {format_duration(held)}")
    d.update(phase=Phase.PROGRESSING)
    return d.close()


def deleting(inp: Inputs) -> bool:
    """Whether this pass's abort is the deletion's (`Reconciler.finalize`: token `deleted:<uid>`)."""
    return (inp.ctx.requests.abort or "").startswith("deleted:")


def _idle_leftovers(f: Fleet) -> list[Action]:
    """The deletions a pause still makes: leftovers of an earlier rollout that serve no traffic (a
    superseded canary whose delete was lost just before the pause). Removing them moves no traffic
    and finishes what an earlier pass decided; a pause never leaves three task sets standing."""
    out: list[Action] = []
    for ts in f.others:
        weight = f.listener.weight(ts.target_group_arn) if f.listener and ts.target_group_arn else 0
        if ts.status != "PRIMARY" and (ts.scale_percent <= 0 or weight == 0):
            out += f.delete(ts, drain=True)
    return out


def hold_timers(status: ReleaseStatus, held: timedelta) -> ReleaseStatus:
    """The step timers (backend and frontend) and the timers of hooks under way moved on by `held`,
    as if that time had not passed: after an unpause, and after AWS could not be reached (the
    reconciler calls it when AWS answers again). A paused rollout's timers are held by the pause itself (`paused_at`), so stay as they are."""
    if held <= timedelta(0) or status.paused_at is not None:
        return status
    update: dict[str, object] = {}
    if status.step_started_at is not None:
        update["step_started_at"] = status.step_started_at + held
    if status.frontend.current_step is not None and status.frontend.step_started_at is not None:
        update["frontend"] = status.frontend.model_copy(
            update={"step_started_at": status.frontend.step_started_at + held})
    if any(h.passed_at is None and h.failed_at is None for h in status.hooks or []):
        # A hook is not run while held: its timeout and its next attempt move on by the same time.
        update["hooks"] = [h if h.passed_at is not None or h.failed_at is not None else h.model_copy(update={
            "started_at": h.started_at + held, "next_at": h.next_at + held if h.next_at is not None else None})
            for h in status.hooks or []]
    return status.model_copy(update=update) if update else status


def reconcile(inp: Inputs, status: ReleaseStatus) -> Result:
    """The backend's steps and promotion. `holds` until the backend is promoted."""
    d = Draft(inp, status)
    if d.st.backend.canary_image is None:
        return d.close()  # no backend change in this rollout, or promoted already
    if d.inp.native:
        done = native.native_rollout(d)
        if done:
            promoted(d, None)
    else:
        done = ecs_rollout(d) if d.ecs_controller else task_set_rollout(d)
    return d.close(holds=not done)


class BackendSteps(TierSteps):
    """The backend tier: task sets and ALB weights of each of its services (`planner.group`); its
    step state is `status.currentStep` and `status.stepStartedAt`, one for the tier."""

    name = "step"

    def __init__(self, plan: Plan, members: tuple[group.Member, ...], waves: tuple[tuple[str, ...], ...]) -> None:
        self.plan, self.members, self.waves, self.steps = plan, members, waves, plan.steps
        self.fleet = members[0].fleet

    def index(self, d: Draft) -> int:
        return d.st.current_step

    def started_at(self, d: Draft) -> datetime | None:
        return d.st.step_started_at

    def advance(self, d: Draft, index: int, skipped: bool) -> None:
        d.update(current_step=index, step_started_at=d.now)

    def landed(self, d: Draft, step: Step, held: SetStep | None, label: str) -> bool:
        if isinstance(step, PreviewStep):
            # The new version at full scale with no production weight, on every service with traffic,
            # wave by wave (a worker runs no task of it: no weight, `group._toward`); then the routes.
            acts, landed = group.converge(self.members, self.waves, step.state)
            if acts or not landed:
                d.actions += acts
                waiting_on_aws(d, f"{label}: waiting for the canary task set at full scale, no production weight"
                                  f"{self._short(step.state)}")
                return False
            if not preview.routed(d, step, label):
                return False
            # The smoke tests of the preview run once the route is there (the hold's timer from their end).
            return not step.hold or hooks.preview(d)
        if isinstance(step, SetStep):
            # Wave by wave, and done only once every service shows it (lockstep): the pause after
            # it starts its timer only then (`walker.walk` advances on this answer).
            acts, landed = group.converge(self.members, self.waves, step)
            if acts or not landed:
                d.actions += acts
                waiting_on_aws(d, f"{label}: waiting for the canary task set and weights{self._short(step)}")
                return False
        elif held is not None and not group.at(self.members, held):
            d.actions += group.converge(self.members, self.waves, held)[0]
            waiting_on_aws(d, f"{label}: restoring {held.label}")
            return False
        return True

    def _short(self, step: SetStep) -> str:
        """For several services: which of them do not show the step yet."""
        if len(self.members) < 2:
            return ""
        short = group.short_of(self.members, step)
        return f" ({', '.join(short)})" if short else ""

    def entered(self, d: Draft, index: int) -> None:
        if index < len(self.steps):
            enter(d, index, self.plan)
        else:
            d.event(Reason.PROMOTING, f"steps done: promoting backend {d.st.backend.canary_version}")


def task_set_rollout(d: Draft) -> bool:
    """Walk the plan's steps as far as the observation allows, then promote. True once promoted.

    Every service of the tier (`planner.group`) is cleaned up, walked and promoted; one service is
    the Release itself."""
    ms = d.members
    weights(d, ms)
    for m in ms:
        f = m.fleet
        stopped = tasks_keep_stopping(f.canary)
        if stopped is not None and f.canary is not None:
            # As ECS's deployment circuit breaker: a canary whose tasks keep stopping will not get
            # healthy by waiting; go back before the progress deadline, saying why the tasks stopped.
            of = f"service {m.name}: " if d.several else ""
            message = (f"{of}{len(f.canary.stopped_tasks)} tasks of task set {f.canary.id} stopped, the last: "
                       f"{stopped.describe()}")
            rollback.roll_back(d, Reason.TASKS_STOPPED, "RolledBack", message, Phase.ROLLED_BACK)
            return False
    lost: list[Action] = []
    for m in ms:
        stable_image = m.status.backend.stable_image
        lost += m.fleet.restore_lost_stable(stable_image, identity.external_id_for(
            d.inp.ctx.namespace, d.inp.ctx.name, stable_image) if stable_image else None)
    if lost:
        d.actions += lost
        waiting_on_aws(d, "the stable task set is gone while its target group has traffic: restoring it first")
        return False
    restoring = False
    for m in ms:
        restoring = _leftovers(d, m.fleet) or restoring
    if restoring:
        waiting_on_aws(d, "restoring the stable task set before taking traffic off the old canary")
        return False
    if d.st.current_step == 0 and not hooks.pre_rollout(d):
        return False  # a preRollout hook has not passed (or failed): no task set of the new version yet
    waves = d.spec.backend.waves()
    if not walk(d, BackendSteps(d.plan, ms, waves), d.inp.promote, d.inp.promote_full):
        return False
    if d.st.promoted_at is None and not hooks.pre_promotion(d):
        return False  # a prePromotion hook has not passed (or failed: rolled back or paused)
    return promote(d, ms, waves)


def weights(d: Draft, ms: tuple[group.Member, ...]) -> None:
    """The canary weight each service shows (for several: per service, and the least of those with
    traffic for the tier)."""
    if not d.several:
        d.backend(canary_weight=ms[0].fleet.canary_weight)
        return
    for m in ms:
        d.service(m.name, canary_weight=m.weight())
    shown = [m.weight() for m in ms if not m.worker] or [m.weight() for m in ms]
    d.backend(canary_weight=min(shown))


def _leftovers(d: Draft, f: Fleet) -> bool:
    """Leftovers of an earlier rollout go first, traffic taken off them before they are deleted.
    True while the stable task set must be restored first (its action asked)."""
    unready_canary = (f.canary is None or f.canary.stability != STEADY) and f.canary_weight > 0
    # A leftover that serves in a group with traffic (the old primary, next to the stable task set
    # after a status older than the world) goes only once the stable task set can take its share.
    serving = any(ts.scale_percent > 0 and f.listener is not None and ts.target_group_arn is not None
                  and f.listener.weight(ts.target_group_arn) > 0 for ts in f.others)
    if unready_canary or serving:
        # All traffic goes back to the stable task set only once it is at full scale and steady
        # (a superseded Rolling step may have shrunk it), as in a rollback.
        restore, ready = f.stable_ready()
        if not ready:
            d.actions += restore
            return True
    if unready_canary:
        d.actions += f.set_weights(0)
    if f.stable is not None and any(ts.status == "PRIMARY" for ts in f.others):
        # A leftover may be primary (a superseded promotion): the stable one is primary again
        # before it goes, or the service is left with no primary task set.
        d.actions.append(f.make_primary(f.stable))
    for ts in f.others:
        d.actions += f.delete(ts, drain=True)
    return False


def promote(d: Draft, ms: tuple[group.Member, ...], waves: tuple[tuple[str, ...], ...]) -> bool:
    """Promotion: each canary takes full scale and all traffic, then becomes primary, wave by wave.
    True once every service is promoted."""
    # Not promoted in a pass that took traffic off a canary (it stopped being ready): the
    # observation of its weight no longer holds.
    moved = any(isinstance(a, SetListenerWeights) for a in d.actions)
    acts, done = group.promote(ms, waves, moved)
    if not done:
        d.actions += acts
        waiting_on_aws(d, "promoting: canary to 100% and primary")
        return False
    promoted(d, ms)
    return True


def promoted(d: Draft, ms: tuple[group.Member, ...] | None) -> None:
    version = d.st.backend.canary_version
    if ms is None:
        d.backend(stable_image=d.st.backend.canary_image, canary_image=None)
    for m in ms or ():
        if m.status.backend.canary_image is None:
            continue  # a service of the tier that already ran its version: nothing to promote
        if d.several:
            d.service(m.name, previous_image=m.status.backend.stable_image)
        d.service(m.name, stable_image=m.status.backend.canary_image, canary_image=None, canary_weight=0,
                  stable_target_group_arn=m.fleet.canary_tg)
        if d.several:
            d.service(m.name, stable_version=None)  # the tier's, from now on
    d.backend(stable_version=version, canary_version=None, canary_image=None, canary_weight=0)
    d.update(promoted_at=d.now, current_step=d.st.step_count, analysis=None)
    d.event(Reason.PROMOTED, f"backend {version} promoted: all traffic on it")


def ecs_rollout(d: Draft) -> bool:
    """ECS deployment controller: one UpdateService, then ECS's own deployment (circuit breaker)."""
    service = d.obs.service
    assert service is not None
    image = d.spec.backend.image
    ecs = d.spec.backend.ecs
    if d.st.current_step == 0:
        if service.image != image and not hooks.pre_rollout(d):
            return False  # a preRollout hook has not passed (or failed): the service keeps its image
        if service.image != image:
            d.actions.append(UpdateServiceImage(ecs.cluster, ecs.service, ecs.container_name, image))
            waiting_on_aws(d, "updating the service's task definition", ECS_POLL)
            return False
        d.update(current_step=1, step_started_at=d.now)
    deployments = [dep for dep in service.deployments if dep.image == image]
    deployment = next((dep for dep in deployments if dep.status == "PRIMARY"), deployments[0] if deployments else None)
    if service.image != image or (deployment is not None and deployment.rollout_state == "FAILED"):
        # The circuit breaker rolled the service back itself: record it, do not try again.
        rollback.roll_back(
            d, Reason.DEPLOYMENT_FAILED, "RolledBack",
            f"ECS deployment of {image} failed and was rolled back by the circuit breaker",
            Phase.ROLLED_BACK, issue_actions=False,
        )
        return False
    if deployment is not None and deployment.rollout_state == "IN_PROGRESS":
        waiting_on_aws(
            d, f"ECS deployment {deployment.id}: {deployment.running_count}/{deployment.desired_count} running",
            ECS_POLL,
        )
        return False
    promoted(d, None)
    return True
