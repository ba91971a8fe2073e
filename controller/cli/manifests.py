"""`set-version` and `validate`: the CI side of GitOps, on Release manifest files, offline.

The logic is in controller.manifests.edit; this module only turns it into commands and exit codes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

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
) -> None:
    """Check Release manifests offline against the API's schema and rules; one line per problem, exit 1 on any."""
    from controller.manifests import validate_text

    bad = False
    for file in files:
        try:
            problems = validate_text(file.read_text())
        except OSError as exc:
            problems = [f"cannot read: {exc.strerror}"]
        for problem in problems:
            print(f"{file}: {problem}")
        bad = bad or bool(problems)
    if bad:
        raise typer.Exit(1)
