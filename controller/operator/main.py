"""Start kopf with our registry, the reconciler, liveness and metrics endpoints."""

from __future__ import annotations

import asyncio
import logging

import kopf
from prometheus_client import start_http_server

from controller.app import build_runtime
from controller.metrics import REGISTRY
from controller.operator.handlers import registry
from controller.settings import OperatorSettings


def run_operator(settings: OperatorSettings, *, stop_flag: asyncio.Event | None = None) -> None:
    logging.basicConfig(
        level=logging.DEBUG if settings.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not settings.verbose:
        logging.getLogger("kopf").setLevel(logging.WARNING)
        # Peering changes (pausing in favour of a higher-priority replica, resuming) are rare and
        # say which replica works: keep them.
        logging.getLogger("kopf._core.engines.peering").setLevel(logging.INFO)
        logging.getLogger("botocore").setLevel(logging.WARNING)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, registry=REGISTRY)
    memo = kopf.Memo(runtime=build_runtime(settings))
    kopf.run(
        registry=registry,
        memo=memo,
        clusterwide=settings.all_namespaces,
        namespaces=() if settings.all_namespaces else settings.namespaces,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=settings.priority,
        liveness_endpoint=f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None,
        stop_flag=stop_flag,
    )
