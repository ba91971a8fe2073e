"""A backend tier of several ECS services (issue many-services): each service seen as a Release of
one, and the tier walked as one. Pure.

`members` projects the spec, the status and the observation onto each service (`Member`): the spec
as if the service were the only one, the status with the service's entry of
`status.backend.services` in the single-service fields, the observation with the service's
`ServiceView`. Every rule written for one service (task sets, weights, leftovers, drift) then applies
to each one unchanged. A single-service Release is a tier of one member whose projections are the
spec, the status and the observation themselves, so it moves exactly as it always did.

The tier moves as one (docs/many-services.md, section 2):

- `converge`: a step lands wave by wave (`Backend.waves`): a service's actions are asked only once
  every service it comes after is observed at that step, and the step is done once every service
  shows it (lockstep: the walker starts the next pause's timer only then);
- `promote`: the same for promotion;
- `back_to_stable`: a rollback goes in `Backend.rollback_order`; a service goes back only once every
  service that comes after it is observed with no traffic on the new version;
- a worker (a service without traffic) in a tier of several is canaried by scale: its canary task
  set holds the step's weight as a share of its tasks, the stable one the rest; no listener action.
  At a step with no weight (a blue-green's preview) it runs no new task, and promoted, its old task
  set is scaled to 0: a worker task takes work, so a task of a worker is a share of what it serves.

Worked example, api; mcp and worker after api; the step `setWeight 20`:

    pass 1  api: canary task set at 20%          mcp, worker: nothing yet (api is not at the step)
    pass 2  api: weights 80/20 (canary steady)
    pass 3  mcp: canary at 20%                   worker: canary at 20%
    pass 4  mcp: weights 80/20                   worker: stable task set to 80%
    pass 5  every service shows the step: it is done, and the pause after it starts its timer now
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from controller.api.release import BackendService, ReleaseSpec, ReleaseStatus, ServiceBackendStatus
from controller.planner import serving
from controller.planner.actions import Action
from controller.planner.fleet import SCALE_TOLERANCE, Fleet, fleet
from controller.planner.steps import PROMOTION, SetStep
from controller.planner.world import Observation

SERVICE_FIELDS = frozenset({"stable_image", "stable_version", "canary_image", "canary_weight", "stable_target_group_arn",
                            "previous_image"})
"""The fields of `status.backend` that are each service's own (`ServiceBackendStatus`); the
versions are the tier's."""


@dataclass(frozen=True)
class Member:
    """One service of the tier, as a Release of that one service would see it."""

    service: BackendService
    spec: ReleaseSpec
    status: ReleaseStatus
    obs: Observation
    fleet: Fleet

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def worker(self) -> bool:
        """No traffic of its own: canaried by the share of its tasks."""
        return self.service.traffic is None

    def weight(self) -> int:
        """The rollout's version's share of what this service serves, as observed (`planner.serving`:
        of its listener's traffic, or of a worker's tasks); 0 outside a rollout."""
        canary = self.status.backend.canary_version
        if canary is None:
            return 0
        return next((s.weight for s in serving.backend_serving(self.spec, self.status, self.obs)
                     if s.version == canary), 0)


def members(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, namespace: str, name: str) -> tuple[Member, ...]:
    """The services of the tier in the order written (one service: the Release itself)."""
    if not spec.backend.several:
        only = spec.backend.service_list()[0]
        return (Member(only, spec, status, obs, fleet(spec, status, obs, namespace, name)),)
    out = []
    for s in spec.backend.service_list():
        sp, st, ob = project(spec, s), status_of(status, s), observation_of(obs, s.name)
        out.append(Member(s, sp, st, ob, fleet(sp, st, ob, namespace, name, of=s)))
    return tuple(out)


def project(spec: ReleaseSpec, s: BackendService) -> ReleaseSpec:
    """The spec as if `s` were its only service."""
    backend = spec.backend.model_copy(update={"image": s.image, "ecs": s.ecs, "traffic": s.traffic, "services": None})
    return spec.model_copy(update={"backend": backend})


def entry(status: ReleaseStatus, name: str) -> ServiceBackendStatus | None:
    return next((e for e in status.backend.services if e.name == name), None)


