"""The preview route: the listener rule that takes requests carrying a header to the new version.

A rollout at a preview step (`steps.PreviewStep`: the one that opens a preview and the one that
holds it) needs the route; at any other moment it must not exist. Two functions keep that, both
level-triggered from the observation, so a pass repeated or interrupted anywhere converges:

  routed   the walker's check at a preview step (`BackendSteps.landed`): the Release's rule is
           observed forwarding the header to the canary target group; if not, ask for it and wait;
  tidy     the last phase of every pass (`core.decide`): when the status the pass ends with is not
           at a preview step (the step ended by its timer or a promote, the rollout was aborted,
           rolled back, failed its analysis, superseded, deleted, or promoted), or the rule's target
           group is seen with production weight, the Release's rule goes, first of the pass's
           actions, before any weight moves. A spec the pass refused changes nothing.

The rule is the Release's by its tag (owner `<namespace>/<name>`; `controller.aws.preview`), so a
controller restarted mid-preview finds it again, and removes only its own. Pure.
"""

from __future__ import annotations

from controller.api.release import Phase, ReleaseSpec, ReleaseStatus, Verdict
from controller.planner.actions import EnsurePreviewRoute, RemovePreviewRoute
from controller.planner.draft import Draft, Inputs, Result
from controller.planner.phases.rollback import waiting_on_aws
from controller.planner.steps import PreviewStep
from controller.planner.strategy import plan_for


def owner(inp: Inputs) -> str:
    """The tag value naming the Release's preview rule."""
    return f"{inp.ctx.namespace}/{inp.ctx.name}"


def current(spec: ReleaseSpec, status: ReleaseStatus) -> PreviewStep | None:
    """The preview step the rollout is at, None when it is at none (or the preview failed its analysis:
    a rollout paused on a Failed verdict sends no more header traffic to the version that failed)."""
    if status.phase not in (Phase.PROGRESSING, Phase.PAUSED) or status.backend.canary_image is None:
        return None
    if status.strategy is None or status.analysis is not None and status.analysis.verdict == Verdict.FAILED:
        return None
    steps = plan_for(status.strategy, spec).steps
    step = steps[status.current_step] if 0 <= status.current_step < len(steps) else None
    return step if isinstance(step, PreviewStep) else None


def routed(d: Draft, step: PreviewStep, label: str) -> bool:
    """Whether the Release's preview rule is observed as `step` wants it; if not, ask for it and wait."""
    listener = d.obs.listener
    canary_tg = d.fleet.canary_tg
    if listener is None or canary_tg is None:
        return True  # no ALB to route by (a Canary always has one: `strategy.NEEDS_TRAFFIC`)
    mine = listener.preview_of(owner(d.inp))
    if listener.previews_read and len(mine) == 1 and mine[0].routes(step.header_name, step.header_value, canary_tg):
        return True
    d.actions.append(EnsurePreviewRoute(listener.arn, owner(d.inp), step.header_name, (step.header_value,), canary_tg))
    waiting_on_aws(d, f"{label}: waiting for the preview route ({step.header_name} to the new version)")
    return False


def tidy(inp: Inputs, status: ReleaseStatus) -> Result:
    """The Release's preview rule removed when the pass ends anywhere but at a preview step, or at one
    while its target group is seen with production weight (a rollout superseded onto a preview while
    its weights are still on their way back to 0: the route waits for them, `routed` asks for it
    again once they are there). A spec the pass did not take on (refused) changes nothing."""
    d = Draft(inp, status)
    listener = inp.obs.listener
    mine = listener.preview_of(owner(inp)) if listener is not None else ()
    if listener is None or not mine or status.target_hash != inp.hash:
        return d.close()
    clear = all(r.target_group_arn is not None and listener.weight(r.target_group_arn) == 0 for r in mine)
    if current(inp.spec, status) is not None and clear:
        return d.close()
    d.actions.append(RemovePreviewRoute(listener.arn, owner(inp)))
    return d.close()
