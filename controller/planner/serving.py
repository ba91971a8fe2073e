"""What serves, as AWS reports it: the versions receiving traffic and their weights. Pure.

The status's stable and canary fields say where the rollout *is going*; this says what the last
observation *showed*, whatever the spec or the rollout say, at every phase (paused, superseded,
rolled back, held) included. `core.decide` writes it on every pass, so `get`, `list`, `status` and
the metrics can never show a version at 0% that AWS sends a fifth of the traffic to.

Worked example: the listener sends 80 to blue and 20 to green; blue holds the 1.0.0 task set at
100% and green one of 2.0.0 at 20%: `[ServingVersion("1.0.0", 80), ServingVersion("2.0.0", 20)]`,
whatever the status's canary says (3.0.0, say, after a change while paused). Two task sets in one
target group share its weight by their scale (a Rolling rollout without an ALB split).

Native mode (ECS's own CANARY, LINEAR, BLUE_GREEN): ECS reports the production weight of the
target revision and of each source revision; mid-canary `1.0.0=80%,2.0.0=20%`, before the first
shift `1.0.0=100%`, though ECS's PRIMARY deployment is the target from the start.
"""

from __future__ import annotations

from controller.api.release import ReleaseSpec, ReleaseStatus, ServingVersion
from controller.planner.world import Observation, TaskSet


def version_of(image: str | None, spec: ReleaseSpec, status: ReleaseStatus) -> str:
    """The version label of `image`: from what the Release knows of it, else the image's tag.

    >>> from controller.api.release import BackendStatus
    >>> st = ReleaseStatus(backend=BackendStatus(stable_image="r/app:build-7", stable_version="1.0.0"))
    >>> spec = ReleaseSpec.model_validate({"environment": "staging", "backend": {"version": "2.0.0",
    ...     "image": "r/app:2.0.0", "ecs": {"cluster": "c", "service": "s", "containerName": "api"}}})
    >>> version_of("r/app:build-7", spec, st), version_of("r/app:2.0.0", spec, st), version_of("r/app:3.1.0", spec, st)
    ('1.0.0', '2.0.0', '3.1.0')
    """
    if image is None:
        return "unknown"
    known = {spec.backend.image: spec.backend.version}
    known.update({h.backend_image: h.backend_version for h in status.history if h.backend_image})
    if status.backend.canary_image and status.backend.canary_version:
        known[status.backend.canary_image] = status.backend.canary_version
    if status.backend.stable_image and status.backend.stable_version:
        known[status.backend.stable_image] = status.backend.stable_version
    if image in known:
        return known[image]
    name, _, tag = image.rpartition(":")
    return tag if name and "/" not in tag and "@" not in image else image


def backend_serving(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation) -> list[ServingVersion]:
    """The backend versions receiving traffic, largest share first (see the module docstring)."""
    service = obs.service
    if service is None:
        return []
    shares: dict[str, float] = {}
    if service.native is not None:
        # ECS's own deployment: each revision's production weight as ECS reports it, never the
        # PRIMARY deployment's (the target's from the start, at 0% until ECS shifts).
        for image, weight in service.native.production_shares():
            version = version_of(image, spec, status)
            shares[version] = shares.get(version, 0.0) + weight
        return _ranked(shares)
    if service.deployment_controller == "ECS":
        return [ServingVersion(version=version_of(service.image, spec, status), weight=100)] if service.image else []
    groups: dict[str | None, list[TaskSet]] = {}
    for ts in service.task_sets:
        if ts.scale_percent > 0:
            groups.setdefault(ts.target_group_arn, []).append(ts)
    listener = obs.listener
    total = sum(listener.weights.values()) if listener is not None else 0
    for group, sets in groups.items():
        if listener is not None and group is not None and total > 0:
            weight = 100.0 * listener.weight(group) / total
        elif listener is None or total == 0:
            weight = 100.0 / len(groups)  # no ALB split: every serving group alike
        else:
            weight = 0.0
        scale = sum(ts.scale_percent for ts in sets)
        for ts in sets:
            version = version_of(ts.image, spec, status)
            shares[version] = shares.get(version, 0.0) + weight * ts.scale_percent / scale
    return _ranked(shares)


def _ranked(shares: dict[str, float]) -> list[ServingVersion]:
    out = [ServingVersion(version=v, weight=round(w)) for v, w in shares.items() if round(w) > 0]
    return sorted(out, key=lambda s: (-s.weight, s.version))


def summary(serving: list[ServingVersion]) -> str:
    """One word for a printer column (`kubectl get` and `kubectl release list` print the same):
    `1.0.0=80%,2.0.0=20%`.

    >>> summary([ServingVersion(version="1.0.0", weight=80), ServingVersion(version="2.0.0", weight=20)])
    '1.0.0=80%,2.0.0=20%'
    """
    return ",".join(f"{s.version}={s.weight}%" for s in serving)
