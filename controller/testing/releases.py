"""Release manifests for a seeded local world: what tests, the demo and the benchmarks apply."""

from __future__ import annotations

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
    return {
        "apiVersion": "delivery.pratiko.ai/v1alpha1",
        "kind": "Release",
        "metadata": {"name": name, "namespace": namespace},
        "spec": world.spec(version=version, frontend_version=frontend_version, strategy=strategy,
                           environment=environment, **spec_extra),
    }
