"""Render `crds/release.yaml` from the pydantic models.

pydantic emits JSON Schema with `$ref`s and `anyOf` unions; the API server wants a structural
OpenAPI v3 schema: every node typed, references inlined, no nulls. This module does that
translation and nothing else, so the models stay the single source of truth.
"""

from __future__ import annotations

from typing import Any

import datetime as dt

import yaml
from pydantic.json_schema import GenerateJsonSchema

from controller.api.types import format_duration

from pydantic import BaseModel

from controller.api.policy import POLICY_KIND, POLICY_PLURAL, POLICY_SINGULAR, ReleasePolicySpec
from controller.api.release import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION, ReleaseSpec, ReleaseStatus

# The fixed printer columns (Phase, Backend, Frontend, Weight, Age; docs/architecture.md, "Fixed
# names") stay; Backend and Frontend are what the spec asks for, Live is the backend version that serves (status), so a rolled-back
# Release reads Backend 2.0.0, Live 1.0.0. `-o wide` (priority 1) adds the live frontend and why
# the Release is or is not Ready.
PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Backend", "type": "string", "jsonPath": ".spec.backend.version",
     "description": "The backend version the spec asks for."},
    {"name": "Live", "type": "string", "jsonPath": ".status.backend.stableVersion",
     "description": "The backend version serving (the stable one; a canary takes Weight percent)."},
    {"name": "Frontend", "type": "string", "jsonPath": ".spec.frontend.version",
     "description": "The frontend version the spec asks for."},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.backend.canaryWeight",
     "description": "Percent of traffic on the backend canary."},
    {"name": "Serving", "type": "string", "jsonPath": ".status.backend.traffic",
     "description": "Every backend version receiving traffic and its weight, as AWS reported them."},
    {"name": "Step", "type": "integer", "jsonPath": ".status.currentStep",
     "description": "Steps of the rollout done (of status.stepCount)."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Live-Frontend", "type": "string", "jsonPath": ".status.frontend.stableVersion", "priority": 1,
     "description": "The frontend version viewers get."},
    {"name": "Reason", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason', "priority": 1,
     "description": "Reason of the Ready condition."},
]

_DROP = {"title", "$defs"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            return _structural({**options[0], **rest}, defs)
        raise ValueError(f"a union that is not structural: {node['anyOf']}")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "default" and value is None:
            continue
        else:
            out[key] = _structural(value, defs)
    if "properties" in out:
        out.setdefault("type", "object")
    return out


class _KubernetesJsonSchema(GenerateJsonSchema):
    """Defaults written as the API server will validate them: durations as "30s", not ISO 8601."""

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, dt.timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_KubernetesJsonSchema)
    defs = raw.get("$defs", {})
    return _structural(raw, defs)  # type: ignore[no-any-return]


def _status_schema() -> dict[str, Any]:
    schema = schema_of(ReleaseStatus)
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return schema


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a plain dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": ["all", "delivery"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A coordinated release of a backend on ECS and a frontend on CloudFront.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "Versioned schema of this object: delivery.pratiko.ai/v1alpha1."},
                                "kind": {"type": "string", "description": "Release."},
                                # The API server refuses anything but the type here (metadata is implicit).
                                "metadata": {"type": "object"},
                                "spec": schema_of(ReleaseSpec),
                                "status": _status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


POLICY_PRINTER_COLUMNS = [
    {"name": "Namespaces", "type": "string", "jsonPath": ".spec.namespaces",
     "description": "The namespaces named (a namespaceSelector may match more)."},
    {"name": "Role", "type": "string", "jsonPath": ".spec.roleArn",
     "description": "The IAM role AWS calls for these Releases are made with."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def policy_crd() -> dict[str, Any]:
    """The ReleasePolicy CustomResourceDefinition (cluster-scoped, written by cluster admins)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{POLICY_PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": POLICY_KIND,
                "listKind": f"{POLICY_KIND}List",
                "plural": POLICY_PLURAL,
                "singular": POLICY_SINGULAR,
                "categories": ["delivery"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": POLICY_PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "What the Releases of some namespaces may move in AWS and which URLs the "
                                           "operator may reach for them. Several matching policies add up.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": schema_of(ReleasePolicySpec),
                            },
                        }
                    },
                }
            ],
        },
    }


_HEADER = "# Generated from controller/api by `release-controller crds{flag}`. Do not edit by hand.\n"


def render() -> str:
    """The CRD as YAML, byte-for-byte what `crds/release.yaml` holds."""
    body: str = yaml.safe_dump(crd(), sort_keys=False, width=120)
    return _HEADER.format(flag="") + body


def render_policy() -> str:
    """The ReleasePolicy CRD as YAML, byte-for-byte what `crds/releasepolicy.yaml` holds."""
    body: str = yaml.safe_dump(policy_crd(), sort_keys=False, width=120)
    return _HEADER.format(flag=" --kind ReleasePolicy") + body
