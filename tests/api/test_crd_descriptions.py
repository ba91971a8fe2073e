"""Every field of the Release CRD has a description (`kubectl explain` answers for each), and
docs/reference.md is what the models render (controller/api/reference.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from controller.api import reference
from controller.api.crd import render

ROOT = Path(__file__).resolve().parents[2]


# The API server refuses a CRD whose root `metadata` says more than its type (metadata is implicit,
# and `kubectl explain release.metadata` answers from ObjectMeta).
IMPLICIT = {".metadata"}


def undescribed(node: dict[str, Any], path: str = "") -> list[str]:
    """Paths of the schema's fields without a description (objects, list items and map values)."""
    found = []
    for name, sub in (node.get("properties") or {}).items():
        if f"{path}.{name}" not in IMPLICIT and not str(sub.get("description", "")).strip():
            found.append(f"{path}.{name}")
        found += undescribed(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += undescribed(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += undescribed(node["additionalProperties"], f"{path}{{}}")
    return found


def test_every_field_of_the_crd_has_a_description() -> None:
    crd = yaml.safe_load(render())
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        assert schema.get("description")
        assert undescribed(schema) == [], "give these fields a description in controller/api/release.py"


def test_the_check_finds_a_field_without_one() -> None:
    schema = {"properties": {"spec": {"description": "x", "properties": {"a": {"type": "string"}}}}}
    assert undescribed(schema) == [".spec.a"]


def test_the_shipped_crd_is_the_generated_one_with_its_descriptions() -> None:
    assert (ROOT / "crds" / "release.yaml").read_text() == render(), "run `make crds`"


def test_the_reference_is_generated_from_the_models() -> None:
    assert (ROOT / "docs" / "reference.md").read_text() == reference.render(), "run `make crds`"


def test_the_reference_lists_every_field_of_the_spec() -> None:
    text = reference.render()
    for section, field in (("spec.analysis", "failureLimit"), ("spec.strategy.canary", "steps"),
                           ("spec.backend", "ecs"), ("status", "phase")):
        part = text.split(f"## `{section}`\n", 1)[1].split("\n## ", 1)[0]
        assert f"| `{field}`" in part, (section, field)
