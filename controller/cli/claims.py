"""`release-controller handover`: hand the AWS resources one Release owns to another, explicitly.

Claims (controller/kube/claims.py) make one Release the owner of each ECS service, listener and
distribution it names. A handover rewrites the holder of the current owner's claims to the new
Release; from its next pass the old owner says Conflict and changes nothing, and the new one
rolls out. Both Releases must exist: deleting the owner is the other way to free its claims.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from controller.api.release import ReleaseSpec
from controller.cli.common import CliError, KubeconfigOpt, NamespaceOpt, console, get_release, namespace_of
from controller.kube.claims import Claims, Holder, resources_of


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


def handover_command(
    name: str,
    to: Annotated[str, typer.Option("--to", help="The Release that takes over: [namespace/]name.")],
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    claims_namespace: Annotated[Optional[str], typer.Option(
        envvar="RELEASE_CONTROLLER_NAMESPACE", help="Where the operator keeps its claims (its own namespace).")] = None,
) -> None:
    """Hand the ECS service, listener and distribution NAME owns to another Release."""
    from controller.kube.claims import claims_namespace as default_claims_namespace
    from controller.kube.client import ReleaseApi, load_api_client

    client = load_api_client(kubeconfig)
    ns = namespace_of(namespace, kubeconfig)
    console.print(handover(client, ReleaseApi(client), ns, name, to, claims_namespace or default_claims_namespace()))

