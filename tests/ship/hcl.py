"""Reading Terraform with python-hcl2 (v7+ keeps the quotes of strings and block labels)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2

REFERENCE = re.compile(r"\b(module|var|local|data)\.([A-Za-z0-9_\-]+)(?:\.([A-Za-z0-9_\-]+))?")


def unq(value: Any) -> Any:
    """'"text"' -> 'text'; other values unchanged."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load_dir(directory: Path) -> dict[str, list[Any]]:
    """Every top-level block type of the directory's .tf files, merged."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            parsed = hcl2.load(handle)
        for key, blocks in parsed.items():
            if not key.startswith("__"):
                merged.setdefault(key, []).extend(blocks)
    return merged


def labelled(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """[{'"name"': body}] -> {name: body} for one-label blocks (variable, output, module)."""
    return {unq(label): body for block in blocks for label, body in block.items()}


def doubly_labelled(blocks: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Two-label blocks (resource, data) -> {(type, name): body}."""
    return {
        (unq(kind), unq(name)): body
        for block in blocks
        for kind, named in block.items()
        for name, body in named.items()
    }


def references(value: Any) -> set[tuple[str, str, str | None]]:
    """Every module./var./local./data. reference inside a parsed value."""
    found: set[tuple[str, str, str | None]] = set()
    if isinstance(value, str):
        found.update((m.group(1), m.group(2), m.group(3)) for m in REFERENCE.finditer(value))
    elif isinstance(value, dict):
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def load_tfvars(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        parsed: dict[str, Any] = hcl2.load(handle)
    return {k: v for k, v in parsed.items() if not k.startswith("__")}