def status_of(status: ReleaseStatus, s: BackendService) -> ReleaseStatus:
    """The status with `s`'s entry in the single-service fields. No entry yet (a rollout that began
    before the tier named `s`): nothing stable is known of it, and its canary is the spec's image
    while a rollout is under way. Its stable version is its own when the entry says (a tier half rolled
    out), else the tier's."""
    e = entry(status, s.name) or ServiceBackendStatus(
        name=s.name, canary_image=s.image if status.backend.canary_image is not None else None)
    backend = status.backend.model_copy(update={
        "stable_image": e.stable_image, "canary_image": e.canary_image, "canary_weight": e.canary_weight,
        "stable_target_group_arn": e.stable_target_group_arn, "services": [],
        "stable_version": e.stable_version or status.backend.stable_version})
    return status.model_copy(update={"backend": backend})


def observation_of(obs: Observation, name: str) -> Observation:
    """The observation with service `name`'s ECS service and listener in the single-service fields."""
    view = obs.view(name)
    return replace(obs, service=view.service, listener=view.listener, services={})


def with_service(status: ReleaseStatus, spec: ReleaseSpec, name: str, **changes: object) -> ReleaseStatus:
    """`status` with service `name`'s own fields changed (`SERVICE_FIELDS`): the single-service fields
    for one service; its entry of `status.backend.services` for several, and the tier's stable image
    and group too when it is the first service (they speak for the head of the tier). The tier's
    canary image is the first service's that has one: the tier is in rollout while any service is."""
    assert set(changes) <= SERVICE_FIELDS, set(changes) - SERVICE_FIELDS
    if not spec.backend.several:
        return status.model_copy(update={"backend": status.backend.model_copy(update=changes)})
    order = [s.name for s in spec.backend.service_list()]
    entries = {e.name: e for e in status.backend.services if e.name in order}
    current = entries.get(name) or ServiceBackendStatus(name=name)
    entries[name] = current.model_copy(update=changes)
    listed = [entries[n] for n in order if n in entries]
    update: dict[str, object] = {"services": listed}
    if name == order[0]:
        update.update({k: v for k, v in changes.items() if k in ("stable_image", "stable_target_group_arn")})
    if "canary_image" in changes:
        # The tier is in rollout while any of its services is: its canary image is the first of theirs.
        update["canary_image"] = next((e.canary_image for e in listed if e.canary_image), None)
    return status.model_copy(update={"backend": status.backend.model_copy(update=update)})


def step_for(m: Member, step: SetStep, several: bool) -> SetStep:
    """The step as service `m` takes it. A worker of a tier of several holds the step's weight as a
    share of its tasks (canary at the weight, stable at the rest), and is promoted with its old task
    set at 0; anything else takes the step as written. Worked example: `setWeight 20` is canary 20%,
    stable 80% for a worker of a tier of several (stable 100% for a service with traffic)."""
    if not several or not m.worker:
        return step
    if step == PROMOTION:
        return replace(step, stable_scale=0.0)
    if 0 < step.canary_weight < 100 and step.stable_scale is not None:
        return replace(step, stable_scale=float(100 - step.canary_weight))
    return step


def _after_all(m: Member, seen: dict[str, bool]) -> bool:
    return all(seen.get(a, False) for a in m.service.after)


def converge(ms: tuple[Member, ...], waves: tuple[tuple[str, ...], ...], step: SetStep) -> tuple[list[Action], bool]:
    """The actions toward `step`, and whether every service shows it.

    A service whose new version is to serve more than it does now is asked only once every service
    it comes after is observed at the step (wave by wave); one whose new version is to serve less (a
    step back: a strategy changed mid-rollout) only once every service that comes after it is
    observed serving no more than the step says (the last wave first, as a rollback goes). Either
    way no service serves more of the new version than one it comes after.
    """
    several = len(ms) > 1
    by = {m.name: m for m in ms}
    at: dict[str, bool] = {}
    out: list[Action] = []
    if several:
        order = [n for wave in reversed(waves) for n in reversed(wave)]
        for n in order:
            m = by[n]
            if m.status.backend.canary_image is None or m.weight() <= step.canary_weight:
                continue  # goes up (or stays, or holds the version it already runs): in the waves below
            # (a follower that already runs the version holds it: it does not go back, so it waits for nothing)
            followers = [x for x in ms if n in x.service.after and x.status.backend.canary_image is not None]
            if all(x.weight() <= step.canary_weight for x in followers):
                acts, shown = _toward(m, step, several)
                out += acts
                at[n] = not acts and shown
            else:
                at[n] = False
    for wave in waves:
        for n in wave:
            if n in at:
                continue
            m = by[n]
            if not _after_all(m, at):
                at[n] = False
                continue
            acts, shown = _toward(m, step, several)
            out += acts
            at[n] = not acts and shown
    return out, all(at.values())


