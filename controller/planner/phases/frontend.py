"""Phase: the frontend tier, after the backend is promoted and the flags are published.

The frontend moves only when the backend that serves traffic satisfies its `requiresBackend`
(Compatible) and, with an API contract, when that backend serves every operation it uses (the
contract gate; the reconciler checks it and hands the result in `ctx.contract`). Then either the
origin path is switched in one step, or the CloudFront staging canary walks its steps (staging
weights, pauses) and is promoted onto the primary distribution.
"""

from __future__ import annotations

from controller.api.reasons import Reason
from controller.api.release import ConditionType, Phase, ReleaseStatus
from controller.planner.actions import DisableStaging, PromoteStaging, SetStagingWeight
from controller.planner.conditions import find
from controller.planner.draft import Draft, Inputs, Result
from controller.planner.phases.rollback import waiting_on_aws
from controller.planner.phases.start import REFUSED_RECHECK
from controller.planner.phases.walker import pause_holds
from controller.planner.steps import PauseStep, SetStep
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
        d.cond(ConditionType.PROGRESSING, "False", Reason.INCOMPATIBLE_BACKEND, fs.message)
        d.cond(ConditionType.READY, "False", Reason.INCOMPATIBLE_BACKEND, fs.message)
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
        d.cond(ConditionType.PROGRESSING, "True", Reason.WAITING, text)
        d.cond(ConditionType.READY, "False", Reason.ROLLOUT_IN_PROGRESS, text)
        d.update(message=f"frontend held: {text}")
        d.wait(10.0)
        return False
    if check.problems:
        text = (
            f"frontend {fe.version} uses API operations that backend {serving} does not serve: "
            + "; ".join(check.problems)
        )
        d.cond(ConditionType.COMPATIBLE, "False", Reason.API_CONTRACT_BROKEN, text)
        d.cond(ConditionType.PROGRESSING, "False", Reason.API_CONTRACT_BROKEN, text)
        d.cond(ConditionType.READY, "False", Reason.API_CONTRACT_BROKEN, text)
        if d.st.message != f"frontend held: {text}":
            d.event(Reason.API_CONTRACT_BROKEN, text, warning=True)
        d.update(message=f"frontend held: {text}")
        d.wait(REFUSED_RECHECK / 2)
        return False
    text = f"backend {serving} serves every API operation frontend {fe.version} uses"
    d.cond(ConditionType.COMPATIBLE, "True", Reason.COMPATIBLE, f"{fs.message}; {text}" if fs.message else text)
    return True


def frontend_canary(d: Draft) -> bool:
    """CloudFront continuous deployment: staging weights stepped up, then promotion. True once the
    primary serves the new origin path and staging takes no traffic."""
    fe = d.spec.frontend
    assert fe is not None
    cf = fe.cloudfront
    want = origin_path(d.spec)
    assert want is not None
    steps = frontend_canary_plan(d.spec)
    n = len(steps)
    index = d.st.frontend.current_step
    if index is None:
        index = 0
        d.frontend(current_step=0, canary_weight=0)
        d.update(step_started_at=d.now)
        d.event(Reason.FRONTEND_CANARY, f"frontend {fe.version}: continuous deployment in {n} steps, staging at {want}")
    d.frontend(canary_weight=staging_weight(d.obs, want))
    live_path = d.obs.frontend.origin_path if d.obs.frontend is not None else None
    advance_pause = False
    if d.inp.promote and index < n:
        step_now = steps[index]
        if isinstance(step_now, PauseStep) and step_now.duration is None:
            advance_pause = True
        else:
            d.event(Reason.PROMOTE_FULL, f"promote requested: skipping frontend steps {index + 1}..{n}")
            index = n
            d.frontend(current_step=n)
    while index < n and live_path != want:
        step = steps[index]
        label = f"frontend step {index + 1}/{n} {step.label}"
        held = step if isinstance(step, SetStep) else next(
            (s for s in reversed(steps[:index]) if isinstance(s, SetStep)), None)
        if held is not None and not staged_at(d.obs, want, held.canary_weight):
            d.actions.append(SetStagingWeight(cf.distribution_id, cf.origin_id, want, held.canary_weight))
            waiting_on_aws(d, f"{label}: waiting for the staging distribution at {held.canary_weight}%", deadline=False)
            return False
        if isinstance(step, PauseStep):
            if pause_holds(d, step, label, advance_pause):
                return False
            advance_pause = False
        index += 1
        d.frontend(current_step=index)
        d.update(step_started_at=d.now)
        if index < n:
            d.event(steps[index].kind, f"{steps[index].label} (frontend step {index + 1}/{n})")
    return promote_staging(d, live_path, want)


def promote_staging(d: Draft, live_path: str | None, want: str) -> bool:
    """The staging distribution's config onto the primary, then staging off. True once done."""
    fe = d.spec.frontend
    assert fe is not None
    cf = fe.cloudfront
    if live_path != want:
        d.update(phase=Phase.PROGRESSING)
        d.actions.append(PromoteStaging(cf.distribution_id))
        waiting_on_aws(d, f"promoting the staging distribution onto {cf.distribution_id}", deadline=False)
        return False
    if staging_weight(d.obs, None) > 0:
        d.actions.append(DisableStaging(cf.distribution_id))  # promoted: the split is no longer needed
    d.event(Reason.FRONTEND_PROMOTED, f"frontend {fe.version} promoted from staging: all viewers at {want}")
    d.frontend(current_step=None, canary_weight=0)
    return True
