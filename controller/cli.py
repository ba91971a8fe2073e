"""`release-controller` and `kubectl release`: run the operator, inspect and steer Releases.

Steering verbs (promote, abort, retry) record a request as an annotation; the operator acts on it
once and acknowledges it in status. `undo` edits the spec back to the previous revision, as a
GitOps revert would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table

app = typer.Typer(help="Coordinated, progressive releases of an ECS backend and a CloudFront frontend.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
dev_app = typer.Typer(help="The local environment: real kube-apiserver, moto, Prometheus.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")
console = Console()

NamespaceOpt = Annotated[Optional[str], typer.Option("--namespace", "-n", help="Namespace of the Release.")]
KubeconfigOpt = Annotated[Optional[str], typer.Option("--kubeconfig", envvar="KUBECONFIG", help="kubeconfig file.")]


def _api(kubeconfig: str | None) -> Any:
    from controller.kube import ReleaseApi, load_api_client

    return ReleaseApi(load_api_client(kubeconfig))


def _namespace(namespace: str | None, kubeconfig: str | None) -> str:
    if namespace:
        return namespace
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        return str(active.get("context", {}).get("namespace") or "default")
    except Exception:  # noqa: BLE001 - no kubeconfig context: the Kubernetes default
        return "default"


@app.command()
def run(
    namespace: Annotated[list[str], typer.Option("--namespace", "-n", help="Watch this namespace (repeatable).")] = [],  # noqa: B006
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Watch every namespace.")] = False,
    resync: Annotated[float, typer.Option(help="Seconds between drift checks of steady Releases.")] = 30.0,
    liveness_port: Annotated[int, typer.Option(help="Port of /healthz (0: off).")] = 8080,
    metrics_port: Annotated[int, typer.Option(help="Port of /metrics (0: off).")] = 9090,
    peering: Annotated[Optional[str], typer.Option(help="kopf peering name; replicas share it, one is active.")] = None,
    priority: Annotated[Optional[int], typer.Option(
        help="kopf peering priority of this replica (the highest works). Default with --peering: a random "
             "one, so the replicas of one Deployment differ: kopf pauses every replica when two share it.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    log_format: Annotated[str, typer.Option(
        help="json: one JSON object per line (the container's default); text: for a terminal.")] = "text",
    selector: Annotated[Optional[str], typer.Option(
        help="Handle only Releases whose labels match (key=value, key!=value, key, !key; comma-separated): "
             "one shard of a fleet split across Deployments.")] = None,
) -> None:
    """Run the operator against the current kubeconfig (or in-cluster config)."""
    if not namespace and not all_namespaces:
        raise typer.BadParameter("give --namespace (repeatable) or --all-namespaces")
    if log_format not in ("json", "text"):
        raise typer.BadParameter(f"{log_format!r} is not one of json, text", param_hint="--log-format")
    if selector is not None:
        from controller.selector import parse_selector

        try:
            parse_selector(selector)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--selector") from exc
    from controller.preflight import check_all

    check_all(liveness_port or None, metrics_port or None)  # a taken port, no cluster, no AWS: one line
    from controller.operator.main import run_operator
    from controller.settings import OperatorSettings

    run_operator(
        OperatorSettings(
            namespaces=tuple(namespace), all_namespaces=all_namespaces, resync_seconds=resync,
            liveness_port=liveness_port or None, metrics_port=metrics_port or None,
            peering=peering, priority=_peering_priority(peering, priority), verbose=verbose,
            log_format=log_format, selector=selector,
        )
    )


def _peering_priority(peering: str | None, priority: int | None) -> int:
    """The given priority, else 0 standalone, else a random one in 1..2**31-1 (a clash is ~1e-9)."""
    if priority is not None:
        return priority
    if peering is None:
        return 0
    import secrets

    return 1 + secrets.randbelow(2**31 - 1)


@app.command()
def crds(
    kind: Annotated[str, typer.Option(help="Release, or ReleasePolicy (the cluster-scoped tenancy policy).")] = "Release",
) -> None:
    """Print a CustomResourceDefinition generated from the models (the Release's by default)."""
    from controller.api.crd import render, render_policy

    renderers = {"Release": render, "ReleasePolicy": render_policy}
    if kind not in renderers:
        raise typer.BadParameter(f"--kind is one of {', '.join(renderers)}")
    sys.stdout.write(renderers[kind]())


def _request(kind: str, name: str, namespace: str | None, kubeconfig: str | None, force: bool = False) -> None:
    from controller.cli_verbs import request

    ns = _namespace(namespace, kubeconfig)
    print(request(_api(kubeconfig), kind, ns, name, force))


@app.command()
def promote(name: str, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None) -> None:
    """Skip the remaining steps (and any indefinite pause) and promote the canary."""
    _request("promote", name, namespace, kubeconfig)


@app.command()
def abort(
    name: str, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None,
    force: Annotated[bool, typer.Option("--force", help=(
        "Roll back even though an irreversible hook (a migration) passed in this rollout: old code then "
        "runs on what it changed."))] = False,
) -> None:
    """Put all traffic back on the stable version and stop the rollout."""
    _request("abort", name, namespace, kubeconfig, force)


@app.command()
def retry(name: str, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None) -> None:
    """Start again a rollout that was rolled back, aborted or failed."""
    _request("retry", name, namespace, kubeconfig)


@app.command()
def pause(name: str, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None) -> None:
    """Hold the rollout at its current step, timers included (sets spec.paused)."""
    ns = _namespace(namespace, kubeconfig)
    _api(kubeconfig).patch_spec(ns, name, {"paused": True})
    console.print(f"release {ns}/{name} paused")


@app.command()
def resume(name: str, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None) -> None:
    """Go on with a paused rollout from where it stopped (clears spec.paused)."""
    ns = _namespace(namespace, kubeconfig)
    _api(kubeconfig).patch_spec(ns, name, {"paused": False})
    console.print(f"release {ns}/{name} resumed")


@app.command()
def handover(
    name: str,
    to: Annotated[str, typer.Option("--to", help="The Release that takes over: [namespace/]name.")],
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    claims_namespace: Annotated[Optional[str], typer.Option(
        envvar="RELEASE_CONTROLLER_NAMESPACE", help="Where the operator keeps its claims (its own namespace).")] = None,
) -> None:
    """Hand the ECS service, listener and distribution NAME owns to another Release."""
    from controller.claims import claims_namespace as default_claims_namespace
    from controller.cli_claims import handover as hand_over
    from controller.kube import ReleaseApi, load_api_client

    client = load_api_client(kubeconfig)
    ns = _namespace(namespace, kubeconfig)
    console.print(hand_over(client, ReleaseApi(client), ns, name, to, claims_namespace or default_claims_namespace()))


@app.command("list")
def list_releases(
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
) -> None:
    """List Releases: name, phase, backend and frontend versions, canary weight, step, age."""
    import datetime as dt

    from controller.cli_gitops import format_columns, list_rows

    items = _api(kubeconfig).list_all(None if all_namespaces else _namespace(namespace, kubeconfig))
    sys.stdout.write(format_columns(list_rows(items, all_namespaces, dt.datetime.now(dt.timezone.utc))))


@app.command()
def undo(
    name: str,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    to_revision: Annotated[Optional[int], typer.Option(help="History revision to go back to (default: the previous).")] = None,
) -> None:
    """Set the spec back to a previous successful revision from status.history."""
    from controller.api.release import Release

    from controller.cli_gitops import gitops_owner, undo_warning
    from controller.cli_verbs import get_release

    ns = _namespace(namespace, kubeconfig)
    api = _api(kubeconfig)
    raw = get_release(api, ns, name)
    owner = gitops_owner(raw)
    if owner:
        Console(stderr=True).print(undo_warning(owner), style="yellow", highlight=False, soft_wrap=True)
    release = Release.model_validate(raw)
    current = release.spec.backend.version, release.spec.frontend.version if release.spec.frontend else None
    candidates = [h for h in reversed(release.status.history) if h.result == "Succeeded"]
    if to_revision is not None:
        candidates = [h for h in candidates if h.revision == to_revision]
    else:
        candidates = [h for h in candidates if (h.backend_version, h.frontend_version) != current]
    if not candidates:
        print(f"error: nothing to undo: {name} has no previous successful revision to go back to", file=sys.stderr)
        raise typer.Exit(1)
    target = candidates[0]
    patch: dict[str, Any] = {"backend": {"version": target.backend_version}}
    if target.backend_image:
        patch["backend"]["image"] = target.backend_image
    if target.frontend_version and release.spec.frontend:
        patch["frontend"] = {"version": target.frontend_version}
    api.patch_spec(ns, name, patch)
    console.print(f"release {ns}/{name} set back to revision {target.revision}: backend {target.backend_version}"
                  + (f", frontend {target.frontend_version}" if target.frontend_version else ""))


@app.command()
def status(
    name: str,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text, json or yaml (json and yaml: the status)")] = "text",
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Redraw until the rollout ends; exit 0 when the "
                                        "spec is live, 1 when rolled back, failed or stalled, 3 on timeout.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --watch waits at most.")] = 1800.0,
) -> None:
    """Show a Release: phase, steps, weights, conditions, the last analysis and the history."""
    from controller.api.release import Release
    from controller.cli_verbs import check_output, get_release, render_object

    check_output(output)
    ns = _namespace(namespace, kubeconfig)
    if watch:
        from controller.cli_gitops import watch as watch_release

        api = _api(kubeconfig)
        get_release(api, ns, name)  # a missing Release or namespace is one line, as for every verb
        raise typer.Exit(watch_release(lambda: api.get(ns, name), console, timeout))
    raw = get_release(_api(kubeconfig), ns, name)
    render_object(raw.get("status", {}), output, lambda: render_status(Release.model_validate(raw)))


