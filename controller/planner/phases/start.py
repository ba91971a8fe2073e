"""Phase 1: a world to act on, the user's requests, and the rollout's start (or why it cannot).

`check_world` stops the pass when the ECS service (or the ALB listener) is missing; `take_requests`
acknowledges new promote/abort/retry requests once; `reconcile` adopts what already runs the spec,
starts a rollout to a new spec (superseding one in progress), refuses a spec the service or the live
frontend cannot take, and holds a rolled-back Release until a retry or a new spec.
"""

from __future__ import annotations

from controller.api.reasons import Reason
from controller.api.release import ConditionType, Phase, ReleaseSpec, ReleaseStatus, StrategyType
from controller.planner import group, identity
from controller.planner.actions import DisableStaging
from controller.planner import standing
from controller.planner.conditions import find
from controller.planner.decision import Context, Requests
from controller.planner.native import NativeRefusal, native_plan
from controller.planner.draft import Draft, Inputs, Result
from controller.planner.phases import fit, hooks, rollback
from controller.planner.steps import Plan
from controller.planner.strategy import flags_document, flags_hash, plan_for, resolve
from controller.planner.tiers import origin_path

REFUSED_RECHECK = 60.0
"""A refused change waits for a new spec; this only notices a changed world (say, the service's
deployment controller) without a hot loop."""


def check_world(inp: Inputs, status: ReleaseStatus) -> Result:
    """The service (and the listener) the spec names must exist: else say so, change nothing.

    A world that cannot be read at all never gets here: the reconciler reports it and owns the
    back-off for it. This is the world that was read and lacks what the spec names.
    """
    d = Draft(inp, status)
    obs, spec = inp.obs, inp.spec
    problem: tuple[Reason, str] | None = None
    if spec.backend.several:
        problem = _tier_missing(inp)
    elif obs.service is None or obs.service.status != "ACTIVE":
        ecs = spec.backend.ecs
        problem = (Reason.SERVICE_NOT_FOUND, f"ECS service {ecs.service} in cluster {ecs.cluster} not found or not active")
    elif spec.backend.traffic is not None and obs.listener is None:
        problem = (Reason.LISTENER_NOT_FOUND, f"listener {spec.backend.traffic.listener_arn} not found")
    if problem is None:
        return d.close()
    reason, message = problem
    previous = find(status.conditions, ConditionType.READY)
    # Back off with how long the problem has lasted: 5s at first, at most 5 minutes.
    lasted = 0.0
    if previous is not None and previous.reason == reason and previous.status == "False":
        lasted = (inp.now - previous.last_transition_time).total_seconds()
    d.stand(standing.world_missing(reason, message))
    d.wait(min(300.0, max(5.0, lasted)))
    if previous is None or previous.reason != reason:
        d.event(reason, message, warning=True)
    return d.close(holds=True)


def _tier_missing(inp: Inputs) -> tuple[Reason, str] | None:
    """The first service of a tier of several (or its listener) that is missing, with what is missing."""
    for s in inp.spec.backend.service_list():
        view = inp.obs.view(s.name)
        if view.service is None or view.service.status != "ACTIVE":
            return (Reason.SERVICE_NOT_FOUND,
                    f"service {s.name}: ECS service {s.ecs.service} in cluster {s.ecs.cluster} not found or not active")
        if s.traffic is not None and view.listener is None:
            return Reason.LISTENER_NOT_FOUND, f"service {s.name}: listener {s.traffic.listener_arn} not found"
    return None


def take_requests(spec: ReleaseSpec, status: ReleaseStatus, ctx: Context) -> tuple[Requests, ReleaseStatus]:
    """Acknowledge every new request now, so a stale one never acts on a later rollout.

    Returns which requests this pass honours and the status with them acknowledged. A promote made
    while `paused: true` holds a rollout waits for the unpause instead.
    """
    req, ack = ctx.requests, status.acknowledged
    changes: dict[str, str] = {}
    if req.abort and req.abort != ack.abort:
        changes["abort"] = req.abort
    if req.retry and req.retry != ack.retry:
        changes["retry"] = req.retry
    in_rollout = status.phase in (Phase.PROGRESSING, Phase.PAUSED)
    if req.promote and req.promote != ack.promote and not (spec.paused and in_rollout):
        changes["promote"] = req.promote
    honoured = Requests(promote=changes.get("promote"), abort=changes.get("abort"), retry=changes.get("retry"))
    if changes:
        status = status.model_copy(update={"acknowledged": ack.model_copy(update=changes)})
    return honoured, status


