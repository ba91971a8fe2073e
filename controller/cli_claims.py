"""`release-controller handover`: hand the AWS resources one Release owns to another, explicitly.

Claims (controller/claims.py) make one Release the owner of each ECS service, listener and
distribution it names. A handover rewrites the holder of the current owner's claims to the new
Release; from its next pass the old owner says Conflict and changes nothing, and the new one
rolls out. Both Releases must exist: deleting the owner is the other way to free its claims.
"""

from __future__ import annotations

from typing import Any

from controller.api.release import ReleaseSpec
from controller.claims import Claims, Holder, resources_of
from controller.cli_verbs import CliError, get_release


def handover(api_client: Any, releases: Any, namespace: str, name: str, to: str, claims_namespace: str) -> str:
    """Move `namespace/name`'s claims to `to` (`[namespace/]name`); returns the line to print."""
    target_ns, _, target_name = to.rpartition("/")
    target_ns = target_ns or namespace
    current = get_release(releases, namespace, name)
    new = get_release(releases, target_ns, target_name)
    spec = ReleaseSpec.model_validate(current.get("spec") or {})
    claims = Claims(api_client, releases, claims_namespace)
    moved = claims.hand_over(
        resources_of(spec),
        Holder(namespace, name, current["metadata"]["uid"]),
        Holder(target_ns, target_name, new["metadata"]["uid"]),
    )
    if not moved:
        raise CliError(f"{namespace}/{name} owns none of the resources it names: nothing to hand over")
    return (f"handed {', '.join(moved)} from {namespace}/{name} to {target_ns}/{target_name}: "
            f"{name} now changes nothing there; {target_name} takes over on its next pass")
