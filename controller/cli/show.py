"""CLI verbs for the moments a GitOps user has: `list`, `status --watch`, `pause`/`resume`, and the
warning `undo` gives when Argo CD or Flux owns the spec.

`--watch` reads the status the way kstatus and our Argo CD health.lua do (README.md, "GitOps
health"), so CI that gates on it agrees with Flux and Argo CD: 0 once the spec is live (Ready=True
at the current generation), 1 when the Release rolled back, failed or is stalled, 3 on timeout.
This module only reads and patches Releases through `controller.kube.client`; it decides nothing itself.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from controller.cli.common import (
    KubeconfigOpt,
    NamespaceOpt,
    check_output,
    console,
    get_release,
    namespace_of,
    release_api,
    render_object,
)

EXIT_LIVE = 0
EXIT_FAILED = 1
EXIT_TIMEOUT = 3


# --------------------------------------------------------------------------- reading the status


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """The condition of that type, unless it was written for an older generation."""
    generation = obj.get("metadata", {}).get("generation")
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            seen = c.get("observedGeneration")
            if seen is not None and generation is not None and seen < generation:
                return None
            return dict(c)
    return None


@dataclass(frozen=True)
class Outcome:
    """Where a Release's rollout stands: done (live or failed) or not, and why."""

    done: bool
    live: bool
    reason: str
    message: str


def outcome(obj: dict[str, Any]) -> Outcome:
    """The verdict `--watch` exits on; the same reading as health.lua and kstatus.

    >>> outcome({"metadata": {"generation": 2}, "status": {"observedGeneration": 1, "phase": "Succeeded"}}).done
    False
    >>> outcome({"metadata": {"generation": 2}, "status": {"observedGeneration": 2, "phase": "RolledBack"}})
    Outcome(done=True, live=False, reason='RolledBack', message='')
    """
    generation = obj.get("metadata", {}).get("generation")
    status = obj.get("status") or {}
    seen = status.get("observedGeneration")
    if seen is None or (generation is not None and seen < generation):
        return Outcome(False, False, "NotObserved", f"waiting for the controller to observe generation {generation}")
    stalled = _condition(obj, "Stalled")
    if stalled is not None and stalled.get("status") == "True":
        return Outcome(True, False, str(stalled.get("reason") or "Stalled"), str(stalled.get("message") or ""))
    phase = str(status.get("phase") or "Pending")
    if phase in ("RolledBack", "Failed"):
        return Outcome(True, False, phase, str(status.get("message") or ""))
    ready = _condition(obj, "Ready")
    if ready is not None and ready.get("status") == "True" and phase == "Succeeded":
        return Outcome(True, True, str(ready.get("reason") or "Ready"), str(ready.get("message") or ""))
    return Outcome(False, False, phase, str(status.get("message") or ""))


def age(created: str | None, now: dt.datetime) -> str:
    """kubectl's short age.

    >>> now = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
    >>> [age(t, now) for t in ("2026-01-01T23:59:30Z", "2026-01-01T23:00:00Z", "2026-01-01T00:00:00Z", None)]
    ['30s', '60m', '24h', '-']
    """
    if not created:
        return "-"
    seconds = int((now - dt.datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds())
    for unit, size, limit in (("s", 1, 120), ("m", 60, 120 * 60), ("h", 3600, 48 * 3600)):
        if seconds < limit:
            return f"{max(seconds, 0) // size}{unit}"
    return f"{seconds // 86400}d"


def versions(tier: dict[str, Any] | None, desired: str | None) -> str:
    """`stable` when one version serves, `stable->canary` while a rollout runs, `-` for no tier.

    >>> versions({"stableVersion": "1.0.0", "canaryVersion": "2.0.0"}, "2.0.0"), versions({}, "1.0.0")
    ('1.0.0->2.0.0', '1.0.0')
    """
    if desired is None:
        return "-"
    tier = tier or {}
    stable, canary = tier.get("stableVersion"), tier.get("canaryVersion")
    if stable and canary and canary != stable:
        return f"{stable}->{canary}"
    return str(stable or desired)


# --------------------------------------------------------------------------- list


UNOBSERVED = "Unobserved"
"""The phase `list` and `status` show for a Release no controller has written a status for."""


def phase_of(obj: dict[str, Any]) -> str:
    """The phase, or Unobserved when no controller has observed the Release at all.

    >>> phase_of({"status": {"phase": "Paused", "observedGeneration": 2}}), phase_of({"status": {}})
    ('Paused', 'Unobserved')
    """
    status = obj.get("status") or {}
    if status.get("observedGeneration") is None:
        return UNOBSERVED
    return str(status.get("phase") or "Pending")


def serving(backend: dict[str, Any]) -> str:
    """Every backend version receiving traffic, as AWS reported it, in one word: `1.0.0=80%,2.0.0=20%`.

    >>> serving({"serving": [{"version": "1.0.0", "weight": 80}, {"version": "2.0.0", "weight": 20}]})
    '1.0.0=80%,2.0.0=20%'
    """
    return ",".join(f"{s.get('version')}={s.get('weight')}%" for s in backend.get("serving") or []) or "-"


def list_rows(items: list[dict[str, Any]], all_namespaces: bool, now: dt.datetime) -> list[list[str]]:
    """One row per Release; each column means what the same column of `kubectl get rel` means
    (BACKEND and FRONTEND: the versions the spec asks for; LIVE: the stable backend), plus SERVING."""
    header = ["NAME", "PHASE", "BACKEND", "LIVE", "FRONTEND", "WEIGHT", "SERVING", "STEP", "AGE"]
    rows = [(["NAMESPACE"] if all_namespaces else []) + header]
    for obj in sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])):
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        backend = status.get("backend") or {}
        frontend_spec = spec.get("frontend")
        row = [
            meta["name"],
            phase_of(obj),
            str((spec.get("backend") or {}).get("version") or "-"),
            str(backend.get("stableVersion") or "-"),
            str(frontend_spec.get("version") or "-") if frontend_spec else "-",
            f"{backend.get('canaryWeight', 0)}%",
            serving(backend),
            f"{status.get('currentStep', 0)}/{status.get('stepCount', 0)}",
            age(meta.get("creationTimestamp"), now),
        ]
        rows.append(([meta.get("namespace", "")] if all_namespaces else []) + row)
    return rows