def _toward(m: Member, step: SetStep, several: bool) -> tuple[list[Action], bool]:
    """Service `m`'s actions toward `step` and whether it shows it. A worker of a tier of several
    runs no task of the new version at a step with no weight (a blue-green's preview): a worker task
    takes work, which is serving; its canary task set comes with the first weight, or at promotion."""
    if m.status.backend.canary_image is None:
        # Nothing of this service rolls out (it already runs the tier's version, or is back on the
        # one it had): it holds its stable version, primary, with all its traffic.
        return m.fleet.back_to_stable()
    if several and m.worker and step.canary_weight == 0:
        canary = m.fleet.canary
        if canary is None or canary.scale_percent <= SCALE_TOLERANCE:
            return [], True
        return [m.fleet.scale(canary, 0.0)], False
    s = step_for(m, step, several)
    stable = m.fleet.stable
    if several and m.worker and stable is not None and s.stable_scale is not None and (
            stable.scale_percent + SCALE_TOLERANCE < s.stable_scale):
        # A worker's share is its tasks: its stable task set back to the step's scale first (a
        # superseded Rolling step may have shrunk it), so a new canary never starts above the step.
        return [m.fleet.scale(stable, s.stable_scale)], False
    acts = m.fleet.converge(s)
    return acts, not acts and m.fleet.at(s)


def at(ms: tuple[Member, ...], step: SetStep) -> bool:
    """Whether every service shows `step`."""
    return not short_of(ms, step)


def short_of(ms: tuple[Member, ...], step: SetStep) -> list[str]:
    """The services that do not show `step` (as each takes it: a worker runs nothing new at weight 0)."""
    several = len(ms) > 1
    return [m.name for m in ms if not _toward(m, step, several)[1]]


def promote(ms: tuple[Member, ...], waves: tuple[tuple[str, ...], ...], moved: bool) -> tuple[list[Action], bool]:
    """Promotion wave by wave (a service once those it comes after are promoted); done once every
    service's canary is primary with all its traffic. `moved`: this pass already moved weights, so
    the observation of them no longer holds."""
    several = len(ms) > 1
    by = {m.name: m for m in ms}
    done: dict[str, bool] = {}
    out: list[Action] = []
    for wave in waves:
        for n in wave:
            m = by[n]
            if not _after_all(m, done):
                done[n] = False
                continue
            if m.status.backend.canary_image is None:
                done[n] = True  # already runs the tier's version
                continue
            acts = m.fleet.promote(step_for(m, PROMOTION, several))
            out += acts
            canary = m.fleet.canary
            done[n] = (not acts and not moved and canary is not None and canary.status == "PRIMARY"
                       and m.fleet.weights_are(100))
    return out, all(done.values())


def back_to_stable(ms: tuple[Member, ...], order: tuple[str, ...]) -> tuple[list[Action], bool]:
    """Every service back to its stable version in `order` (`Backend.rollback_order`): a service goes
    back only once each service that comes after it is observed with no traffic on the new version.
    Returns (actions, done)."""
    by = {m.name: m for m in ms}
    back: dict[str, bool] = {}
    out: list[Action] = []
    done_all = True
    for n in order:
        m = by[n]
        dependents = [x.name for x in ms if n in x.service.after]
        if not all(back.get(x, False) for x in dependents):
            back[n] = False
            done_all = False
            continue
        acts, done = m.fleet.back_to_stable()
        out += acts
        done_all = done_all and done
        back[n] = done or off_the_new_version(m.fleet)
    return out, done_all


def off_the_new_version(f: Fleet) -> bool:
    """Whether the observation shows no traffic (a worker: no task) on anything but the stable task set."""
    if f.stable is None:
        return False
    if f.listener is not None and f.stable_tg is not None and f.canary_tg is not None:
        return f.weights_are(0)
    return all(ts.scale_percent <= 0 for ts in (f.canary, *f.others) if ts is not None)