def render_status(release: Any) -> None:
    spec, st = release.spec, release.status
    meta = release.metadata
    console.print(f"[bold]{meta.get('namespace')}/{meta.get('name')}[/bold]  phase [bold]{st.phase.value}[/bold]"
                  + (f"  ({st.message})" if st.message else ""))
    strategy = st.strategy.value if st.strategy else spec.strategy.type.value
    console.print(f"strategy {strategy}   revision {st.revision}")
    total = max(st.step_count, 1)
    bar = ProgressBar(total=total, completed=min(st.current_step, total), width=40)
    steps = Table.grid(padding=(0, 1))
    steps.add_row("steps", bar, f"{st.current_step}/{st.step_count}")
    console.print(steps)
    versions = Table("tier", "desired", "stable", "canary", "canary weight")
    versions.add_row("backend", spec.backend.version, st.backend.stable_version or "-",
                     st.backend.canary_version or "-", f"{st.backend.canary_weight}%")
    if spec.frontend:
        # status.frontend.canaryVersion is the rollout's frontend target from its start; it serves
        # viewers only while a frontend canary (CloudFront staging) runs, so only then is it a canary.
        frontend_canary = st.frontend.current_step is not None or st.frontend.canary_weight > 0
        versions.add_row("frontend", spec.frontend.version, st.frontend.stable_version or "-",
                         (st.frontend.canary_version or "-") if frontend_canary else "-",
                         f"{st.frontend.canary_weight}%")
    console.print(versions)
    if spec.frontend and st.frontend.canary_version and not frontend_canary:
        console.print(f"frontend {st.frontend.canary_version} is next: it follows once the backend rollout is done "
                      "(and the backend serving satisfies requiresBackend)")
    if st.conditions:
        conds = Table("condition", "status", "reason", "message")
        for c in st.conditions:
            conds.add_row(c.type.value, c.status, c.reason, c.message)
        console.print(conds)
    if st.analysis:
        a = st.analysis
        console.print(f"analysis: [bold]{a.verdict.value if a.verdict else '-'}[/bold] "
                      f"samples {a.samples} failures {a.failures} errors {a.errors} {a.message}")
        if a.measurements:
            table = Table("metric", "value", "stable", "verdict", "time")
            for m in a.measurements[-5:]:
                table.add_row(m.metric, "-" if m.value is None else f"{m.value:.4g}",
                              "-" if m.stable_value is None else f"{m.stable_value:.4g}", m.verdict.value,
                              m.time.strftime("%H:%M:%S"))
            console.print(table)
    if st.history:
        hist = Table("rev", "backend", "frontend", "result", "started", "finished")
        for h in st.history[-10:]:
            hist.add_row(str(h.revision), h.backend_version, h.frontend_version or "-", h.result,
                         h.started_at.strftime("%Y-%m-%d %H:%M:%S"), h.finished_at.strftime("%H:%M:%S"))
        console.print(hist)


