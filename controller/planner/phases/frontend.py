"""Phase: the frontend tier, after the backend is promoted and the flags are published.

The frontend moves only when the backend that serves traffic satisfies its `requiresBackend`
(Compatible) and, with an API contract, when that backend serves every operation it uses (the
contract gate; the reconciler checks it and hands the result in `ctx.contract`). Then either the
origin path is switched in one step, or the CloudFront staging canary walks its steps (staging
weights, pauses) and is promoted onto the primary distribution.
"""

from __future__ import annotations

from datetime import datetime

from controller.api.reasons import Reason
from controller.api.release import ConditionType, Phase, ReleaseStatus
from controller.planner.actions import DisableStaging, PromoteStaging, SetStagingWeight
from controller.planner import standing
from controller.planner.conditions import find
from controller.planner.draft import Draft, Inputs, Result
from controller.planner.phases.rollback import waiting_on_aws
from controller.planner.phases.start import REFUSED_RECHECK
from controller.planner.phases.walker import TierSteps, walk
from controller.planner.steps import SetStep, Step
from controller.planner.tiers import (
    FrontendStep,
    frontend_canary_plan,
    frontend_step,
    has_contract,
    origin_path,
    staged_at,
    staging_weight,
    switch_origin,
)


def reconcile(inp: Inputs, status: ReleaseStatus) -> Result:
    """Move the frontend to the spec's version. `holds` until it is live (or while it is refused)."""
    d = Draft(inp, status)
    fs = frontend_step(inp.spec, inp.obs, d.st.backend.stable_version)
    compatibility(d, fs)
    if not fs.done and fs.compatible is False:
        d.stand(standing.held(Reason.INCOMPATIBLE_BACKEND, fs.message))
        d.update(message=f"frontend held: {fs.message}")
        d.wait(REFUSED_RECHECK / 2)
        return d.close(holds=True)
    if not fs.done and not contract_gate(d, fs):
        return d.close(holds=True)
    if frontend_canary_plan(inp.spec) and (not fs.done or d.st.frontend.current_step is not None):
        if not frontend_canary(d):
            return d.close(holds=True)
    elif fs.action is not None:
        d.actions.append(fs.action)
        d.frontend(origin_requested=fs.action.origin_path)
        waiting_on_aws(d, f"switching the frontend to {fs.action.origin_path}", deadline=False)
        return d.close(holds=True)
    live(d)
    return d.close()


def compatibility(d: Draft, fs: FrontendStep) -> None:
    """Compatible, from `requiresBackend`, unless the contract gate already said more."""
    known = find(d.st.conditions, ConditionType.COMPATIBLE)
    if known is not None and fs.compatible and known.status == "True" and known.message.startswith(fs.message):
        return  # keep what the contract gate added when the frontend moved
    if fs.compatible is None and (d.spec.frontend is None or d.spec.frontend.api_contract is None):
        d.drop(ConditionType.COMPATIBLE)  # nothing to be compatible with: no stale verdict stays
    if fs.compatible is not None:
        d.cond(
            ConditionType.COMPATIBLE, "True" if fs.compatible else "False",
            Reason.COMPATIBLE if fs.compatible else Reason.INCOMPATIBLE_BACKEND, fs.message,
        )


def live(d: Draft) -> None:
    """The frontend is where the spec wants it: record it (and finish an interrupted switch)."""
    spec = d.spec
    if d.st.frontend.current_step is not None:
        d.frontend(current_step=None, canary_weight=0)  # the canary was dropped from the spec
    fe = spec.frontend
    if fe is not None and d.st.frontend.stable_version != fe.version:
        if d.st.frontend.stable_version is not None:
            want = origin_path(spec)
            if not frontend_canary_plan(spec) and d.st.frontend.origin_requested != want:
                # AWS shows the new path, yet no finished pass asked for it: the one that switched it
                # died before its invalidation. Asked again, the effector only invalidates (once).
                d.actions.append(switch_origin(spec))
            d.event(Reason.FRONTEND_SWITCHED, f"frontend {fe.version} live at {want}")
        d.frontend(stable_version=fe.version)
    d.frontend(canary_version=None, origin_requested=None)


