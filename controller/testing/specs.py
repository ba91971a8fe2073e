"""The one builder of Release specs for tests, the demo and the benchmarks (wire form, camelCase).

Every caller that needs a spec goes through `release_spec`: `WorldIds.spec` (a spec pointing at a
seeded moto world), `releases.release_for` (a whole manifest for the API server), and the pure
planner tests' `make_spec` (fixed fake ARNs). `merge` deep-merges overrides into a body.

This module must not be imported by the controller itself: it is test and dev tooling.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

FAST: Mapping[str, Any] = {"type": "Fast"}


def release_spec(
    *,
    version: str,
    image: str,
    cluster: str,
    service: str,
    container_name: str = "api",
    traffic: tuple[str, str, str] | None = None,
    environment: str = "production",
    strategy: Mapping[str, Any] | None = None,
    frontend: Mapping[str, Any] | None = None,
    **more: Any,
) -> dict[str, Any]:
    """A spec releasing `image` (`version`) to ECS `cluster`/`service`.

    `traffic` is (listener ARN, stable target group ARN, canary target group ARN); `strategy`
    defaults to Fast; `more` sets further top-level fields (`analysis`, `featureFlags`, ...) and
    replaces whatever the arguments built. Mappings are copied, so callers may reuse theirs.
    """
    backend: dict[str, Any] = {
        "version": version,
        "image": image,
        "ecs": {"cluster": cluster, "service": service, "containerName": container_name},
    }
    if traffic is not None:
        listener, stable, canary = traffic
        backend["traffic"] = {"listenerArn": listener, "stableTargetGroupArn": stable, "canaryTargetGroupArn": canary}
    spec: dict[str, Any] = {
        "environment": environment,
        "backend": backend,
        "strategy": copy.deepcopy(dict(strategy or FAST)),
    }
    if frontend is not None:
        spec["frontend"] = copy.deepcopy(dict(frontend))
    spec.update(copy.deepcopy(more))
    return spec


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over` merged in, nested mappings merged key by key (not replaced).

    >>> merge({"backend": {"version": "1", "image": "a"}}, {"backend": {"version": "2"}})
    {'backend': {'version': '2', 'image': 'a'}}
    """
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out
