"""Start kopf with our registry, the reconciler, liveness and metrics endpoints."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from prometheus_client import start_http_server

from controller import logs
from controller.operator.app import build_runtime
from controller.metrics import REGISTRY
from controller.operator import heap
from controller.operator.handlers import api_connection_limit, registry
from controller.operator.selector import parse_selector
from controller.operator.settings import OperatorSettings

log = logging.getLogger(__name__)


def run_operator(settings: OperatorSettings, *, stop_flag: asyncio.Event | None = None) -> None:
    # kopf's loggers propagate to the root handler installed here (kopf.run does not add its own).
    logs.configure("json" if settings.log_format == "json" else "text", verbose=settings.verbose)
    ignored = [flag for flag, value in (("--peering", settings.peering), ("--priority", settings.priority))
               if value is not None]
    if ignored:
        log.warning("%s: deprecated and ignored, kopf peering is gone (the leader Lease of this scope decides "
                    "which process acts); remove it from the Deployment's args", " and ".join(ignored))
    if not settings.leader_election:
        log.warning("leader election is off (RELEASE_CONTROLLER_LEADER_ELECTION=false): every process started "
                    "on this scope writes; run exactly one")
    heap.tune()  # before the first connections and threads: their large blocks go back to the OS
    if settings.metrics_port:
        start_http_server(settings.metrics_port, registry=REGISTRY)
    memo = kopf.Memo(
        runtime=build_runtime(settings),
        selector=parse_selector(settings.selector) if settings.selector else None,
        shard=settings.selector,
        api_connections=api_connection_limit(() if settings.all_namespaces else settings.namespaces),
    )
    kopf.run(registry=registry, memo=memo, stop_flag=stop_flag, **kopf_options(settings))


def kopf_options(settings: OperatorSettings) -> dict[str, Any]:
    """What kopf is told about the scope and the process: never peering, whatever the settings say.
    The leader Lease (controller/operator/leadership.py) decides who acts, so the operator needs no
    KopfPeering objects, no kopf.dev CRDs and no rights on them."""
    return {
        "clusterwide": settings.all_namespaces,
        "namespaces": () if settings.all_namespaces else settings.namespaces,
        "standalone": True,
        "liveness_endpoint": f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None,
    }
