"""Release manifests for a seeded local world: what tests, the demo and the benchmarks apply."""

from __future__ import annotations

import copy
from typing import Any

from controller.testing.aws_world import WorldIds


def release_for(
    world: WorldIds,
    *,
    name: str,
    namespace: str,
    version: str,
    strategy: dict[str, Any] | None = None,
    frontend_version: str | None = None,
    environment: str = "development",
    **spec_extra: Any,
) -> dict[str, Any]:
    """A Release whose backend is `repo/...:<version>` in the world's ECS service and ALB."""
    image = world.image.rsplit(":", 1)[0] + f":{version}"
    spec: dict[str, Any] = {
        "environment": environment,
        "backend": {
            "version": version,
            "image": image,
            "ecs": {"cluster": world.cluster, "service": world.service, "containerName": world.container_name},
            "traffic": {
                "listenerArn": world.listener_arn,
                "stableTargetGroupArn": world.stable_target_group_arn,
                "canaryTargetGroupArn": world.canary_target_group_arn,
            },
        },
        "strategy": copy.deepcopy(strategy) if strategy else {"type": "Fast"},
    }
    if frontend_version:
        spec["frontend"] = {
            "version": frontend_version,
            "cloudfront": {"distributionId": world.distribution_id, "originId": world.origin_id, "bucket": world.bucket},
        }
    spec.update(copy.deepcopy(spec_extra))
    return {
        "apiVersion": "delivery.pratiko.ai/v1alpha1",
        "kind": "Release",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