@app.command()
def classify(
    files: Annotated[Optional[list[str]], typer.Argument(help="Changed files (default: read stdin).")] = None,
    base: Annotated[Optional[str], typer.Option(help="git ref to diff from")] = None,
    head: Annotated[str, typer.Option(help="git ref to diff to")] = "HEAD",
    rules: Annotated[Optional[Path], typer.Option(help="YAML file of glob rules")] = None,
) -> None:
    """Print the change class (infrastructure, api, core, minor) of a set of changed files."""
    from controller.classify import classify as classify_paths
    from controller.classify import load_rules

    if base:
        out = subprocess.run(["git", "diff", "--name-only", f"{base}...{head}"], check=True,
                             capture_output=True, text=True).stdout
        paths = [line for line in out.splitlines() if line.strip()]
    elif files:
        paths = list(files)
    else:
        paths = [line.strip() for line in sys.stdin if line.strip()]
    if rules:
        ruleset = load_rules(rules)
        print(classify_paths(paths, ruleset.rules, ruleset.unmatched).value)
    else:
        print(classify_paths(paths).value)


@dev_app.command("up")
def dev_up(directory: Annotated[Path, typer.Option("--dir", help="Where state, logs and env.sh go.")]) -> None:
    """Start etcd, kube-apiserver, moto and Prometheus in the background; install the CRD."""
    from controller.testing.env import LocalEnvironment

    env = LocalEnvironment(directory)
    env.up()
    console.print(f"local environment up; run:  source {directory / 'env.sh'}")


