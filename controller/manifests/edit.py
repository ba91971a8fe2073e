"""Release manifests as files: find a Release in a (multi-document) YAML file, change a few values
in place, and validate it offline.

Used by CI (`release-controller set-version`, `release-controller validate`) and by the GitOps
write-back (controller.gitops), which must leave every other byte of a file people own alone.

Edits are targeted, not a re-dump: ruamel.yaml composes the file into nodes that carry the exact
character offsets of each scalar, and only those spans are replaced (in their original quoting
style), so comments, key order, indentation, blank lines and other documents stay byte-identical.
A key that is missing is inserted as a new line in its block mapping, indented like its siblings.

Validation follows the API server where it can: the structural schema of the CRD (the same one
`crds/release.yaml` is rendered from) for types, enums, patterns, bounds, required and unknown
fields, with the API server's field paths (`spec.strategy.canary.steps[0].setWeight`) and wording;
then each CEL rule of the CRD by an equivalent Python check built from the models' own patterns and
hints (a test fails when a CEL rule has none; a messageExpression rule says what its expression would),
each on the parts of the object that are sound, so one run reports a missing field and a bad version
together where the API server would stop at the first; then the pydantic models the controller parses with. This module does no I/O besides what
its callers hand it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from controller.manifests.validate import validate_body
from controller.api.release import (
    GROUP,
    KIND,
)


class ManifestError(ValueError):
    """The file cannot be edited as asked (no such Release, a flow mapping to insert into, ...)."""


# --------------------------------------------------------------------------- locating


@dataclass(frozen=True)
class ReleaseDoc:
    """One Release document of a file: its composed node and its identity."""

    index: int
    node: MappingNode
    name: str | None
    namespace: str | None


def _compose_all(text: str) -> list[Node | None]:
    return list(YAML(typ="rt").compose_all(io.StringIO(text)))


def _get(node: Node, key: str) -> Node | None:
    """`node[key]`; in a sequence, `name=<value>` is the item whose `name` is that value (a service of
    `backend.services`: `backend.services.name=mcp.image`)."""
    if isinstance(node, SequenceNode) and key.startswith("name="):
        wanted = key.removeprefix("name=")
        return next((item for item in node.value if _scalar(_get(item, "name")) == wanted), None)
    if not isinstance(node, MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return v  # type: ignore[no-any-return]
    return None


def _scalar(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def release_docs(text: str) -> list[ReleaseDoc]:
    """Every document of `text` that is a Release of our API group."""
    found = []
    for index, doc in enumerate(_compose_all(text)):
        if doc is None:
            continue
        api = _scalar(_get(doc, "apiVersion")) or ""
        if _scalar(_get(doc, "kind")) != KIND or not api.startswith(GROUP + "/"):
            continue
        meta = _get(doc, "metadata")
        assert isinstance(doc, MappingNode)
        found.append(ReleaseDoc(index, doc, _scalar(_get(meta, "name")) if meta else None,
                                _scalar(_get(meta, "namespace")) if meta else None))
    return found


def find_release(text: str, name: str | None = None, namespace: str | None = None) -> ReleaseDoc:
    """The one Release named `name` in `namespace` (a document without a namespace matches any,
    as a Kustomization's `namespace:` may set it); with no name, the file's only Release."""
    docs = release_docs(text)
    if name is not None:
        docs = [d for d in docs if d.name == name and (namespace is None or d.namespace in (None, namespace))]
    if not docs:
        who = f" {namespace}/{name}" if name else ""
        raise ManifestError(f"no Release{who} in the file")
    if len(docs) > 1:
        raise ManifestError(f"{len(docs)} Releases match; name one (documents {[d.index for d in docs]})")
    return docs[0]


# --------------------------------------------------------------------------- editing

_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./:@+-]*$")


def _render(value: str, style: str | None) -> str:
    """A scalar in the quoting style the old one had; plain only when YAML reads it back as is."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"':
        return json.dumps(value)
    if _PLAIN_SAFE.match(value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    """Just past the newline ending the line that holds `index` (or the end of the text)."""
    at = text.find("\n", index)
    return len(text) if at < 0 else at + 1


def _plan_set(text: str, root: MappingNode, path: list[str], value: str) -> _Edit | None:
    """The edit that makes root[path...] == value, or None when it already is."""
    node: Node = root
    for depth, key in enumerate(path):
        child = _get(node, key)
        if child is None and key.startswith("name="):
            raise ManifestError(f"{'.'.join(path[:depth])} has no item with {key}")
        if child is None:
            return _plan_insert(text, node, path[depth:], value)
        node = child
    if not isinstance(node, ScalarNode):
        raise ManifestError(f"{'.'.join(path)} is not a scalar")
    if node.value == value:
        return None
    return _Edit(node.start_mark.index, node.end_mark.index, _render(value, node.style))


def _plan_insert(text: str, parent: Node, rest: list[str], value: str) -> _Edit:
    if not isinstance(parent, MappingNode) or parent.flow_style or not parent.value:
        raise ManifestError(f"cannot add {'.'.join(rest)}: its parent is not a block mapping")
    first_key = parent.value[0][0]
    indent = first_key.start_mark.column
    last_value = parent.value[-1][1]
    # The new key goes on the line after the parent's last entry (a trailing comment on that
    # line stays where it is).
    at = _line_end(text, max(last_value.end_mark.index - 1, last_value.start_mark.index))
    step = 2
    lines = []
    for depth, key in enumerate(rest[:-1]):
        lines.append(" " * (indent + step * depth) + f"{key}:\n")
    lines.append(" " * (indent + step * (len(rest) - 1)) + f"{rest[-1]}: {_render(value, None)}\n")
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    return _Edit(at, at, prefix + "".join(lines))


def set_values(
    text: str, values: Mapping[str, str], *, name: str | None = None, namespace: str | None = None
) -> str:
    """`text` with the Release's fields at the dotted `values` paths (under `spec`) set.

    >>> doc = "kind: Release\\napiVersion: delivery.pratiko.ai/v1alpha1\\nspec:\\n  backend:\\n    version: 1.0.0  # pinned\\n"
    >>> print(set_values(doc, {"backend.version": "1.1.0"}), end="")
    kind: Release
    apiVersion: delivery.pratiko.ai/v1alpha1
    spec:
      backend:
        version: 1.1.0  # pinned
    """
    doc = find_release(text, name, namespace)
    edits = [e for e in (_plan_set(text, doc.node, ["spec", *p.split(".")], v) for p, v in values.items()) if e]
    # Apply from the end so earlier offsets stay valid.
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text



# --------------------------------------------------------------------------- set-version

SET_VERSION_PATHS = {
    "backend": "backend.version",
    "image": "backend.image",
    "frontend": "frontend.version",
    "change_class": "strategy.changeClass",
}


def _tier_images(old: str | None, new: str, services: SequenceNode) -> dict[str, str]:
    """A tier's `--backend new`: each service's image tagged with the old version, tagged `new`.

    >>> import ruamel.yaml
    >>> node = ruamel.yaml.YAML().compose("[{name: api, image: r/api:1.0.0}, {name: w, image: r/w@sha256:ab}]")
    >>> _tier_images("1.0.0", "1.1.0", node)
    {'backend.services.name=api.image': 'r/api:1.1.0'}
    """
    out: dict[str, str] = {}
    for item in services.value:
        name, image = _scalar(_get(item, "name")), _scalar(_get(item, "image"))
        if name and image and old and "@" not in image and image.endswith(f":{old}"):
            out[f"backend.services.name={name}.image"] = image[: -len(old)] + new
    return out


def set_version(
    text: str, *, backend: str | None = None, image: str | None = None, frontend: str | None = None,
    change_class: str | None = None, name: str | None = None, namespace: str | None = None,
) -> str:
    """The file with the given values set, refused (ManifestError) when the result would not validate."""
    given = {"backend": backend, "image": image, "frontend": frontend, "change_class": change_class}
    values = {SET_VERSION_PATHS[k]: v for k, v in given.items() if v is not None}
    if not values:
        raise ManifestError("nothing to set: give --backend, --image, --frontend or --change-class")
    doc = find_release(text, name, namespace)
    spec_node = _get(doc.node, "spec") or doc.node
    if "frontend.version" in values and _get(spec_node, "frontend") is None:
        raise ManifestError("the Release has no spec.frontend to set a version in")
    services = _get(_get(spec_node, "backend") or spec_node, "services")
    if isinstance(services, SequenceNode) and backend is not None:
        if image is not None:
            raise ManifestError("backend.services names an image per service: give --backend only, and each "
                                "service's image whose tag is the old version gets the new one")
        values.update(_tier_images(_scalar(_get(_get(spec_node, "backend") or spec_node, "version")), backend, services))
    updated = set_values(text, values, name=doc.name, namespace=doc.namespace)
    body = list(yaml.safe_load_all(updated))[doc.index]
    problems = validate_body(body)
    if problems:
        raise ManifestError("the result would not validate: " + "; ".join(problems))
    return updated