def reconcile(inp: Inputs, status: ReleaseStatus) -> Result:
    """Adopt, start, supersede or retry; or hold a rolled-back Release. `holds`: the pass stops."""
    d = Draft(inp, status)
    st = d.st
    unsupported = fit.several_unsupported(d) if d.several else None
    if unsupported is not None:
        # Checked on every pass, not only when a rollout starts: a step list is tuned mid-rollout
        # without a new rollout, and a tier of several cannot take everything yet.
        refuse(d, *unsupported)
        return d.close(holds=True)
    if st.revision == 0 and st.target_hash is None:
        if runs_spec_backend(inp):
            adopt(d)
        elif not start(d):
            return d.close(holds=True)
    elif st.target_hash != inp.hash:
        if not start(d, superseding=st.phase in (Phase.PROGRESSING, Phase.PAUSED)):
            return d.close(holds=True)
    elif st.phase in (Phase.ROLLED_BACK, Phase.FAILED):
        if not inp.retry:
            rollback.hold_rolled_back(d)
            hooks.on_rollback(d)
            return d.close(holds=True)
        d.event(Reason.RETRY, f"retrying the rollout to backend {inp.spec.backend.version}")
        d.update(target_hash=None)
        if not start(d):
            return d.close(holds=True)
    return d.close()


def runs_spec_backend(inp: Inputs) -> bool:
    """Whether the service already serves the spec's image (observed, not from the status); for a
    tier of several, whether every service serves its own."""
    if inp.spec.backend.several:
        views = [(s, inp.obs.view(s.name).service) for s in inp.spec.backend.service_list()]
        return all(identity.serves(svc.primary if svc is not None else None, inp.ctx.namespace, inp.ctx.name, s.image)
                   for s, svc in views)
    service = inp.obs.service
    assert service is not None
    image = inp.spec.backend.image
    if inp.ecs_controller:
        return service.image == image
    return identity.serves(service.primary, inp.ctx.namespace, inp.ctx.name, image)


def adopt(d: Draft) -> None:
    """First sight of a service that already runs the spec: record it as stable, touch nothing."""
    service, spec = d.obs.service, d.spec
    assert service is not None
    tg = identity.traffic_group(spec, service.primary.target_group_arn if service.primary is not None else None)
    d.update(
        revision=1, target_hash=d.inp.hash, strategy=resolve(spec), phase=Phase.PROGRESSING,
        current_step=0, step_count=0, step_started_at=d.now, rollout_started_at=d.now,
        message=f"adopted backend {spec.backend.version} already running",
    )
    d.backend(
        stable_version=spec.backend.version, stable_image=spec.backend.image, stable_target_group_arn=tg,
        canary_version=None, canary_image=None, canary_weight=0,
    )
    if d.several:
        for m in d.members:
            d.service(m.name, stable_image=m.service.image, stable_target_group_arn=_primary_group_of(m),
                      canary_image=None, canary_weight=0, stable_version=None)
    begin_frontend_target(d)
    d.event(Reason.ADOPTED, f"backend {spec.backend.version} ({spec.backend.image}) is already running")


def refuse(d: Draft, type_: ConditionType, reason: Reason, message: str) -> None:
    before = find(d.st.conditions, ConditionType.PROGRESSING)
    if before is None or before.reason != reason:
        # Once per refusal, not per recheck: the condition holds it meanwhile.
        d.event(reason, message, warning=True)
    if type_ != ConditionType.PROGRESSING:
        d.cond(type_, "False", reason, message)
    d.stand(standing.refused(reason, message))
    # Phase and conditions agree: a refused spec is Failed (Stalled) unless a rollout of an earlier
    # spec is still open; that one stays Progressing/Paused, frozen, until a spec can be rolled out.
    if d.st.phase not in (Phase.PROGRESSING, Phase.PAUSED):
        d.update(phase=Phase.FAILED)
    d.update(message=message)
    d.wait(REFUSED_RECHECK)


