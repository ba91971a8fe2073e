"""Leaner response models for the four batched reads of the resync.

botocore parses a response by walking its service model: every member of every structure, with a
Python call per member. The resync's reads (DescribeServices, DescribeListeners, ListDistributions,
GetParameters) return far more than the observer looks at (a distribution summary carries its cache
behaviours, certificates and restrictions; a task set its network configuration and tags), and that
walk was half of a steady round's CPU (benchmarks/README.md).

A botocore session takes its models from a replaceable loader component. For these four
operations only, the output shape is replaced by a copy that keeps the members listed
below (with copies of the nested shapes, named `Lean...`): the parser skips the rest of the document.
Every other operation, including those that return the same shapes (CreateTaskSet, GetDistribution,
UpdateService...), keeps the full model. `controller/aws/observe.py` reads no member that is not
listed here; tests/aws/test_lean.py checks that the observation is the same with and without.

A shape named here that a future botocore renames is left whole (and the model still loads): the
read is then as slow as before, never wrong.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from botocore.loaders import Loader

# service -> operation -> {structure shape name: members to keep}
LEAN: Mapping[str, Mapping[str, Mapping[str, tuple[str, ...]]]] = {
    "ecs": {
        "DescribeServices": {
            "DescribeServicesResponse": ("services", "failures"),
            "Service": ("serviceArn", "serviceName", "clusterArn", "status", "desiredCount",
                        "deploymentController", "taskDefinition", "taskSets", "deployments"),
            "TaskSet": ("id", "taskSetArn", "externalId", "taskDefinition", "scale", "status", "loadBalancers",
                        "runningCount", "pendingCount", "stabilityStatus", "computedDesiredCount",
                        "stabilityStatusAt", "updatedAt"),
            "Deployment": ("id", "status", "taskDefinition", "rolloutState", "runningCount", "desiredCount"),
            "LoadBalancer": ("targetGroupArn",),
        },
    },
    "elbv2": {
        "DescribeListeners": {
            "DescribeListenersOutput": ("Listeners", "NextMarker"),
            "Listener": ("ListenerArn", "DefaultActions"),
            "Action": ("Type", "TargetGroupArn", "ForwardConfig"),
            "ForwardActionConfig": ("TargetGroups",),
        },
    },
    "cloudfront": {
        "ListDistributions": {
            "DistributionList": ("Marker", "NextMarker", "MaxItems", "IsTruncated", "Quantity", "Items"),
            "DistributionSummary": ("Id", "Status", "Origins"),
            "Origins": ("Quantity", "Items"),
            "Origin": ("Id", "OriginPath"),
        },
    },
    "ssm": {
        "GetParameters": {
            "GetParametersResult": ("Parameters", "InvalidParameters"),
            "Parameter": ("Name", "Value"),
        },
    },
}


def leaner(service_data: dict[str, Any], keep: Mapping[str, Mapping[str, tuple[str, ...]]]) -> None:
    """Point each operation of `keep` at lean copies of its output shapes (in place)."""
    shapes: dict[str, Any] = service_data.get("shapes", {})
    for operation, members in keep.items():
        op = service_data.get("operations", {}).get(operation)
        output = (op or {}).get("output")
        if output is None:
            continue
        output["shape"] = _lean(shapes, output["shape"], members, {})


def _lean(shapes: dict[str, Any], name: str, keep: Mapping[str, tuple[str, ...]], done: dict[str, str]) -> str:
    """The name of a lean copy of shape `name` (or `name` itself when nothing in it is trimmed)."""
    if name in done:
        return done[name]
    shape = shapes.get(name)
    if shape is None:
        return name
    done[name] = name  # a recursive shape points back at itself unchanged
    if shape.get("type") == "structure":
        members = shape.get("members", {})
        wanted = keep.get(name)
        kept = {m: members[m] for m in wanted if m in members} if wanted is not None else dict(members)
        new_members = {
            m: {**spec, "shape": _lean(shapes, spec["shape"], keep, done)} for m, spec in kept.items()
        }
        if wanted is None and new_members == members:
            return name
        lean = copy.deepcopy({k: v for k, v in shape.items() if k != "members"})
        lean["members"] = new_members
        if "required" in lean:
            lean["required"] = [m for m in lean["required"] if m in new_members]
    elif shape.get("type") == "list":
        member = shape["member"]
        inner = _lean(shapes, member["shape"], keep, done)
        if inner == member["shape"]:
            return name
        lean = {**copy.deepcopy(shape), "member": {**member, "shape": inner}}
    else:
        return name
    lean_name = f"Lean{name}"
    shapes[lean_name] = lean
    done[name] = lean_name
    return lean_name


class LeanLoader(Loader):
    """botocore's model loader, with the lean output models of `LEAN` for its services."""

    def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
        data = super().load_service_model(service_name, type_name, api_version)
        keep = LEAN.get(service_name)
        if type_name != "service-2" or keep is None:
            return data
        data = copy.deepcopy(data)  # the loader caches its dicts: other sessions keep the full model
        leaner(data, keep)
        return data


def register(session: Any) -> None:
    """Make `session` (a botocore Session) load the lean output models for the clients it creates."""
    session.register_component("data_loader", LeanLoader(session.get_component("data_loader").search_paths))
