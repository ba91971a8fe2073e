"""The ways back, shared by the phases that decide to go back (abort, analysis, the deadline).

`roll_back` before promotion (traffic to the stable task set, the canary deleted, or the ECS
service's image restored); `roll_back_frontend` for a failed CloudFront canary; `roll_back_promoted`
inside the keep-warm window (flags, then the frontend, then the backend go back to the last good
revision); `hold_rolled_back` keeps AWS on the stable version until a retry or a new spec. Each
ending is written by `end`: the phase, the message, Progressing and Ready False, one Warning Event.
Also here: `waiting_on_aws`, the wait for a step to land that fails the rollout at its deadline.
"""

from __future__ import annotations

from typing import Any

from controller.api.reasons import Reason
from controller.api.release import FrontendStatus, HistoryEntry, Phase
from controller.planner import standing
from controller.api.types import format_duration
from controller.planner import group, identity
from controller.planner.actions import DisableStaging, StopNativeDeployment, UpdateServiceImage
from controller.planner.decision import Outcome
from controller.planner.draft import Draft
from controller.planner.tiers import origin_path, publish_document, staging_weight, switch_origin
from controller.planner.world import image_version

POLL = 2.0
"""Seconds to the next pass while waiting for AWS to show what was asked (task set running,
weights applied). Short, because each step of a rollout waits on at least one such change."""


def end(d: Draft, phase: Phase, reason: Reason, text: str, event: Reason = Reason.ROLLED_BACK, **changes: Any) -> None:
    """A rollout ends going back: phase and message, Progressing and Ready False, a Warning Event."""
    d.update(phase=phase, message=text, **changes)
    d.stand(standing.held(reason, text, Outcome.ROLLED_BACK if event == Reason.ROLLED_BACK else Outcome.FAILED))
    d.event(event, text, warning=True)
    if d.spec.hooks.on_rollback:
        d.wait(POLL)  # the onRollback hooks start on the next pass (`hooks.on_rollback`)


def deadline_passed(d: Draft) -> bool:
    started = d.st.step_started_at or d.st.rollout_started_at
    return started is not None and d.now - started > d.spec.progress_deadline


def waiting_on_aws(d: Draft, what: str, poll: float = POLL, deadline: bool = True) -> None:
    """A step has not landed yet: poll, or fail once the progress deadline has passed."""
    if deadline and deadline_passed(d):
        # The rollback replaces what this pass asked for so far: those actions move toward the
        # step (a weight onto the canary) and the rollback, decided from the observation, would not
        # undo them.
        d.actions.clear()
        message = f"{what}: no progress for {format_duration(d.spec.progress_deadline)} (progressDeadline)"
        roll_back(d, Reason.PROGRESS_DEADLINE_EXCEEDED, "Failed", message, Phase.FAILED)
        return
    d.stand(standing.waiting(what, d.st.message))
    d.wait(poll)


def roll_back(d: Draft, reason: Reason, result: str, message: str, phase: Phase, issue_actions: bool = True) -> None:
    """Back to the stable version before promotion: traffic first, then the canary goes."""
    if reason != Reason.ABORTED and unsafe(d, message):
        return
    attempted, image = d.st.backend.canary_version, d.st.backend.canary_image
    if issue_actions:
        flip_flags_back(d)
        if d.ecs_controller:
            service = d.obs.service
            stable = d.st.backend.stable_image
            ours = service.native if service is not None else None
            if ours is not None and ours.target_image == image and image is not None:
                # ECS runs it: StopServiceDeployment puts traffic and the revision back.
                if ours.active and not ours.rolled_back:
                    d.actions.append(StopNativeDeployment(ours.arn))
            elif service is not None and stable and service.image != stable:
                ecs = d.spec.backend.ecs
                d.actions.append(UpdateServiceImage(ecs.cluster, ecs.service, ecs.container_name, stable))
        else:
            d.backend(canary_version=None)
            d.every_service(canary_image=None)
            # Every service of the tier goes back, the last wave first (`planner.group`).
            acts, done = group.back_to_stable(d.members, d.spec.backend.rollback_order())
            d.actions += acts
            if not done:
                d.wait(POLL)
    d.backend(canary_version=None, canary_image=None, canary_weight=0)
    d.every_service(canary_image=None, canary_weight=0)
    d.record(result, message, attempted, image)
    text = f"backend {attempted}: {message}; traffic back on {d.st.backend.stable_version}"
    end(d, phase, reason, text, event=Reason.ROLLED_BACK if phase == Phase.ROLLED_BACK else reason)