def format_columns(rows: list[list[str]]) -> str:
    """Left-aligned columns three spaces apart, as kubectl prints them."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows) + "\n"


# --------------------------------------------------------------------------- status --watch


def view(obj: dict[str, Any], verdict: Outcome) -> RenderableType:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    head = Text.assemble((f"{meta.get('namespace')}/{meta['name']}", "bold"), "  phase ",
                         (str(status.get("phase") or "Pending"), "bold"),
                         f"  generation {meta.get('generation')} (observed {status.get('observedGeneration', '-')})")
    steps_total = max(int(status.get("stepCount") or 0), 1)
    current = min(int(status.get("currentStep") or 0), steps_total)
    steps = Table.grid(padding=(0, 1))
    steps.add_row("steps", ProgressBar(total=steps_total, completed=current, width=40),
                  f"{status.get('currentStep', 0)}/{status.get('stepCount', 0)}")
    tiers = Table("tier", "desired", "stable->canary", "canary weight", "serving (as AWS reports it)")
    backend = status.get("backend") or {}
    tiers.add_row("backend", str((spec.get("backend") or {}).get("version", "-")),
                  versions(backend, (spec.get("backend") or {}).get("version")), f"{backend.get('canaryWeight', 0)}%",
                  serving(backend))
    if spec.get("frontend"):
        fe = status.get("frontend") or {}
        tiers.add_row("frontend", str(spec["frontend"].get("version", "-")), versions(fe, spec["frontend"].get("version")),
                      f"{fe.get('canaryWeight', 0)}%", "-")
    conds = Table("condition", "status", "reason", "message")
    for c in status.get("conditions") or []:
        conds.add_row(str(c.get("type")), str(c.get("status")), str(c.get("reason", "")), str(c.get("message", "")))
    state = ("live" if verdict.live else "not live") if verdict.done else "waiting"
    foot = Text(f"{state}: {verdict.reason} {verdict.message}".rstrip(),
                style="green" if verdict.live else ("red" if verdict.done else "yellow"))
    return Group(head, steps, tiers, conds, foot)


def summary_line(obj: dict[str, Any], verdict: Outcome) -> str:
    status = obj.get("status") or {}
    backend = status.get("backend") or {}
    return (f"{time.strftime('%H:%M:%S')} phase {status.get('phase', 'Pending')} step "
            f"{status.get('currentStep', 0)}/{status.get('stepCount', 0)} weight {backend.get('canaryWeight', 0)}% "
            f"{verdict.reason}: {verdict.message}").rstrip()


def watch_release(get: Callable[[], dict[str, Any]], console: Console, timeout: float, interval: float = 1.0) -> int:
    """Redraw the Release until its rollout ends; return the exit code (EXIT_LIVE, EXIT_FAILED, EXIT_TIMEOUT).

    On a terminal the view redraws in place (rich Live); elsewhere (CI logs) one line is printed
    per change, so the log tells the story without control characters.
    """
    deadline = time.monotonic() + timeout
    obj = get()
    verdict = outcome(obj)

    def again() -> tuple[dict[str, Any], Outcome]:
        """The next reading; a failed read keeps the last one (the deadline still bounds the wait),
        a deleted Release ends the watch as not live."""
        try:
            new = get()
        except Exception as exc:  # noqa: BLE001 - the API server restarting must not fail a CI gate
            if getattr(exc, "status", None) == 404:
                return obj, Outcome(True, False, "Deleted", "the Release was deleted")
            return obj, verdict
        return new, outcome(new)

    if console.is_terminal:
        with Live(view(obj, verdict), console=console, auto_refresh=False) as live:
            while not verdict.done and time.monotonic() < deadline:
                time.sleep(interval)
                obj, verdict = again()
                live.update(view(obj, verdict), refresh=True)
    else:
        last = ""
        while True:
            line = summary_line(obj, verdict)
            if line.split(" ", 1)[1] != last:
                console.print(line, highlight=False, soft_wrap=True)
                last = line.split(" ", 1)[1]
            if verdict.done or time.monotonic() >= deadline:
                break
            time.sleep(interval)
            obj, verdict = again()
    if not verdict.done:
        console.print(f"timed out after {timeout:g}s: {verdict.reason} {verdict.message}".rstrip(), highlight=False)
        return EXIT_TIMEOUT
    if verdict.live:
        console.print(f"live: {verdict.message or 'the spec is live'}", highlight=False)
        return EXIT_LIVE
    console.print(f"not live: {verdict.reason}: {verdict.message}".rstrip(": "), highlight=False)
    return EXIT_FAILED


# --------------------------------------------------------------------------- undo under GitOps

_ARGO_MARKS = ("argocd.argoproj.io/instance", "argocd.argoproj.io/tracking-id", "app.kubernetes.io/instance")
_FLUX_MARKS = ("kustomize.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/name")
_MANAGERS = {"argocd-controller": "Argo CD", "argocd-application-controller": "Argo CD",
             "kustomize-controller": "Flux", "helm-controller": "Flux"}


def gitops_owner(obj: dict[str, Any]) -> str | None:
    """'Argo CD' or 'Flux' when one of them manages this object (labels, annotations, managedFields).

    >>> gitops_owner({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "apps"}}})
    'Flux'
    >>> gitops_owner({"metadata": {"managedFields": [{"manager": "argocd-controller"}]}})
    'Argo CD'
    >>> gitops_owner({"metadata": {"labels": {"app.kubernetes.io/instance": "x"}}}) is None
    True
    """
    meta = obj.get("metadata", {})
    marks = {**(meta.get("labels") or {}), **(meta.get("annotations") or {})}
    # app.kubernetes.io/instance is Argo CD's default tracking label, but Helm and others set it too:
    # it counts only beside another sign of Argo CD.
    if any(k in marks for k in _ARGO_MARKS[:2]):
        return "Argo CD"
    if any(k in marks for k in _FLUX_MARKS):
        return "Flux"
    for entry in meta.get("managedFields") or []:
        owner = _MANAGERS.get(str(entry.get("manager", "")))
        if owner:
            return owner
    return None


def undo_warning(owner: str) -> str:
    fix = ("revert the commit in Git (or `argocd app rollback`), or use `abort` to stop a running rollout"
           if owner == "Argo CD"
           else "revert the commit in Git (or `flux suspend kustomization` first), or use `abort` to stop a running rollout")
    return (f"warning: this Release is managed by {owner}; it will put the spec back from Git at its next sync, "
            f"starting the rollout undo just reverted. Instead: {fix}.")


# --------------------------------------------------------------------------- the verbs


def list_releases(
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
) -> None:
    """List Releases: name, phase, backend (desired and live), frontend, canary weight, what serves, step, age."""
    import datetime as dt

    items = release_api(kubeconfig).list_all(None if all_namespaces else namespace_of(namespace, kubeconfig))
    sys.stdout.write(format_columns(list_rows(items, all_namespaces, dt.datetime.now(dt.timezone.utc))))


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

    check_output(output)
    ns = namespace_of(namespace, kubeconfig)
    if watch:
        api = release_api(kubeconfig)
        get_release(api, ns, name)  # a missing Release or namespace is one line, as for every verb
        raise typer.Exit(watch_release(lambda: api.get(ns, name), console, timeout))
    raw = get_release(release_api(kubeconfig), ns, name)
    render_object(raw.get("status", {}), output, lambda: render_status(Release.model_validate(raw)))


def render_status(release: Any) -> None:
    spec, st = release.spec, release.status
    meta = release.metadata
    if st.observed_generation is None:
        console.print(f"[bold]{meta.get('namespace')}/{meta.get('name')}[/bold]  phase [bold]{UNOBSERVED}[/bold]"
                      f"  (no controller has observed this Release: is release-controller running, and watching "
                      f"namespace {meta.get('namespace')}?)")
        return
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
    for e in st.backend.services:  # a tier of several: each service, its image's tag and weight
        versions.add_row(f"  {e.name}", "", _tag(e.stable_image), _tag(e.canary_image), f"{e.canary_weight}%")
    if spec.frontend:
        # status.frontend.canaryVersion is the rollout's frontend target from its start; it serves
        # viewers only while a frontend canary (CloudFront staging) runs, so only then is it a canary.
        frontend_canary = st.frontend.current_step is not None or st.frontend.canary_weight > 0
        versions.add_row("frontend", spec.frontend.version, st.frontend.stable_version or "-",
                         (st.frontend.canary_version or "-") if frontend_canary else "-",
                         f"{st.frontend.canary_weight}%")
    console.print(versions)
    console.print(f"serving (as AWS reports it): {st.backend.traffic or '-'}")
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


def _tag(image: str | None) -> str:
    """An image's tag, for a table cell ("-" for none).

    >>> _tag("repo/app:1.2.0"), _tag(None)
    ('1.2.0', '-')
    """
    if not image:
        return "-"
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last and "@" not in last else image
