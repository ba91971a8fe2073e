"""The backend tier when ECS runs the rollout itself (native mode): follow its service deployment.

One StartNativeDeployment (UpdateService with the `planner.native.NativePlan` configuration), then
ECS walks its lifecycle stages and waits at each PAUSE hook. Each hook is one of the plan's gates:
held like a pause step (its duration, a Passed analysis when analysed, or a promote request) and,
at the promoting gate, the prePromotion hooks; then answered CONTINUE, by hook id, so a repeated
pass or a restarted operator never answers twice nor skips a step. A failed analysis, an abort or
the progress deadline roll back through `rollback.roll_back` (StopServiceDeployment ROLLBACK). The
backend counts as promoted when ECS reports the deployment SUCCESSFUL (after its bake: the rollback
window); only then do flags and the frontend follow. A deployment ECS rolled back by itself (a hook
timed out, alarms, the circuit breaker) is recorded as rolled back, and not tried again.
"""

from __future__ import annotations

from controller.api.reasons import Reason
from controller.api.release import Phase
from controller.planner.actions import AnswerNativeHook, StartNativeDeployment
from controller.planner.draft import Draft
from controller.planner.native import NativeRefusal, native_plan
from controller.planner.phases import hooks, rollback
from controller.planner.phases.rollback import waiting_on_aws
from controller.planner.phases.walker import pause_holds
from controller.planner.steps import PauseStep
from controller.planner.strategy import resolve

NATIVE_POLL = 2.0
"""While ECS moves between gates: a stage takes seconds (a traffic shift) to minutes (a scale-up)."""


def native_rollout(d: Draft) -> bool:
    """Start ECS's deployment once, answer its gates, and follow it. True once it succeeded (the
    caller records the promotion)."""
    service = d.obs.service
    assert service is not None
    spec, image = d.spec, d.spec.backend.image
    plan = native_plan(spec, d.st.strategy or resolve(spec), has_test_listener=service.test_listener)
    if isinstance(plan, NativeRefusal):
        waiting_on_aws(d, plan.message, NATIVE_POLL)  # refused at the start; steps edited since: deadline
        return False
    deployment = service.native
    ours = deployment is not None and deployment.target_image == image
    if not ours:
        if d.st.current_step > 0:
            rollback.roll_back(d, Reason.DEPLOYMENT_FAILED, "RolledBack",
                               f"the ECS service deployment of {image} was replaced outside this Release",
                               Phase.ROLLED_BACK, issue_actions=False)
            return False
        if not hooks.pre_rollout(d):
            return False  # a preRollout hook has not passed (or failed): the service keeps its revision
        ecs = spec.backend.ecs
        d.actions.append(StartNativeDeployment(ecs.cluster, ecs.service, ecs.container_name, image, plan))
        waiting_on_aws(d, f"starting an ECS {plan.strategy} service deployment", NATIVE_POLL)
        return False
    assert deployment is not None
    if d.st.current_step == 0:
        d.update(current_step=1, step_started_at=d.now)
        d.event(Reason.NATIVE_DEPLOYMENT, f"ECS {plan.strategy} service deployment of {image} under way")
    d.backend(canary_weight=int(round(deployment.production_weight)))
    if deployment.succeeded:
        return True
    if not deployment.active or deployment.rolled_back:
        rollback.roll_back(d, Reason.DEPLOYMENT_FAILED, "RolledBack",
                           f"ECS ended the service deployment of {image} ({deployment.status}) and kept the "
                           "previous revision", Phase.ROLLED_BACK, issue_actions=False)
        return False
    hook = deployment.awaiting
    gate = plan.gate(deployment.stage, deployment.production_weight) if hook is not None else None
    if hook is None or gate is None:
        where = f"ECS service deployment at {deployment.stage or 'its start'}, {deployment.production_weight:g}% " \
                "of production traffic"
        waiting_on_aws(d, where, NATIVE_POLL, deadline=deployment.stage != "BAKE_TIME")
        return False
    step = plan.gates.index(gate) + 1
    if d.st.current_step < step:
        d.update(current_step=step, step_started_at=d.now)
        d.event(Reason.NATIVE_DEPLOYMENT, f"{gate.label} (step {step}/{len(plan.gates)}): ECS waits at {gate.stage}")
    if pause_holds(d, PauseStep(gate.hold, gate.analysed, gate.label), gate.label, d.inp.promote, d.st.step_started_at):
        return False
    if gate.promotes and not hooks.pre_promotion(d):
        return False  # a prePromotion hook has not passed (or failed: rolled back or paused)
    d.actions.append(AnswerNativeHook(deployment.arn, hook.hook_id, "CONTINUE"))
    waiting_on_aws(d, f"{gate.label}: ECS continues from {gate.stage}", NATIVE_POLL)
    return False