def start(d: Draft, superseding: bool = False) -> bool:
    """Begin the rollout to this spec. False when refused (nothing changed but conditions)."""
    service, spec = d.obs.service, d.spec
    assert service is not None
    # Back to the stable version in the middle of a rollout (the canary may already be primary):
    # not a new backend but the way home; the canary becomes a leftover and goes.
    # The same when no canary is recorded but the status's stable task set still runs while another
    # one is primary (a going-home pass whose task sets had not moved yet): rolling "out" the stable
    # image as a canary would take its own task set for the canary and the primary for the stable.
    runs = runs_spec_backend(d.inp)
    home = _going_home(d, runs)
    backend_change = not home and not runs
    refused = fit.refusal(d, backend_change)
    if refused is not None:
        refuse(d, *refused)
        return False
    # Every condition is about the current spec: what a phase said of an earlier one goes (a
    # Healthy verdict of its analysis, a Compatible of its frontend); the phases say it again.
    if superseding and backend_goes_on(d, backend_change):
        d.drop(ConditionType.COMPATIBLE)
        go_on(d)
        return True
    d.drop(ConditionType.HEALTHY, ConditionType.COMPATIBLE)
    if superseding:
        old = d.st.backend.canary_version or d.st.backend.stable_version
        d.record("Superseded", "the spec changed during the rollout", old, d.st.backend.canary_image)
        d.event(Reason.SUPERSEDED, f"rollout to backend {old} superseded by {spec.backend.version}")
    strategy = resolve(spec)
    note = ""
    if backend_change and not d.ecs_controller and all(
            m.obs.service is None or m.obs.service.primary is None for m in d.members):
        strategy, note = StrategyType.FAST, " (nothing runs yet: deploying directly)"
    if d.st.backend.stable_image is None:
        # Not adopted: remember what runs now as the stable version to come back to.
        d.backend(
            stable_image=service.image if d.ecs_controller else (service.primary.image if service.primary else None),
            stable_version=d.st.backend.stable_version or d.obs.backend_version_serving,
            # and the group it serves from (a lost status must not swap the groups' roles)
            stable_target_group_arn=d.st.backend.stable_target_group_arn or _primary_group(d),
        )
        for m in d.members if d.several else ():
            # Each service of a tier the same, into its own entry.
            if m.status.backend.stable_image is None and m.obs.service is not None:
                primary = m.obs.service.primary
                d.service(m.name, stable_image=primary.image if primary is not None else None,
                          stable_version=_tag(primary.image) if primary is not None and primary.image else None,
                          stable_target_group_arn=m.status.backend.stable_target_group_arn or _primary_group_of(m))
        if d.st.revision == 0 and d.st.backend.stable_image is not None:
            # What ran before this Release is its revision 1, as an adoption would have recorded: so
            # the first rollout keeps it warm for the window (and can go back to it) like every later
            # one, instead of taking the untagged task set for drift.
            d.update(revision=1, rollout_started_at=d.now)
            d.record("Succeeded", "running before this Release: adopted as the version to come back to",
                     d.st.backend.stable_version or _tag(d.st.backend.stable_image), d.st.backend.stable_image)
    plan = plan_for(strategy, spec)
    steps = 1 if d.ecs_controller and backend_change else (len(plan.steps) if backend_change else 0)
    if d.inp.native and backend_change:
        native = native_plan(spec, strategy, has_test_listener=service.test_listener)
        steps = len(native.gates) if not isinstance(native, NativeRefusal) else 1
    # The flags live now are what a rollback of this rollout flips back to, first.
    live_flags = dict(d.obs.flags) if d.obs.flags is not None else {}
    rollback_flags = live_flags if live_flags != flags_document(spec) else None
    d.update(
        revision=d.st.revision + 1, target_hash=d.inp.hash, strategy=strategy, phase=Phase.PROGRESSING,
        current_step=0, step_count=steps, step_started_at=d.now, rollout_started_at=d.now, paused_at=None,
        analysis=None, rollback_flags=rollback_flags,
        message=f"rolling out backend {spec.backend.version} with {strategy.value}{note}",
    )
    if backend_change or home:
        d.update(promoted_at=None)
    if backend_change:
        d.backend(canary_version=spec.backend.version, canary_image=spec.backend.image, canary_weight=0)
        for m in d.members if d.several else ():
            # A service of the tier that already runs its image (a tier half rolled out when the
            # status was lost) is its own stable version: only the others roll out.
            primary = m.obs.service.primary if m.obs.service is not None else None
            if m.service.image == m.status.backend.stable_image:
                d.service(m.name, canary_image=None, canary_weight=0)  # its stable version: it goes home
            elif identity.serves(primary, d.inp.ctx.namespace, d.inp.ctx.name, m.service.image):
                d.service(m.name, canary_image=None, canary_weight=0, stable_image=m.service.image,
                          stable_version=spec.backend.version,
                          stable_target_group_arn=_primary_group_of(m) or m.status.backend.stable_target_group_arn)
            else:
                d.service(m.name, canary_image=m.service.image, canary_weight=0)
    else:
        # Same image (flags, frontend or a version label changed): no task set moves.
        d.backend(canary_version=None, canary_image=None, canary_weight=0, stable_version=spec.backend.version)
        for m in d.members if d.several else ():
            d.service(m.name, canary_image=None, canary_weight=0)
        if not home:
            # What serves is the spec's image (the status may be older than the world, after a
            # restart): it is the stable one, in the group it serves from.
            d.backend(stable_image=spec.backend.image,
                      stable_target_group_arn=_primary_group(d) or d.st.backend.stable_target_group_arn)
            for m in d.members if d.several else ():
                d.service(m.name, stable_image=m.service.image, stable_version=None,
                          stable_target_group_arn=_primary_group_of(m) or m.status.backend.stable_target_group_arn)
    begin_frontend_target(d)
    d.stand(standing.started(d.st.message))
    d.event(Reason.ROLLOUT_STARTED, f"revision {d.st.revision}: {d.st.message}")
    if backend_change and not d.ecs_controller and plan.steps:
        enter(d, 0, plan)
    return True


