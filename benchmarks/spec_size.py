"""How large a Release spec the CRD's schema allows: the worst case, field by field.

    .venv/bin/python benchmarks/spec_size.py

Walks the schema of `crds/release.yaml` (as the models render it) and adds up the largest compact
JSON a spec could be: every string at its maxLength (one byte per character: ASCII; a character can
take up to 4 bytes in the object and 6 in a JSON escape, so the real worst case is larger), every
list at maxItems, every map at maxProperties, each number 20 bytes. A string, list or map with no
bound counts once and is listed as unbounded. Feature flags are counted at their real bound, the
8192-byte document of the admission policy (manifests/admission), not the schema's.

What to compare the figures with: kubectl's client-side apply copies the whole object into the
`kubectl.kubernetes.io/last-applied-configuration` annotation, and all annotations together may
hold 256 KiB; etcd stores an object of at most 1.5 MiB. A measurement, not a test: it asserts nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.api.crd import schema_of  # noqa: E402
from controller.api.release import SSM_ADVANCED_LIMIT, ReleaseSpec  # noqa: E402

NUMBER = 20
ANNOTATIONS_LIMIT = 256 * 1024
ETCD_LIMIT = 1536 * 1024


def worst(node: dict[str, Any], path: str, unbounded: list[str]) -> int:
    """The largest compact JSON of a value of `node`, in bytes (strings ASCII)."""
    if path == "spec.featureFlags":
        return SSM_ADVANCED_LIMIT  # the policy's bound on the whole document
    kind = node.get("type")
    if kind == "string":
        if "enum" in node:
            return 2 + max(len(str(e)) for e in node["enum"])
        if "maxLength" not in node:
            unbounded.append(path)
        return 2 + int(node.get("maxLength", 0))
    if kind in ("integer", "number"):
        return NUMBER
    if kind == "boolean":
        return 5
    if kind == "array":
        if "maxItems" not in node:
            unbounded.append(path)
        items = int(node.get("maxItems", 1))
        return 1 + items * (worst(node.get("items", {}), f"{path}[]", unbounded) + 1)
    if kind == "object" or "properties" in node:
        size = 2
        for key, sub in node.get("properties", {}).items():
            size += len(key) + 4 + worst(sub, f"{path}.{key}", unbounded)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            if "maxProperties" not in node:
                unbounded.append(f"{path}{{}}")
            size += int(node.get("maxProperties", 1)) * (4 + worst(extra, f"{path}{{}}", unbounded))
        return size
    unbounded.append(f"{path} (untyped)")
    return 0


def main() -> None:
    schema = schema_of(ReleaseSpec)
    unbounded: list[str] = []
    total = worst(schema, "spec", unbounded)
    print(f"{'field':<22}{'worst case (bytes)':>20}")
    for key, sub in schema.get("properties", {}).items():
        print(f"spec.{key:<17}{worst(sub, f'spec.{key}', []):>20,}")
    print(f"{'spec':<22}{total:>20,}")
    print(f"annotations limit (client-side apply): {ANNOTATIONS_LIMIT:,}; etcd object limit: {ETCD_LIMIT:,}")
    print(f"unbounded (counted once): {len(unbounded)}")
    for path in unbounded:
        print(f"  {path}")


if __name__ == "__main__":
    main()
