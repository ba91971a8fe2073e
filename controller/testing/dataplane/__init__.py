"""The local data plane: what stands in for ECS tasks and the ALB when the AWS is a moto server.

Moto records task sets and listener weights but serves no traffic. This package turns those records
into real HTTP traffic on loopback, so health analysis measures something:

- `workload`: one simulated backend process per ECS task set, exporting Prometheus metrics, with
  an error rate and latency chosen per version from a control file;
- `supervisor.DataPlane`: polls moto, starts and stops workloads to match the task sets, registers
  them with Prometheus by file-based service discovery, and owns the balancer;
- `balancer`: routes each request by the listener's rules (`rules`: priority, conditions such as
  an `http-header` one, weighted forward, fixed response), as an ALB does, and logs each one;
- `loadgen`: a steady request rate against the balancer.

The data plane never changes what the controller owns (task sets, listeners). It is the local ECS's
agent: against `controller.testing.local_ecs` it reports the tasks it really runs (states, stop
reasons, exit codes, target health), which ECS itself would record; against a plain moto it only reads.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported lazily: `python -m controller.testing.dataplane.workload` imports this package first, and
# an eager import of `workload` here would run it twice (runpy warns) and slow every workload start.
_EXPORTS = {
    "Balancer": "balancer",
    "Router": "balancer",
    "Target": "balancer",
    "read_log": "balancer",
    "LoadGenerator": "loadgen",
    "LoadStats": "loadgen",
    "DataPlane": "supervisor",
    "version_from_image": "supervisor",
    "Behaviour": "workload",
    "write_behaviour": "workload",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
