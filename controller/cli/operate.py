"""`run` (the operator process, after the checks in `preflight`) and `crds` (the generated CRD)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

def run(
    namespace: Annotated[list[str], typer.Option("--namespace", "-n", help="Watch this namespace (repeatable).")] = [],  # noqa: B006
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Watch every namespace.")] = False,
    resync: Annotated[float, typer.Option(help="Seconds between drift checks of steady Releases.")] = 30.0,
    liveness_port: Annotated[int, typer.Option(help="Port of /healthz (0: off).")] = 8080,
    metrics_port: Annotated[int, typer.Option(help="Port of /metrics (0: off).")] = 9090,
    # Deprecated, hidden, ignored: kopf peering is gone (the leader Lease of the scope decides which
    # process acts). Accepted so that a Deployment of an earlier release, whose image CD updates
    # without its args, still starts; run_operator logs a warning naming the flag.
    peering: Annotated[Optional[str], typer.Option(
        hidden=True, help="Deprecated and ignored: the leader Lease decides which process acts.")] = None,
    priority: Annotated[Optional[int], typer.Option(
        hidden=True, help="Deprecated and ignored, like --peering.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    log_format: Annotated[str, typer.Option(
        help="json: one JSON object per line (the container's default); text: for a terminal.")] = "text",
    selector: Annotated[Optional[str], typer.Option(
        help="Handle only Releases whose labels match (key=value, key!=value, key, !key; comma-separated): "
             "one shard of a fleet split across Deployments.")] = None,
    tenancy: Annotated[str, typer.Option(
        help="strict: a Release acts only as a ReleasePolicy allows (and a Secret only for the URLs it allows); "
             "open: no tenancy (every Release may move whatever the operator's role reaches).")] = "strict",
) -> None:
    """Run the operator against the current kubeconfig (or in-cluster config)."""
    if not namespace and not all_namespaces:
        raise typer.BadParameter("give --namespace (repeatable) or --all-namespaces")
    if log_format not in ("json", "text"):
        raise typer.BadParameter(f"{log_format!r} is not one of json, text", param_hint="--log-format")
    if tenancy not in ("strict", "open"):
        raise typer.BadParameter(f"{tenancy!r} is not one of strict, open", param_hint="--tenancy")
    if selector is not None:
        from controller.operator.selector import parse_selector

        try:
            parse_selector(selector)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--selector") from exc
    from controller.cli.preflight import check_all

    check_all(liveness_port or None, metrics_port or None)  # a taken port, no cluster, no AWS: one line
    from controller.operator.main import run_operator
    from controller.operator.settings import OperatorSettings

    run_operator(
        OperatorSettings(
            namespaces=tuple(namespace), all_namespaces=all_namespaces, resync_seconds=resync,
            liveness_port=liveness_port or None, metrics_port=metrics_port or None,
            peering=peering, priority=priority, verbose=verbose,
            log_format=log_format, selector=selector, tenancy=tenancy,
        )
    )


def crds(
    kind: Annotated[str, typer.Option(help="Release, or ReleasePolicy (the cluster-scoped tenancy policy).")] = "Release",
) -> None:
    """Print a CustomResourceDefinition generated from the models (the Release's by default)."""
    from controller.api.crd import render, render_policy

    renderers = {"Release": render, "ReleasePolicy": render_policy}
    if kind not in renderers:
        raise typer.BadParameter(f"--kind is one of {', '.join(renderers)}")
    sys.stdout.write(renderers[kind]())
