"""Tenancy in the local environment: a ReleasePolicy that lets a namespace release one seeded world,
and a team member who may write Releases in one namespace and nothing else (a client-certificate
user minted by the local kube-apiserver's CA, `KubeApiServer.kubeconfig_for`).

`release-controller dev world` prints `policy_for(world, ...)` beside the Release it prints, and the
tenancy e2e tests use both. Dev and test tooling only: the controller never imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controller.testing.aws_world import WorldIds

RELEASE_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


def policy_for(world: WorldIds, name: str, namespaces: Sequence[str], urls: Sequence[str] = (),
               images: Sequence[str] | None = None) -> dict[str, Any]:
    """A ReleasePolicy allowing `namespaces` to release exactly `world` (its service, listener, both
    target groups, distribution, and images of its repository), and to reach `urls`."""
    repository = world.image.rsplit(":", 1)[0]
    return {
        "apiVersion": "delivery.pratiko.ai/v1alpha1",
        "kind": "ReleasePolicy",
        "metadata": {"name": name},
        "spec": {
            "namespaces": list(namespaces),
            "allow": {
                "ecsServices": [f"{world.cluster}/{world.service}"],
                "listeners": [world.listener_arn],
                "targetGroups": [world.stable_target_group_arn, world.canary_target_group_arn],
                "distributions": [world.distribution_id],
                "images": list(images) if images is not None else [f"{repository}:*", f"{repository}@sha256:*"],
                "urls": list(urls),
            },
        },
    }


def team_member_rbac(namespace: str, user: str) -> list[dict[str, Any]]:
    """A Role and RoleBinding: `user` may write Releases in `namespace` and read their Events; no
    Secrets, no ConfigMaps, nothing elsewhere (the issue's attacker: `create releases` and nothing else)."""
    role = f"{user}-releases"
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": role, "namespace": namespace},
         "rules": [{"apiGroups": ["delivery.pratiko.ai"], "resources": ["releases"], "verbs": RELEASE_VERBS},
                   {"apiGroups": ["delivery.pratiko.ai"], "resources": ["releases/status"], "verbs": ["get"]},
                   {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": role, "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]},
    ]