def backend_goes_on(d: Draft, backend_change: bool) -> bool:
    """Whether a new spec leaves the backend rollout in progress as it is (same image, version and
    strategy: only the frontend or the flags changed): then its steps, timers and analysis go on."""
    st, spec = d.st, d.spec
    if d.several and any(m.status.backend.canary_image != m.service.image for m in d.members):
        return False
    return (backend_change and not d.ecs_controller and st.backend.canary_image == spec.backend.image
            and st.backend.canary_version == spec.backend.version and st.strategy == resolve(spec)
            and st.promoted_at is None)


def go_on(d: Draft) -> None:
    """A spec change for the other tiers in the middle of a backend rollout: the backend's step,
    timers, analysis and revision stay (each tier's steps restart only when its own spec changes);
    the frontend and flags take the new spec's targets."""
    spec = d.spec
    before = d.st.frontend.canary_version or d.st.frontend.stable_version
    changed = []
    if spec.frontend is not None and before != spec.frontend.version:
        changed.append(f"frontend {before or '(none)'} -> {spec.frontend.version}")
    if d.st.flags_hash != flags_hash(spec) and (d.st.flags_hash is not None or spec.feature_flags):
        changed.append("feature flags")
    d.update(target_hash=d.inp.hash)
    begin_frontend_target(d)
    step = f"step {d.st.current_step + 1}/{d.st.step_count}" if d.st.current_step < d.st.step_count else "promotion"
    d.event(Reason.SPEC_UPDATED, f"spec changed ({', '.join(changed) or 'other tiers'}): the backend rollout to "
            f"{spec.backend.version} goes on at {step}")


def _going_home(d: Draft, runs: bool) -> bool:
    """Whether the spec is the stable version the rollout comes from (back home mid-rollout), for
    every service of the tier."""
    ns, name = d.inp.ctx.namespace, d.inp.ctx.name
    if not d.several:
        service = d.obs.service
        assert service is not None
        stable_runs = identity.find(service.task_sets, ns, name, d.st.backend.stable_image)
        return d.spec.backend.image == d.st.backend.stable_image and (
            d.st.backend.canary_image is not None or (stable_runs is not None and not runs))
    ms = d.members
    if any(m.service.image != m.status.backend.stable_image for m in ms):
        return False
    running = any(m.obs.service is not None and identity.find(
        m.obs.service.task_sets, ns, name, m.status.backend.stable_image) is not None for m in ms)
    return d.st.backend.canary_image is not None or (running and not runs)


def _primary_group_of(m: group.Member) -> str | None:
    """The target group service `m`'s primary task set serves from, if it is one of its two."""
    primary = m.obs.service.primary if m.obs.service is not None else None
    return identity.traffic_group(m.spec, primary.target_group_arn if primary is not None else None)


def _primary_group(d: Draft) -> str | None:
    """The spec's target group the primary task set serves from, if it is one of the two."""
    primary = d.obs.service.primary if d.obs.service is not None else None
    return identity.traffic_group(d.spec, primary.target_group_arn if primary is not None else None)


def _tag(image: str) -> str:
    """The tag of an image as its version label, when nothing better is known.

    >>> _tag("repo/app:1.2.3"), _tag("repo/app@sha256:ab")
    ('1.2.3', 'repo/app@sha256:ab')
    """
    name, _, tag = image.rpartition(":")
    return tag if name and "/" not in tag and "@" not in image else image


def begin_frontend_target(d: Draft) -> None:
    fe = d.spec.frontend
    live = d.st.frontend.stable_version
    if live is None and fe is not None and d.obs.frontend is not None and d.obs.frontend.origin_path == origin_path(d.spec):
        # First sight of a distribution that already serves the spec's frontend: it is the stable
        # one, and this rollout has nothing to do for it (not a "canary" of it).
        live = fe.version
        d.frontend(stable_version=live)
    target = fe.version if fe is not None and fe.version != live else None
    d.frontend(canary_version=target)
    if d.st.frontend.current_step is not None:
        # A frontend canary of a superseded rollout: its staging traffic stops; the new one starts over.
        if fe is not None:
            d.actions.append(DisableStaging(fe.cloudfront.distribution_id))
        d.frontend(current_step=None, canary_weight=0)


def enter(d: Draft, index: int, plan: Plan) -> None:
    step = plan.steps[index]
    d.event(step.kind, f"{step.label} (step {index + 1}/{len(plan.steps)})")
