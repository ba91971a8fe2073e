"""Steering verbs: `promote`, `abort`, `retry`, `pause`, `resume` and `undo`.

Promote, abort and retry record a request as an annotation; the operator acts on it once and
acknowledges it in status. `judge_request()` first decides, from the Release as read, whether the
request can apply now, will apply later (queued, and when), or cannot apply (and why): the operator
would otherwise acknowledge a request that does nothing, and the user would see "requested".
`pause`/`resume` set `spec.paused`; `undo` edits the spec back to a previous revision, as a GitOps
revert would.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from controller.cli.common import (
    EXIT_REFUSED,
    CliError,
    KubeconfigOpt,
    NamespaceOpt,
    console,
    get_release,
    namespace_of,
    release_api,
)
from controller.planner.decision import FORCE_SUFFIX

IN_ROLLOUT = ("Progressing", "Paused")


@dataclass(frozen=True)
class Judgement:
    """Whether a request is sent, and the one line that says what will happen."""

    send: bool
    message: str


def _live(status: dict[str, Any], spec: dict[str, Any]) -> str:
    backend = status.get("backend") or {}
    return str(backend.get("stableVersion") or spec.get("backend", {}).get("version", "?"))


def irreversible_passed(spec: dict[str, Any], status: dict[str, Any]) -> list[str]:
    """The irreversible preRollout/prePromotion hooks that passed in the Release's current rollout."""
    hooks = spec.get("hooks") or {}
    marked = {(point, h.get("name")) for point in ("preRollout", "prePromotion") for h in hooks.get(point) or []
              if h.get("irreversible")}
    return [str(h.get("name")) for h in status.get("hooks") or []
            if (h.get("point"), h.get("name")) in marked and h.get("passedAt") and h.get("revision") == status.get("revision")]


def judge_request(kind: str, obj: dict[str, Any], force: bool = False) -> Judgement:
    """Whether `kind` (promote, abort, retry) can act on the Release `obj` as read now.

    Mirrors the planner's rules (controller/planner/core.py `take_requests` and `progress`): promote
    and abort act on a rollout in progress, retry on one that rolled back or failed; a promote made
    while `spec.paused` holds a rollout waits for the unpause. An abort after an irreversible hook
    passed (a migration) needs `force`: the operator does not roll back without it. A spec the operator has not seen yet
    (generation ahead of observedGeneration) starts a rollout, so the request is sent for it.

    >>> obj = {"metadata": {"name": "shop", "generation": 1},
    ...        "spec": {"backend": {"version": "1.0.0"}},
    ...        "status": {"phase": "Succeeded", "observedGeneration": 1, "backend": {"stableVersion": "1.0.0"}}}
    >>> judge_request("promote", obj).message
    'nothing to promote: shop is Succeeded at 1.0.0'
    """
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status") or {}
    name = meta.get("name", "?")
    phase = status.get("phase", "Pending")
    unseen = status.get("observedGeneration") != meta.get("generation")
    live = _live(status, spec)
    if unseen:
        return Judgement(True, f"{kind} requested for {name}: it applies to the rollout the operator starts "
                               f"for generation {meta.get('generation')}")
    if kind == "promote":
        if phase not in IN_ROLLOUT:
            return Judgement(False, f"nothing to promote: {name} is {phase} at {live}"
                             + (" (retry starts the rollout again)" if phase in ("RolledBack", "Failed") else ""))
        if spec.get("paused"):
            return Judgement(True, f"promote queued for {name}: spec.paused is true, so it applies when the "
                                   "Release is resumed (spec.paused: false)")
        return Judgement(True, f"promote requested for {name}: the operator skips the remaining steps "
                               f"of backend {spec.get('backend', {}).get('version')} on its next pass")
    if kind == "abort":
        if phase not in IN_ROLLOUT:
            return Judgement(False, f"nothing to abort: {name} is {phase} at {live}")
        passed = irreversible_passed(spec, status)
        if passed and not force:
            return Judgement(False, f"abort refused: the irreversible hook {', '.join(passed)} passed in this rollout of "
                                    f"{name}, so going back to {live} runs old code on what it changed; if that is what "
                                    f"you want, run it again with --force (kubectl release abort {name} --force)")
        if passed:
            return Judgement(True, f"abort --force requested for {name}: despite the irreversible hook "
                                   f"{', '.join(passed)}, all traffic goes back to {live} on the next pass")
        return Judgement(True, f"abort requested for {name}: all traffic goes back to {live} on the next pass")
    if kind == "retry":
        if phase not in ("RolledBack", "Failed"):
            return Judgement(False, f"nothing to retry: {name} is {phase} at {live} "
                                    "(retry starts again a rollout that was rolled back, aborted or failed)")
        return Judgement(True, f"retry requested for {name}: the operator starts the rollout to backend "
                               f"{spec.get('backend', {}).get('version')} again on its next pass")
    raise ValueError(f"unknown request {kind}")


def request(api: Any, kind: str, namespace: str, name: str, force: bool = False) -> str:
    """Send `kind` if it can apply; the line to print. Raises CliError when it cannot apply now.
    `force` (abort only) is recorded with the request: the planner then rolls back even after an
    irreversible hook."""
    judgement = judge_request(kind, get_release(api, namespace, name), force)
    if not judgement.send:
        raise CliError(judgement.message, EXIT_REFUSED)
    if force:
        api.request(namespace, name, kind, suffix=FORCE_SUFFIX)
    else:
        api.request(namespace, name, kind)
    return judgement.message


# --------------------------------------------------------------------------- the verbs


def _request(kind: str, name: str, namespace: str | None, kubeconfig: str | None, force: bool = False) -> None:
    ns = namespace_of(namespace, kubeconfig)
    print(request(release_api(kubeconfig), kind, ns, name, force))


def promote(name: str, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None) -> None:
    """Skip the remaining steps (and any indefinite pause) and promote the canary."""
    _request("promote", name, namespace, kubeconfig)


def abort(
    name: str, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None,
    force: Annotated[bool, typer.Option("--force", help=(
        "Roll back even though an irreversible hook (a migration) passed in this rollout: old code then "
        "runs on what it changed."))] = False,
) -> None:
    """Put all traffic back on the stable version and stop the rollout."""
    _request("abort", name, namespace, kubeconfig, force)


def retry(name: str, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None) -> None:
    """Start again a rollout that was rolled back, aborted or failed."""
    _request("retry", name, namespace, kubeconfig)


def pause(name: str, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None) -> None:
    """Hold the rollout at its current step, timers included (sets spec.paused)."""
    ns = namespace_of(namespace, kubeconfig)
    release_api(kubeconfig).patch_spec(ns, name, {"paused": True})
    console.print(f"release {ns}/{name} paused")


def resume(name: str, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None) -> None:
    """Go on with a paused rollout from where it stopped (clears spec.paused)."""
    ns = namespace_of(namespace, kubeconfig)
    release_api(kubeconfig).patch_spec(ns, name, {"paused": False})
    console.print(f"release {ns}/{name} resumed")


def undo(
    name: str,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    to_revision: Annotated[Optional[int], typer.Option(help="History revision to go back to (default: the previous).")] = None,
) -> None:
    """Set the spec back to a previous successful revision from status.history."""
    from controller.api.release import Release
    from controller.cli.show import gitops_owner, undo_warning

    ns = namespace_of(namespace, kubeconfig)
    api = release_api(kubeconfig)
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
