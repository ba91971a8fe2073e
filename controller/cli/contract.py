"""`contract check`: the operations a frontend uses against a backend's OpenAPI document."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

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
