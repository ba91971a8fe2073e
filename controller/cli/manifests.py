"""`set-version` and `validate`: the CI side of GitOps, on Release manifest files, offline.

The logic is in controller.manifests.edit; this module only turns it into commands and exit codes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer


def set_version(
    file: Annotated[Path, typer.Argument(help="The Release manifest to edit in place.")],
    backend: Annotated[Optional[str], typer.Option(help="spec.backend.version")] = None,
    image: Annotated[Optional[str], typer.Option(help="spec.backend.image")] = None,
    frontend: Annotated[Optional[str], typer.Option(help="spec.frontend.version")] = None,
    change_class: Annotated[Optional[str], typer.Option(help="spec.strategy.changeClass")] = None,
    name: Annotated[Optional[str], typer.Option(help="The Release's name, when the file holds several.")] = None,
    namespace: Annotated[Optional[str], typer.Option("--namespace", "-n", help="Its namespace, with --name.")] = None,
) -> None:
    """Set versions in a Release manifest in place, keeping comments and formatting; refuse an invalid result."""
    from controller.manifests import ManifestError
    from controller.manifests import set_version as edit

    text = file.read_text()
    try:
        updated = edit(text, backend=backend, image=image, frontend=frontend, change_class=change_class,
                       name=name, namespace=namespace)
    except ManifestError as exc:
        print(f"{file}: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    if updated != text:
        file.write_text(updated)
    print(f"{file}: {'updated' if updated != text else 'unchanged'}")


def validate(
    files: Annotated[list[Path], typer.Argument(help="Release manifests (YAML, several documents allowed).")],
    policy: Annotated[list[Path], typer.Option(
        "--policy", help="ReleasePolicy files (repeatable): also judge each Release as `run --tenancy strict` "
                         "would (offline, a namespaceSelector sees no namespace labels).")] = [],  # noqa: B006
) -> None:
    """Check Release manifests offline against the API's schema and rules; one line per problem, exit 1
    on any. Warnings (an analysed pause shorter than minSamples x interval) are printed, exit 0."""
    from controller.manifests.validate import validate_text

    policies = _policies(policy)
    bad = False
    for file in files:
        try:
            text = file.read_text()
            problems = validate_text(text)
            if policies is not None and not problems:
                problems = _judged(text, policies)
        except OSError as exc:
            text, problems = "", [f"cannot read: {exc.strerror}"]
        for problem in problems:
            print(f"{file}: {problem}")
        if not problems:
            for warning in warnings_text(text):
                print(f"{file}: {warning}")
        bad = bad or bool(problems)
    if bad:
        raise typer.Exit(1)


def _policies(files: list[Path]) -> list[Any] | None:
    """The ReleasePolicies in `files` (None without --policy); a file that holds a malformed one exits 2."""
    if not files:
        return None
    import yaml
    from pydantic import ValidationError

    from controller.api.policy import POLICY_KIND, ReleasePolicy

    found: list[Any] = []
    for file in files:
        try:
            docs = [d for d in yaml.safe_load_all(file.read_text()) if isinstance(d, dict) and d.get("kind") == POLICY_KIND]
            found += [ReleasePolicy.from_object(d) for d in docs]
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            print(f"{file}: not a ReleasePolicy file ({type(exc).__name__})", file=sys.stderr)
            raise typer.Exit(2) from None
        if not docs:
            print(f"{file}: no ReleasePolicy (kind ReleasePolicy) in the file", file=sys.stderr)
            raise typer.Exit(2)
    return found


def _judged(text: str, policies: list[Any]) -> list[str]:
    """What the policies refuse of each Release in `text` (its namespace from metadata, `default` without)."""
    from controller.api.release import ReleaseSpec
    from controller.manifests.validate import release_bodies
    from controller.tenancy.policy import judge

    out = []
    for _, body in release_bodies(text):
        namespace = (body.get("metadata") or {}).get("namespace") or "default"
        name = (body.get("metadata") or {}).get("name", "")
        violation = judge(ReleaseSpec.model_validate(body.get("spec") or {}), namespace, {}, policies)
        if violation is not None:
            out.append(f"{namespace}/{name}: NotPermitted: {violation.message}")
    return out


def warnings_text(text: str) -> list[str]:
    """Warnings (not problems) about every valid Release in a file: `planner.analysis.pause_warnings`."""
    import yaml

    from controller.api.release import ReleaseSpec
    from controller.manifests.validate import release_bodies
    from controller.planner.analysis import pause_warnings

    try:
        bodies = list(release_bodies(text))
    except yaml.YAMLError:
        return []
    multi = len(bodies) > 1
    out: list[str] = []
    for i, body in bodies:
        try:
            spec = ReleaseSpec.model_validate(body.get("spec") or {})
        except ValueError:
            continue
        out += [f"document {i}: warning: {w}" if multi else f"warning: {w}" for w in pause_warnings(spec)]
    return out