def roll_back_frontend(d: Draft, reason: Reason, result: str, message: str) -> None:
    """A frontend canary failed or was aborted: staging traffic stops; the backend stays as promoted."""
    fe = d.spec.frontend
    assert fe is not None
    flip_flags_back(d)
    d.actions.append(DisableStaging(fe.cloudfront.distribution_id))
    attempted = d.st.frontend.canary_version or fe.version
    d.record(result, f"frontend {attempted}: {message}", d.st.backend.stable_version, d.st.backend.stable_image)
    d.frontend(canary_version=None, current_step=None, canary_weight=0)
    live = d.st.frontend.stable_version or "the previous version"
    text = f"frontend {attempted}: {message}; all viewers back on frontend {live}, backend stays {d.st.backend.stable_version}"
    end(d, Phase.ROLLED_BACK, reason, text)


def irreversible_passed(d: Draft) -> list[str]:
    """The irreversible preRollout and prePromotion hooks that passed in this rollout, by name."""
    names = {("preRollout", h.name) for h in d.spec.hooks.pre_rollout if h.irreversible}
    names |= {("prePromotion", h.name) for h in d.spec.hooks.pre_promotion if h.irreversible}
    return [h.name for h in d.st.hooks or [] if (h.point, h.name) in names and h.passed_at is not None
            and h.revision == d.st.revision]


def unsafe(d: Draft, message: str) -> bool:
    """An irreversible hook (a migration that cannot be undone) passed in this rollout: an automatic
    rollback would put old code on the new schema, so it pauses instead, Stalled (reason
    RollbackUnsafe) until a person decides: `abort --force` rolls back, a new spec rolls forward.
    True when it did. Traffic stays where it is."""
    passed = irreversible_passed(d)
    if not passed:
        return False
    text = (f"rollback unsafe after irreversible hook {', '.join(passed)}: paused instead of rolling back "
            f"({message}); a person decides: abort --force rolls back, a new spec rolls forward")
    if d.st.message != text:
        d.event(Reason.ROLLBACK_UNSAFE, text, warning=True)
    d.update(phase=Phase.PAUSED, message=text)
    d.stand(standing.unsafe(text))
    return True


def roll_back_promoted(d: Draft, message: str, force: bool = False) -> None:
    """Degradation inside the keep-warm window: the previous version takes the traffic back.
    The frontend goes back first (it may need the newer backend), then the backend. `force`: an
    `abort --force` of a rollback held as unsafe."""
    if not force and unsafe(d, message):
        return
    st = d.st
    prev = next((h for h in reversed(st.history) if h.result == "Succeeded" and h.revision < st.revision), None)
    current = st.backend.stable_version
    f = d.fleet
    old = None
    # Flags first: a flag flip is one small write and the cheapest way back.
    flipped = flip_flags_back(d)
    same_backend = prev is None or prev.backend_image in (None, d.st.backend.stable_image)
    if d.several:
        _roll_back_promoted_tier(d, prev, message, flipped, force)
        return
    if prev is not None and prev.backend_image is not None and not same_backend:
        old = identity.warm_copy(f.others, d.inp.ctx.namespace, d.inp.ctx.name, prev.backend_image)
    if same_backend or old is None:
        roll_back_without_backend(d, prev, message, flipped, same_backend, Reason.ABORTED if force else None)
        return
    assert prev is not None
    roll_back_frontend_origin(d, prev)
    d.backend(
        stable_version=prev.backend_version, stable_image=prev.backend_image,
        stable_target_group_arn=old.target_group_arn or f.canary_tg,
        canary_version=None, canary_image=None, canary_weight=0,
    )
    d.update(promoted_at=None)
    acts, done = d.fleet.back_to_stable()
    d.actions += acts
    if not done:
        d.wait(POLL)
    d.record("RolledBack", message, current, d.spec.backend.image)
    end(d, Phase.ROLLED_BACK, Reason.ABORTED if force else Reason.ANALYSIS_FAILED,
        f"backend {current}: {message}; traffic back on {prev.backend_version}")


