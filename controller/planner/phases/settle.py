"""Phase: the end of a rollout, and a Succeeded Release at rest.

`keep_warm` keeps the previous backend task set for the plan's window (a rollback is then one
weight change) and deletes it after; `finish` records Succeeded once, with Progressing saying
whether the rollback window is still open, and runs the postPromotion hooks; `drift` (Succeeded
only) compares what AWS shows with the spec (`planner.drift`), reports it and, with `onDrift:
Revert`, undoes it.
"""

from __future__ import annotations

from controller.api.reasons import Reason
from controller.api.release import ConditionType, DriftAction, Phase, ReleaseStatus
from controller.planner import drift as drift_rules
from controller.planner import group, standing
from controller.planner.actions import Action
from controller.planner.conditions import find
from controller.planner.draft import Draft, Inputs, Result
from controller.planner.phases import hooks
from controller.planner.phases.rollback import POLL, waiting_on_aws


def keep_warm(inp: Inputs, status: ReleaseStatus) -> Result:
    """Keep the previous backend for the plan's window, then delete it. `warm` while warm."""
    d = Draft(inp, status)
    if inp.ecs_controller:
        return d.close()
    ms = d.members
    others = [t for m in ms for t in m.fleet.others]
    if not others:
        return d.close()
    promoted = d.st.promoted_at
    window = d.plan.keep_warm
    if promoted is not None and inp.now < promoted + window:
        d.wait((promoted + window - inp.now).total_seconds())
        return d.close(warm=True)
    acts, done = group.back_to_stable(ms, d.spec.backend.rollback_order())
    d.actions += acts
    if acts:
        d.event(Reason.SCALED_DOWN, f"previous backend task set(s) deleted: {', '.join(t.id for t in others)}")
    if not done and not all(m.fleet.weights_are(0) for m in ms):
        # Traffic is still on a leftover (the way back to the stable version from a superseded
        # promotion): the rollout is not done until AWS shows it on the stable task set.
        waiting_on_aws(d, "going back to the stable version: traffic onto its task set")
        return d.close(holds=True)
    if not done:
        d.wait(POLL)
    return d.close()


def finish(inp: Inputs, status: ReleaseStatus, warm: bool) -> Result:
    """Succeeded (once), Ready True, and Progressing: the rollback window or the rollout completed."""
    d = Draft(inp, status)
    now_succeeded = d.st.phase != Phase.SUCCEEDED
    if now_succeeded:
        d.update(phase=Phase.SUCCEEDED, message=summary(d))
        d.record("Succeeded", d.st.message, d.st.backend.stable_version, d.st.backend.stable_image)
        d.event(Reason.SUCCEEDED, f"revision {d.st.revision}: {d.st.message}")
    until = None
    if warm:
        assert d.st.promoted_at is not None
        until = d.st.promoted_at + d.plan.keep_warm
    d.stand(standing.succeeded(d.st.message, until, now_succeeded))
    hooks.post_promotion(d)
    return d.close()


def summary(d: Draft) -> str:
    parts = [f"backend {d.st.backend.stable_version}"]
    if d.spec.frontend is not None:
        parts.append(f"frontend {d.spec.frontend.version}")
    return " and ".join(parts) + " live"


def drift(inp: Inputs, status: ReleaseStatus) -> Result:
    """Drift at rest (see `planner.drift`). `holds`: drift was found and this pass stops here."""
    d = Draft(inp, status)
    st = d.st
    # Earlier versions of this Release are the controller's own leftovers (kept warm, then deleted
    # by `keep_warm`), not drift.
    warm_images = frozenset(h.backend_image for h in st.history if h.backend_image and h.revision < st.revision)
    found = _detect(inp, st, warm_images)
    previous = find(st.conditions, ConditionType.DRIFTED)
    if not found.drifted:
        if previous is not None and previous.status == "True":
            d.cond(ConditionType.DRIFTED, "False", Reason.IN_SYNC, "AWS matches the Release again")
            d.event(Reason.DRIFT_RESOLVED, "AWS matches the Release again")
        return d.close()
    revert = inp.spec.rollback.on_drift == DriftAction.REVERT
    text = found.message
    if previous is None or previous.status != "True" or previous.message != text:
        d.drift = found.resources
        verb = "reverting" if revert else "reported only (onDrift: Report)"
        d.event(Reason.DRIFT_DETECTED, f"{text}; {verb}", warning=True)
    d.cond(ConditionType.DRIFTED, "True", Reason.DRIFT_REVERTING if revert else Reason.DRIFT_DETECTED, text)
    if revert:
        d.actions += found.revert
        d.wait(POLL)
    return d.close(holds=True)


def _detect(inp: Inputs, st: ReleaseStatus, warm_images: frozenset[str]) -> drift_rules.Drift:
    """`drift.detect` for each service of the tier (one service: the Release), the differences and
    the actions that undo them taken once each (the frontend's and the flags' are everyone's)."""
    ns, name = inp.ctx.namespace, inp.ctx.name
    if not inp.spec.backend.several:
        return drift_rules.detect(inp.spec, st, inp.obs, ns, name, warm_images)
    differences: list[drift_rules.Difference] = []
    revert: list[Action] = []
    for m in group.members(inp.spec, st, inp.obs, ns, name):
        e = group.entry(st, m.name)
        warm = warm_images | ({e.previous_image} if e is not None and e.previous_image else set())
        found = drift_rules.detect(m.spec, m.status, m.obs, ns, name, frozenset(warm))
        differences += [x for x in found.differences if x not in differences]
        revert += [a for a in found.revert if a not in revert]
    return drift_rules.Drift(tuple(differences), tuple(revert))
