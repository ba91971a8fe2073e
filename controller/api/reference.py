"""docs/reference.md, the Release reference, written from the CRD the models generate (`make crds`).

One section per object of the schema, in the order a reader meets them (spec first, then status),
each a table of its fields: name, type, default, whether required, and the description the models
give (`kubectl explain` prints the same text). tests/api/test_reference.py fails when the file in
the repository is not what this renders.

`python -m controller.api.reference` prints it.
"""

from __future__ import annotations

import json
from typing import Any

from controller.api.crd import crd

HEADER = """# Release reference: `delivery.pratiko.ai/v1alpha1`

Generated from the models in `controller/api/release.py` by `make crds`; do not edit by hand.
`kubectl explain release.spec.<field>` prints the same descriptions. The rules that span fields
(CEL `x-kubernetes-validations`) are listed under the object they judge, with the message the API
server answers with. [versioning.md](versioning.md) says what this version promises.
"""


def _type(node: dict[str, Any]) -> str:
    kind = node.get("type", "")
    if kind == "array":
        return f"[]{_type(node.get('items', {}))}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string]{_type(node['additionalProperties'])}"
    if node.get("x-kubernetes-preserve-unknown-fields") and not kind:
        return "any"
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    return kind or "any"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(node: dict[str, Any]) -> str:
    if "default" not in node:
        return ""
    value = node["default"]
    if value in ({}, []):
        return ""
    return f"`{json.dumps(value)}`"


def _objects(node: dict[str, Any], path: str, out: list[tuple[str, dict[str, Any]]]) -> None:
    if node.get("properties"):
        out.append((path, node))
        for name, sub in node["properties"].items():
            _objects(sub, f"{path}.{name}", out)
    if isinstance(node.get("items"), dict):
        _objects(node["items"], f"{path}[]", out)
    if isinstance(node.get("additionalProperties"), dict):
        _objects(node["additionalProperties"], f"{path}{{}}", out)


def render() -> str:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    found: list[tuple[str, dict[str, Any]]] = []
    for top in ("spec", "status"):
        _objects(schema["properties"][top], top, found)
    parts = [HEADER]
    for path, node in found:
        parts.append(f"\n## `{path}`\n")
        if node.get("description"):
            parts.append(f"\n{_cell(node['description'])}\n")
        parts.append("\n| field | type | default | description |\n| --- | --- | --- | --- |\n")
        required = set(node.get("required", []))
        for name, sub in node["properties"].items():
            mark = " (required)" if name in required else ""
            parts.append(f"| `{name}`{mark} | {_type(sub)} | {_default(sub)} | {_cell(sub.get('description', ''))} |\n")
        rules = node.get("x-kubernetes-validations", [])
        if rules:
            parts.append("\nRules:\n\n")
            for rule in rules:
                parts.append(f"- {_cell(rule.get('message') or rule.get('messageExpression') or rule['rule'])}\n")
    return "".join(parts)


def main() -> None:
    print(render(), end="")


if __name__ == "__main__":
    main()
