"""What the CLI verbs say when a request cannot be done: one line, a non-zero exit, never a traceback.

`cli.py` registers the verbs; this module holds the parts every verb shares, so that a verb added
later gets the same behaviour by calling them:

- `one_line_errors()` wraps the whole program: an unreachable API server, a missing or broken
  kubeconfig, a refusal (401/403) or any other API error becomes one line on stderr.
- `get_release()` reads a Release and tells a missing namespace from a missing Release.
- `judge_request()` decides, from the Release as read, whether promote, abort or retry can apply
  now, will apply later (queued, and when), or cannot apply (and why): the operator would
  otherwise acknowledge a request that does nothing, and the user would see "requested".
- `render_object()` prints an object as text, JSON or YAML, and refuses any other format.

Exit codes: 0 done or queued; 1 the request cannot apply now; 2 usage (a bad option, as typer does);
3 the Release or its namespace does not exist; 4 no access to the cluster (no kubeconfig, API server
unreachable, credentials refused).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controller.planner.decision import FORCE_SUFFIX

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_NO_CLUSTER = 4

OUTPUT_FORMATS = ("text", "json", "yaml")


class CliError(Exception):
    """A failure the user can act on: printed as `error: <message>`, exit `code`."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


def _api_reason(exc: Any) -> str:
    """The API server's own message of an ApiException (its Status body), else the HTTP reason."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return str(body.get("message") or exc.reason or f"HTTP {exc.status}")


def explain_exception(exc: BaseException) -> CliError | None:
    """The one-line form of an exception from talking to the cluster; None for one that is a bug."""
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError as Urllib3Error

    from pydantic import ValidationError

    from controller.api.types import explain

    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, ValidationError):  # an object stored before the schema refused what it holds
        return CliError(f"the Release as stored is not valid: {explain(list(exc.errors()))}", EXIT_REFUSED)
    if isinstance(exc, ConfigException):
        path = os.environ.get("KUBECONFIG")
        if path and not any(Path(p).expanduser().is_file() for p in path.split(os.pathsep) if p):
            return CliError(f"no cluster access: kubeconfig {path} (KUBECONFIG) does not exist", EXIT_NO_CLUSTER)
        return CliError(f"no cluster access: {exc} (set KUBECONFIG or --kubeconfig; for the local environment: "
                        "source .dev/env.sh after `release-controller dev up --dir .dev`)", EXIT_NO_CLUSTER)
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return CliError(f"no cluster access: kubeconfig {exc.filename} does not exist", EXIT_NO_CLUSTER)
    if isinstance(exc, Urllib3Error):
        reason = getattr(exc, "reason", None) or exc
        url = getattr(exc, "url", None)
        pool = getattr(exc, "pool", None)
        where = f"{pool.scheme}://{pool.host}:{pool.port}" if pool is not None else (url or "the API server")
        return CliError(f"no cluster access: cannot reach {where}: {_short(reason)}", EXIT_NO_CLUSTER)
    if isinstance(exc, ApiException):
        if exc.status in (401, 403):
            return CliError(f"no cluster access: the API server refused the request ({exc.status}): "
                            f"{_api_reason(exc)}", EXIT_NO_CLUSTER)
        if exc.status == 404:
            return CliError(f"not found: {_api_reason(exc)}", EXIT_NOT_FOUND)
        return CliError(f"the API server answered {exc.status}: {_api_reason(exc)}", EXIT_REFUSED)
    return None


def _short(reason: Any) -> str:
    """urllib3 nests the cause in a long repr; the last part after ': ' is what a person needs."""
    text = str(reason)
    return text.rsplit(">: ", 1)[-1].strip("()' ")


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn a cluster failure or a CliError into `error: ...` on stderr and its exit code."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - a cluster failure becomes one line; a bug still raises
        explained = explain_exception(exc)
        if explained is None:
            raise
        print(f"error: {explained}", file=sys.stderr)
        raise SystemExit(explained.code) from None


def get_release(api: Any, namespace: str, name: str) -> dict[str, Any]:
    """The Release as read, or a CliError naming what is missing: the namespace or the Release."""
    from kubernetes.client.rest import ApiException

    obj: dict[str, Any] | None = api.current(namespace, name)
    if obj is not None:
        return obj
    # A namespaced GET answers 404 whether or not the namespace exists: ask about the namespace
    # (a user who may not read namespaces is told about the Release only).
    try:
        exists = api.namespace_exists(namespace)
    except ApiException:
        exists = True
    if not exists:
        raise CliError(f"namespace {namespace} does not exist", EXIT_NOT_FOUND)
    raise CliError(f"release {name} not found in namespace {namespace}", EXIT_NOT_FOUND)


def check_output(output: str) -> str:
    if output not in OUTPUT_FORMATS:
        raise CliError(f"unknown output format {output!r}: use one of {', '.join(OUTPUT_FORMATS)}", EXIT_USAGE)
    return output


def render_object(obj: Any, output: str, text: Callable[[], None]) -> None:
    """Print `obj` as JSON or YAML, or call `text` for the human view."""
    check_output(output)
    if output == "json":
        sys.stdout.write(json.dumps(obj, indent=2) + "\n")
    elif output == "yaml":
        sys.stdout.write(yaml.safe_dump(obj, sort_keys=False))
    else:
        text()


# --------------------------------------------------------------------------- steering requests

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