@dev_app.command("down")
def dev_down(directory: Annotated[Path, typer.Option("--dir", help="The directory given to `dev up`.")]) -> None:
    """Stop everything `dev up` started in DIR."""
    from controller.testing.env import LocalEnvironment

    LocalEnvironment(directory).down()
    console.print("local environment down")


@dev_app.command("world")
def dev_world(
    name: str,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the printed Release.")] = "default",
) -> None:
    """Seed an ECS service, ALB and CloudFront running NAME 1.0.0 in the local moto; print a Release for it."""
    from controller.testing.first_release import seed_and_manifest

    sys.stdout.write(seed_and_manifest(name, namespace))


contract_app = typer.Typer(help="The frontend's API contract against a backend's OpenAPI document.",
                           no_args_is_help=True)
app.add_typer(contract_app, name="contract")


@contract_app.command("check")
def contract_check(
    openapi: Annotated[Optional[str], typer.Option(help="OpenAPI document: URL or file (default: the Release's openapiUrl).")] = None,
    contract: Annotated[Optional[str], typer.Option(help="YAML file of operations (a ConfigMap's contract.yaml).")] = None,
    release: Annotated[Optional[str], typer.Option(help="A Release manifest: its frontend.apiContract.operations.")] = None,
) -> None:
    """Check the operations and fields a frontend uses against a backend's OpenAPI; exit 1 on a problem."""
    from controller.contract import ContractError, check_command, render_problems

    try:
        problems, source = check_command(openapi, contract, release)
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    print(render_problems(problems, source))
    if problems:
        raise typer.Exit(1)


from controller import cli_manifests  # noqa: E402 - the verbs' logic lives in their own module

app.command("set-version")(cli_manifests.set_version)
app.command("validate")(cli_manifests.validate)


def main() -> None:
    from controller.cli_verbs import one_line_errors

    with one_line_errors():
        app()


if __name__ == "__main__":
    main()
