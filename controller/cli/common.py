"""What every CLI verb shares: the console and options, reaching the cluster, and what a verb says when
a request cannot be done: one line, a non-zero exit, never a traceback.

`controller/cli/__init__.py` registers the verbs, one module per verb group; this module holds the
parts every verb shares, so that a verb added later gets the same behaviour by calling them:

- `one_line_errors()` wraps the whole program: an unreachable API server, a missing or broken
  kubeconfig, a refusal (401/403) or any other API error becomes one line on stderr.
- `get_release()` reads a Release and tells a missing namespace from a missing Release.
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
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml
from rich.console import Console

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_NO_CLUSTER = 4

OUTPUT_FORMATS = ("text", "json", "yaml")

console = Console()

NamespaceOpt = Annotated[Optional[str], typer.Option("--namespace", "-n", help="Namespace of the Release.")]
KubeconfigOpt = Annotated[Optional[str], typer.Option("--kubeconfig", envvar="KUBECONFIG", help="kubeconfig file.")]


def release_api(kubeconfig: str | None) -> Any:
    from controller.kube.client import ReleaseApi, load_api_client

    return ReleaseApi(load_api_client(kubeconfig))


def namespace_of(namespace: str | None, kubeconfig: str | None) -> str:
    """The given namespace, else the kubeconfig context's, else `default`."""
    if namespace:
        return namespace
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        return str(active.get("context", {}).get("namespace") or "default")
    except Exception:  # noqa: BLE001 - no kubeconfig context: the Kubernetes default
        return "default"


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