def contract_gate(d: Draft, fs: FrontendStep) -> bool:
    """The API-contract gate: True when the frontend may move (no contract, or it holds).

    The reconciler checks the contract (network I/O) and passes the result in `ctx.contract`;
    a result for another backend version than the one serving is stale and waited out.
    """
    fe = d.spec.frontend
    if fe is None or not has_contract(d.spec):
        return True
    serving = fs.serving or d.st.backend.stable_version or d.spec.backend.version
    check = d.inp.ctx.contract
    if check is None or check.backend_version != serving:
        waiting_on_aws(d, f"checking frontend {fe.version}'s API contract against backend {serving}", deadline=False)
        return False
    if check.error is not None:
        text = f"API contract of frontend {fe.version} not checked against backend {serving}: {check.error}"
        d.cond(ConditionType.COMPATIBLE, "Unknown", Reason.API_CONTRACT_UNAVAILABLE, text)
        d.stand(standing.waiting(text, text))
        d.update(message=f"frontend held: {text}")
        d.wait(10.0)
        return False
    if check.problems:
        text = (
            f"frontend {fe.version} uses API operations that backend {serving} does not serve: "
            + "; ".join(check.problems)
        )
        d.cond(ConditionType.COMPATIBLE, "False", Reason.API_CONTRACT_BROKEN, text)
        d.stand(standing.held(Reason.API_CONTRACT_BROKEN, text))
        if d.st.message != f"frontend held: {text}":
            d.event(Reason.API_CONTRACT_BROKEN, text, warning=True)
        d.update(message=f"frontend held: {text}")
        d.wait(REFUSED_RECHECK / 2)
        return False
    text = f"backend {serving} serves every API operation frontend {fe.version} uses"
    d.cond(ConditionType.COMPATIBLE, "True", Reason.COMPATIBLE, f"{fs.message}; {text}" if fs.message else text)
    return True


class FrontendSteps(TierSteps):
    """The frontend tier: the CloudFront staging distribution's weight; its step state is
    `status.frontend.currentStep` and `status.frontend.stepStartedAt` (a status written before that
    field existed kept the frontend's timer in `status.stepStartedAt`, which is read then)."""

    name = "frontend step"

    def __init__(self, d: Draft, want: str) -> None:
        self.steps = frontend_canary_plan(d.spec)
        self.want = want
        self.live = d.obs.frontend.origin_path if d.obs.frontend is not None else None

    def index(self, d: Draft) -> int:
        return d.st.frontend.current_step or 0

    def started_at(self, d: Draft) -> datetime | None:
        return d.st.frontend.step_started_at or d.st.step_started_at

    def advance(self, d: Draft, index: int, skipped: bool) -> None:
        if skipped:
            d.frontend(current_step=index)
        else:
            d.frontend(current_step=index, step_started_at=d.now)

    def landed(self, d: Draft, step: Step, held: SetStep | None, label: str) -> bool:
        if held is not None and not staged_at(d.obs, self.want, held.canary_weight):
            cf = d.spec.frontend.cloudfront if d.spec.frontend is not None else None
            assert cf is not None
            d.actions.append(SetStagingWeight(cf.distribution_id, cf.origin_id, self.want, held.canary_weight))
            waiting_on_aws(d, f"{label}: waiting for the staging distribution at {held.canary_weight}%", deadline=False)
            return False
        return True

    def more(self, d: Draft) -> bool:
        return self.live != self.want  # the primary already serves the new path: nothing left to stage

    def entered(self, d: Draft, index: int) -> None:
        if index < len(self.steps):
            d.event(self.steps[index].kind, f"{self.steps[index].label} (frontend step {index + 1}/{len(self.steps)})")


def frontend_canary(d: Draft) -> bool:
    """CloudFront continuous deployment: staging weights stepped up, then promotion. True once the
    primary serves the new origin path and staging takes no traffic."""
    fe = d.spec.frontend
    assert fe is not None
    want = origin_path(d.spec)
    assert want is not None
    tier = FrontendSteps(d, want)
    if d.st.frontend.current_step is None:
        d.frontend(current_step=0, canary_weight=0, step_started_at=d.now)
        d.event(Reason.FRONTEND_CANARY,
                f"frontend {fe.version}: continuous deployment in {len(tier.steps)} steps, staging at {want}")
    d.frontend(canary_weight=staging_weight(d.obs, want))
    if not walk(d, tier, d.inp.promote, d.inp.promote_full):
        return False
    return promote_staging(d, tier.live, want)


def promote_staging(d: Draft, live_path: str | None, want: str) -> bool:
    """The staging distribution's config onto the primary, then staging off. True once done."""
    fe = d.spec.frontend
    assert fe is not None
    cf = fe.cloudfront
    if live_path != want:
        d.update(phase=Phase.PROGRESSING)
        staging = d.obs.frontend.staging if d.obs.frontend is not None else None
        if staging is None or staging.origin_path != want:
            # Promoted before any staging step (a promote request skips them all): there is no
            # staging copy of `want` to promote, so the origin switches directly.
            d.actions.append(switch_origin(d.spec))
            waiting_on_aws(d, f"switching the frontend to {want}", deadline=False)
            return False
        d.actions.append(PromoteStaging(cf.distribution_id))
        waiting_on_aws(d, f"promoting the staging distribution onto {cf.distribution_id}", deadline=False)
        return False
    if staging_weight(d.obs, None) > 0:
        d.actions.append(DisableStaging(cf.distribution_id))  # promoted: the split is no longer needed
    d.event(Reason.FRONTEND_PROMOTED, f"frontend {fe.version} promoted from staging: all viewers at {want}")
    d.frontend(current_step=None, canary_weight=0)
    return True
