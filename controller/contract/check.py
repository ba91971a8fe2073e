"""The API-contract gate: does a backend's OpenAPI document serve what a frontend uses?

A frontend declares the operations it calls (`frontend.apiContract.operations`: method, path and
the response fields it reads, dotted for nesting, e.g. `answer`, `usage.tokens`, `items.title` for
the `title` of each element of an array `items`; `items[].title` says the same). `check` compares
them with an OpenAPI 3.0/3.1 document, as FastAPI serves at `/openapi.json`, and returns one
problem per missing operation or field, naming it. Path parameters match whatever their names
(`/items/{id}` is `/items/{item_id}`). A field is found through `$ref`s (any JSON pointer into the
document), `allOf` (all parts), `anyOf`/`oneOf` (any option: FastAPI writes `Optional[X]` as
`anyOf: [X, null]`), arrays (their `items`) and `additionalProperties` (a map serves any key).

`check` and `parse_*` are pure. The I/O lives at the bottom: `load_document` (file or URL),
`ContractChecker` (the reconciler's seam: fetches the document of the backend version the
planner names, reads a ConfigMap's `contract.yaml` when the contract lives there, caches
documents briefly) and `check_command` for `release-controller contract check`. This module must
not decide whether the frontend moves: the planner does, from the result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from controller.api.release import ApiOperation


CONTRACT_KEY = "contract.yaml"  # the ConfigMap key holding operations
MAX_DEPTH = 32  # $ref chains and nesting deeper than this are a broken document, not a contract
_OPERATIONS = TypeAdapter(list[ApiOperation])


class ContractError(Exception):
    """The document or the contract cannot be read: the check could not be made."""


# --------------------------------------------------------------------------- pure: parsing


def parse_operations(raw: Any) -> list[ApiOperation]:
    """Operations from a contract document: `{operations: [...]}` or a bare list.

    >>> [f"{o.method} {o.path} {o.fields}" for o in parse_operations({"operations": [
    ...     {"method": "post", "path": "/api/v1/chat", "fields": ["answer"]}]})]
    ["POST /api/v1/chat ['answer']"]
    """
    if isinstance(raw, Mapping):
        raw = raw.get("operations", [])
    if not isinstance(raw, list):
        raise ContractError("a contract is a list of operations, or a mapping with `operations`")
    normalised = [{**op, "method": str(op.get("method", "")).upper()} if isinstance(op, Mapping) else op for op in raw]
    try:
        return _OPERATIONS.validate_python(normalised)
    except ValidationError as exc:
        raise ContractError(f"invalid contract: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from exc


def parse_document(text: str | bytes) -> dict[str, Any]:
    """An OpenAPI document from JSON (or YAML) text."""
    try:
        doc = json.loads(text)
    except ValueError:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ContractError(f"not an OpenAPI document (neither JSON nor YAML): {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), Mapping):
        raise ContractError("not an OpenAPI document: no `paths` object")
    return doc


# --------------------------------------------------------------------------- pure: checking


def path_key(path: str) -> str:
    """A path with every parameter made anonymous, and no trailing slash.

    >>> path_key("/api/v1/items/{item_id}/"), path_key("/")
    ('/api/v1/items/{}', '/')
    """
    parts = ["{}" if p.startswith("{") and p.endswith("}") else p for p in path.split("/")]
    key = "/".join(parts)
    return key.rstrip("/") or "/"


def _resolve(doc: Mapping[str, Any], node: Any, depth: int = 0) -> Any:
    """Follow `$ref`s (JSON pointers into `doc`) until a node without one."""
    while isinstance(node, Mapping) and "$ref" in node:
        if depth > MAX_DEPTH:
            raise ContractError(f"$ref chain too deep at {node['$ref']}")
        ref = str(node["$ref"])
        if not ref.startswith("#/"):
            raise ContractError(f"external $ref not supported: {ref}")
        target: Any = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                raise ContractError(f"$ref {ref} points at nothing")
            target = target[part]
        node = target
        depth += 1
    return node


def _variants(doc: Mapping[str, Any], schema: Any, depth: int = 0) -> list[Mapping[str, Any]]:
    """The concrete schemas a value may follow: refs resolved, anyOf/oneOf expanded, arrays unwrapped."""
    if depth > MAX_DEPTH:
        raise ContractError("schema nested too deeply")
    schema = _resolve(doc, schema)
    if not isinstance(schema, Mapping):
        return []
    out: list[Mapping[str, Any]] = []
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key) or []:
            out += _variants(doc, option, depth + 1)
    if schema.get("type") == "array" or ("items" in schema and "properties" not in schema):
        out += _variants(doc, schema.get("items") or {}, depth + 1)
    elif not any(k in schema for k in ("anyOf", "oneOf")) or "properties" in schema or "allOf" in schema:
        out.append(schema)
    return out


def _property(doc: Mapping[str, Any], schema: Mapping[str, Any], name: str, depth: int = 0) -> list[Any]:
    """The schemas of property `name` in `schema` (through allOf); [] when it has none."""
    if depth > MAX_DEPTH:
        raise ContractError("schema nested too deeply")
    found: list[Any] = []
    props = schema.get("properties") or {}
    if name in props:
        found.append(props[name])
    for part in schema.get("allOf") or []:
        for variant in _variants(doc, part, depth + 1):
            found += _property(doc, variant, name, depth + 1)
    extra = schema.get("additionalProperties")
    if not found and isinstance(extra, Mapping):
        found.append(extra)
    elif not found and extra is True:
        found.append({})
    return found


def field_served(doc: Mapping[str, Any], schema: Any, dotted: str) -> bool:
    """Whether a response following `schema` carries the dotted field `dotted`.

    >>> doc = {"components": {"schemas": {"Item": {"properties": {"title": {"type": "string"}}}}}}
    >>> schema = {"properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}}}
    >>> field_served(doc, schema, "items.title"), field_served(doc, schema, "items[].title"), field_served(doc, schema, "items.body")
    (True, True, False)
    """
    current: list[Any] = [schema]
    for raw in dotted.split("."):
        name = raw.removesuffix("[]")
        if not name:
            continue
        following: list[Any] = []
        for node in current:
            for variant in _variants(doc, node):
                following += _property(doc, variant, name)
        if not following:
            return False
        current = following
    return True


def _success_schema(doc: Mapping[str, Any], operation: Mapping[str, Any]) -> Any | None:
    """The JSON schema of an operation's first 2xx response (else `default`), None when it has none."""
    responses = operation.get("responses") or {}
    codes = sorted(c for c in responses if str(c).startswith("2")) or (["default"] if "default" in responses else [])
    for code in codes:
        response = _resolve(doc, responses[code])
        content = (response or {}).get("content") or {}
        for media in sorted(content, key=lambda m: (m != "application/json", m)):
            if "json" in media and (content[media] or {}).get("schema") is not None:
                return content[media]["schema"]
    return None


def check(doc: Mapping[str, Any], operations: Iterable[ApiOperation]) -> list[str]:
    """One problem per operation or response field of `operations` that `doc` does not serve.

    >>> doc = {"paths": {"/api/v1/chat": {"post": {"responses": {"200": {"content": {"application/json": {
    ...     "schema": {"properties": {"answer": {"type": "string"}}}}}}}}}}}
    >>> check(doc, [ApiOperation(method="POST", path="/api/v1/chat", fields=["answer", "sources"]),
    ...             ApiOperation(method="GET", path="/api/v2/chat")])
    ['POST /api/v1/chat: response field sources missing', 'GET /api/v2/chat: operation missing']
    """
    paths = {path_key(p): (p, item) for p, item in (doc.get("paths") or {}).items()}
    problems: list[str] = []
    for op in operations:
        name = f"{op.method} {op.path}"
        found = paths.get(path_key(op.path))
        if found is None:
            problems.append(f"{name}: operation missing")
            continue
        item = _resolve(doc, found[1]) or {}
        operation = item.get(op.method.lower())
        if not isinstance(operation, Mapping):
            served = sorted(m.upper() for m in item if m in ("get", "put", "post", "delete", "patch", "head", "options"))
            problems.append(f"{name}: operation missing (the path serves {', '.join(served) or 'no method'})")
            continue
        if not op.fields:
            continue
        schema = _success_schema(doc, operation)
        if schema is None:
            problems.append(f"{name}: no JSON response schema, fields {', '.join(op.fields)} not served")
            continue
        for dotted in op.fields:
            if not field_served(doc, schema, dotted):
                problems.append(f"{name}: response field {dotted} missing")
    return problems