def _roll_back_promoted_tier(d: Draft, prev: HistoryEntry | None, message: str, flipped: bool, force: bool) -> None:
    """`roll_back_promoted` for a tier of several services: each service that changed in the last
    rollout goes back to the image it ran before (`previous_image`, kept warm), the last wave first
    (`group.back_to_stable`); only when every one of them still has that task set, else the backend
    stays and the flags go back (as for one service without a warm copy)."""
    ns, name = d.inp.ctx.namespace, d.inp.ctx.name
    current = d.st.backend.stable_version
    back: list[tuple[group.Member, str, str | None]] = []
    for m in d.members:
        e = group.entry(d.st, m.name)
        if e is None or not e.previous_image or e.previous_image == e.stable_image:
            continue
        old = identity.warm_copy(m.fleet.others, ns, name, e.previous_image)
        if old is None:
            roll_back_without_backend(d, prev, message, flipped, False, Reason.ABORTED if force else None)
            return
        back.append((m, e.previous_image, old.target_group_arn or m.fleet.canary_tg))
    if not back or prev is None:
        roll_back_without_backend(d, prev, message, flipped, not back, Reason.ABORTED if force else None)
        return
    # The version each goes back to is its previous image's (its tag), the tier's the first service's:
    # the last Succeeded entry of the history may be older than the images kept warm (a lost status).
    head = d.spec.backend.service_list()[0].name
    versions = {m.name: image_version(image) or prev.backend_version for m, image, _ in back}
    tier_version = versions.get(head) or prev.backend_version
    for m, image, tg in back:
        own = versions[m.name]
        d.service(m.name, stable_image=image, stable_version=None if own == tier_version else own,
                  stable_target_group_arn=tg, canary_image=None, canary_weight=0, previous_image=None)
    d.backend(stable_version=tier_version, canary_version=None, canary_image=None, canary_weight=0)
    d.update(promoted_at=None)
    acts, done = group.back_to_stable(d.members, d.spec.backend.rollback_order())
    d.actions += acts
    if not done:
        d.wait(POLL)
    d.record("RolledBack", message, current, d.spec.backend.image)
    end(d, Phase.ROLLED_BACK, Reason.ABORTED if force else Reason.ANALYSIS_FAILED,
        f"backend {current}: {message}; every service back on {tier_version}")


def roll_back_without_backend(
    d: Draft, prev: HistoryEntry | None, message: str, flipped: bool, same_backend: bool, reason: Reason | None = None,
) -> None:
    """The backend is not going back (unchanged, or its previous version is gone): flags and frontend do."""
    current = d.st.backend.stable_version
    # Flags this rollout changed that AWS already shows back as they were (the flip landed, its
    # status was lost) are rolled back all the same: else the rollout never ends.
    flipped = flipped or flags_already_back(d)
    if not flipped and not frontend_changed(d, prev):
        # Nothing to go back to: the rollout ends Failed (Stalled) with the promoted version serving,
        # for a person to decide; holding it Progressing would never end.
        text = f"backend {current}: {message}; no warm previous version to go back to: {current} keeps serving"
        d.record("Failed", text, current, d.st.backend.stable_image)
        end(d, Phase.FAILED, Reason.ROLLBACK_UNAVAILABLE, text, event=Reason.ROLLBACK_UNAVAILABLE)
        return
    undone = ["feature flags"] if flipped else []
    if roll_back_frontend_origin(d, prev):
        undone.append(f"frontend {d.st.frontend.stable_version}")
    d.record("RolledBack", message, current, d.st.backend.stable_image)
    text = f"{message}; back to the previous revision's {' and '.join(undone)}"
    if not same_backend:
        text += f"; backend {current} stays (no warm previous version)"
    end(d, Phase.ROLLED_BACK, reason or Reason.ANALYSIS_FAILED, text, promoted_at=None)


