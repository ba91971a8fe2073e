"""Which task sets and target groups belong to a Release: the one home of that rule. Pure.

A task set the controller makes carries the external id `rc.<namespace>.<name>.<image digest>`
(`actions.external_id_for`), so it is recognised across restarts without any memory. A task set made
outside the controller (before adoption) has no external id and is recognised by the image it
runs. Target groups are the spec's two; the status says which of them the stable task set serves.

The questions differ slightly, and each function says why; they all read the same two facts.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.api.release import ReleaseSpec, ReleaseStatus
from controller.planner.actions import external_id_for
from controller.planner.world import TaskSet

__all__ = ["external_id_for", "find", "running", "serves", "target_groups", "traffic_group", "warm_copy"]


def running(task_sets: Iterable[TaskSet], namespace: str, name: str, image: str) -> TaskSet | None:
    """The task set that runs `image` as the spec's: ours by external id, else one made by hand
    with it; the primary one first (drift: which task set should be the primary)."""
    ext = external_id_for(namespace, name, image)
    candidates = [t for t in task_sets if t.external_id == ext or (t.external_id is None and t.image == image)]
    return next((t for t in candidates if t.status == "PRIMARY"), candidates[0] if candidates else None)


def find(task_sets: Iterable[TaskSet], namespace: str, name: str, image: str | None) -> TaskSet | None:
    """The task set of one role (stable or canary image): ours by external id first, else an
    adopted one (no external id) running the image."""
    if image is None:
        return None
    sets = tuple(task_sets)
    ext = external_id_for(namespace, name, image)
    found = next((t for t in sets if t.external_id == ext), None)
    if found is not None:
        return found
    return next((t for t in sets if t.external_id is None and t.image == image), None)


def serves(primary: TaskSet | None, namespace: str, name: str, image: str) -> bool:
    """Whether the primary task set already serves `image` (adoption, or no backend change): by
    image, or by our external id for it (a task set of ours whose image the observation lacks)."""
    return primary is not None and (primary.image == image or primary.external_id == external_id_for(namespace, name, image))


def warm_copy(task_sets: Iterable[TaskSet], namespace: str, name: str, image: str) -> TaskSet | None:
    """A still-running task set of an earlier version (the keep-warm window's way back): ours by
    external id, or any task set running that image."""
    ext = external_id_for(namespace, name, image)
    return next((t for t in task_sets if t.external_id == ext or t.image == image), None)


def target_groups(spec: ReleaseSpec, status: ReleaseStatus) -> tuple[str | None, str | None]:
    """(stable, canary) target groups: the status's stable group if it is one of the spec's two."""
    traffic = spec.backend.traffic
    if traffic is None:
        return None, None
    pair = (traffic.stable_target_group_arn, traffic.canary_target_group_arn)
    if status.backend.stable_target_group_arn == pair[1]:
        return pair[1], pair[0]
    return pair


def traffic_group(spec: ReleaseSpec, arn: str | None) -> str | None:
    """`arn` when it is one of the spec's two target groups (adoption records which one serves)."""
    traffic = spec.backend.traffic
    if traffic is None or arn is None:
        return None
    return arn if arn in (traffic.stable_target_group_arn, traffic.canary_target_group_arn) else None
