"""Drift: what AWS shows of a steady Release that its spec does not say, and how to put it back. Pure.

Checked only on a Release at rest (phase Succeeded: no rollout in progress, so a canary task set
or a split weight is a step, never drift). Desired state at rest:

    backend (task sets)  one task set runs the spec's image, PRIMARY, at 100% scale; no other task
                         set, except the previous version kept warm inside the rollback window
    backend (ECS)        the service's task definition runs the spec's image
    listener             all weight on the stable target group
    frontend             the origin path is the spec's version's; no staging traffic
    flags                the published document is the spec's

`detect` names each difference (the resource and a message a person can act on) and the actions
that restore the desired state, in a safe order: capacity first (the spec's task set created or
scaled to 100%), traffic next (weights, primary), leftovers last. Like the rest of the planner, it
returns only what differs, so a Revert converges over a few passes as AWS shows each step landed.
This module must not decide whether to revert (`rollback.onDrift` is read by `core`).
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.api.release import ReleaseSpec, ReleaseStatus
from controller.planner.actions import (
    Action,
    DisableStaging,
    EnsureTaskSet,
    UpdateServiceImage,
    external_id_for,
)
from controller.planner import identity
from controller.planner.fleet import SCALE_TOLERANCE, STEADY, Fleet, fleet
from controller.planner.tiers import origin_path, publish_flags, staging_weight, switch_origin
from controller.planner.world import Observation, Service, TaskSet

RESOURCES = ("taskset", "service", "listener", "origin", "staging", "flags")
"""The `resource` label values of `release_controller_drift_detected_total`."""


@dataclass(frozen=True)
class Difference:
    resource: str  # one of RESOURCES
    message: str


@dataclass(frozen=True)
class Drift:
    differences: tuple[Difference, ...] = ()
    revert: tuple[Action, ...] = ()

    @property
    def drifted(self) -> bool:
        return bool(self.differences)

    @property
    def resources(self) -> tuple[str, ...]:
        return tuple(sorted({d.resource for d in self.differences}))

    @property
    def message(self) -> str:
        return "; ".join(d.message for d in self.differences)


def detect(
    spec: ReleaseSpec,
    status: ReleaseStatus,
    obs: Observation,
    namespace: str,
    name: str,
    warm_images: frozenset[str] = frozenset(),
) -> Drift:
    """Differences between `obs` and the spec at rest, and the actions that undo them.

    `warm_images` are images of earlier versions that may still run (the rollback window).

    Worked example: someone moved 30% of traffic to the green target group by hand. The listener
    shows {blue: 70, green: 30}; the result is one Difference("listener", "listener weights
    blue 70, green 30: want all on blue") and one SetListenerWeights({blue: 100, green: 0}).
    """
    differences: list[Difference] = []
    revert: list[Action] = []
    service = obs.service
    image = spec.backend.image
    ecs = spec.backend.ecs
    f = fleet(spec, status, obs, namespace, name)
    capacity_ready = True
    strangers: list[TaskSet] = []
    if service is not None and service.deployment_controller == "ECS":
        if service.image is not None and service.image != image:
            differences.append(Difference("service", f"service {service.name} runs {service.image}, spec says {image}"))
            revert.append(UpdateServiceImage(ecs.cluster, ecs.service, ecs.container_name, image))
    elif service is not None:
        capacity_ready, strangers = _task_sets(spec, f, service, namespace, name, warm_images, differences, revert)
    if f.listener is not None and f.stable_tg is not None and not f.weights_are(0):
        seen = ", ".join(f"{_short(tg)} {w}" for tg, w in sorted(f.listener.weights.items()))
        differences.append(Difference("listener", f"listener weights {seen}: want all on {_short(f.stable_tg)}"))
        if capacity_ready:
            revert += f.set_weights(0)
    if service is not None and service.deployment_controller != "ECS" and capacity_ready:
        # Leftovers go last, once traffic is on the spec's task set: drained, then deleted.
        for t in strangers:
            revert += f.delete(t, drain=True)
    more, undo = _frontend_and_flags(spec, obs, namespace, name)
    return Drift(tuple(differences + more), tuple(revert + undo))


def _task_sets(
    spec: ReleaseSpec, f: Fleet, service: Service, namespace: str, name: str, warm_images: frozenset[str],
    differences: list[Difference], revert: list[Action],
) -> tuple[bool, list[TaskSet]]:
    """Task-set drift (EXTERNAL controller): the spec's task set at 100% and primary, no strangers.
    Appends to `differences` and `revert`; returns (capacity ready, the strangers to delete last)."""
    image = spec.backend.image
    ecs = spec.backend.ecs
    capacity_ready = True
    ours = identity.running(service.task_sets, namespace, name, image)
    if ours is None:
        capacity_ready = False
        differences.append(Difference("taskset", f"no task set runs {image}"))
        revert.append(EnsureTaskSet(
            cluster=ecs.cluster, service=ecs.service, external_id=external_id_for(namespace, name, image),
            container_name=ecs.container_name, image=image, target_group_arn=f.stable_tg,
            container_port=None, scale_percent=100.0,
        ))
    else:
        if abs(ours.scale_percent - 100.0) > SCALE_TOLERANCE:
            capacity_ready = False
            differences.append(Difference(
                "taskset", f"task set {ours.id} ({image}) at {ours.scale_percent:g}% scale, want 100%"))
            revert.append(f.scale(ours, 100.0))
        elif ours.stability != STEADY:
            capacity_ready = False
        if ours.status != "PRIMARY":
            primary = service.primary
            now = f"{primary.id} running {primary.image}" if primary is not None else "none"
            differences.append(Difference("taskset", f"task set {ours.id} ({image}) is not primary (primary: {now})"))
            if capacity_ready:
                revert.append(f.make_primary(ours))
    strangers = [
        t for t in service.task_sets
        if ours is None or t.id != ours.id
        if t.image is None or t.image not in warm_images
    ]
    for t in strangers:
        differences.append(Difference(
            "taskset", f"unexpected task set {t.id} running {t.image or t.task_definition} at {t.scale_percent:g}%"))
    return capacity_ready, strangers


def _frontend_and_flags(
    spec: ReleaseSpec, obs: Observation, namespace: str, name: str
) -> tuple[list[Difference], list[Action]]:
    """The origin path, staging traffic and published flags at rest (checked after the backend)."""
    differences: list[Difference] = []
    revert: list[Action] = []
    fe = spec.frontend
    if fe is not None and obs.frontend is not None:
        want = origin_path(spec)
        assert want is not None
        if obs.frontend.origin_path != want:
            differences.append(Difference(
                "origin", f"origin {fe.cloudfront.origin_id} path is {obs.frontend.origin_path or '(none)'}, want {want}"))
            revert.append(switch_origin(spec))
        if staging_weight(obs, None) > 0:
            differences.append(Difference(
                "staging", f"staging distribution takes {staging_weight(obs, None)}% of viewers with no frontend canary running"))
            revert.append(DisableStaging(fe.cloudfront.distribution_id))
    flags = publish_flags(spec, obs, namespace, name)
    if flags is not None:
        live = dict(obs.flags) if obs.flags is not None else {}
        want_flags = dict(flags.flags)
        keys = sorted(k for k in set(live) | set(want_flags) if live.get(k) != want_flags.get(k))
        differences.append(Difference("flags", f"published flags differ from the spec in: {', '.join(keys) or '(document)'}"))
        revert.append(flags)
    return differences, revert


def _short(arn: str) -> str:
    """A target group's name from its ARN, for messages.

    >>> _short("arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/blue/1")
    'blue'
    """
    parts = arn.split("/")
    return parts[-2] if len(parts) >= 3 else arn