def roll_back_frontend_origin(d: Draft, prev: HistoryEntry | None) -> bool:
    """The origin path back to the last good revision's frontend, when it differs. True: asked."""
    if not frontend_changed(d, prev):
        return False
    assert prev is not None and prev.frontend_version is not None
    d.actions.append(switch_origin(d.spec, prev.frontend_version))
    d.update(frontend=FrontendStatus(stable_version=prev.frontend_version))
    return True


def frontend_changed(d: Draft, prev: HistoryEntry | None) -> bool:
    """Whether the last good revision ran another frontend than the live one (rollback moves it too)."""
    return (
        d.spec.frontend is not None and prev is not None and bool(prev.frontend_version)
        and prev.frontend_version != d.st.frontend.stable_version
    )


def flip_flags_back(d: Draft) -> bool:
    """Publish the flags live before this rollout, if this rollout changed them. True: asked."""
    if d.st.rollback_flags is None:
        return False
    ctx = d.inp.ctx
    back = publish_document(d.spec, d.obs, ctx.namespace, ctx.name, d.st.rollback_flags)
    if back is None:
        return False
    d.actions.append(back)
    d.event(Reason.FLAGS_ROLLED_BACK, f"feature flags back to: {', '.join(sorted(d.st.rollback_flags)) or '(none)'}",
            warning=True)
    return True


def flags_already_back(d: Draft) -> bool:
    """Whether this rollout changed the flags and AWS shows the ones live before it again."""
    if d.st.rollback_flags is None:
        return False
    ctx = d.inp.ctx
    return publish_document(d.spec, d.obs, ctx.namespace, ctx.name, d.st.rollback_flags) is None


def hold_rolled_back(d: Draft) -> None:
    """RolledBack or Failed for this spec: keep AWS on the stable version until retry or a new spec."""
    if d.st.rollback_flags is not None and d.st.history and d.st.history[-1].result != "Succeeded":
        flip_flags_back(d)  # asked again if the rollback's flag write did not land
    if d.spec.frontend is not None and staging_weight(d.obs, None) > 0:
        d.actions.append(DisableStaging(d.spec.frontend.cloudfront.distribution_id))
    hold_frontend_origin(d)
    if d.ecs_controller:
        native = d.obs.service.native if d.obs.service is not None else None
        if native is not None and native.active and not native.rolled_back and native.target_image and \
                native.target_image != d.st.backend.stable_image and d.st.history and \
                d.st.history[-1].backend_image == native.target_image:
            d.actions.append(StopNativeDeployment(native.arn))  # the rollback's stop did not land: again
            d.wait(POLL)
        return
    acts, done = group.back_to_stable(d.members, d.spec.backend.rollback_order())
    d.actions += acts
    if not done or acts:
        d.wait(POLL)


def hold_frontend_origin(d: Draft) -> None:
    """A rollback's origin switch that did not land is asked again: while AWS still shows the
    frontend rolled back from, the origin goes to the stable one. (Anything else on the origin
    is a hand-made change, which the drift policy covers once a rollout succeeds.)"""
    fe, live = d.spec.frontend, d.obs.frontend
    stable = d.st.frontend.stable_version
    if fe is None or live is None or not stable or stable == fe.version:
        return
    want = origin_path(d.spec, stable)
    if want is not None and live.origin_path == origin_path(d.spec) != want:
        d.actions.append(switch_origin(d.spec, stable))
        d.wait(POLL)
