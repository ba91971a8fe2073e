"""Start kopf with our registry, the reconciler, liveness and metrics endpoints."""

from __future__ import annotations

import asyncio
import logging

import kopf
from prometheus_client import start_http_server

from controller import logs
from controller.operator.app import build_runtime
from controller.metrics import REGISTRY
from controller.operator import heap
from controller.operator.handlers import api_connection_limit, registry
from controller.operator.selector import parse_selector
from controller.operator.settings import OperatorSettings


def run_operator(settings: OperatorSettings, *, stop_flag: asyncio.Event | None = None) -> None:
    # kopf's loggers propagate to the root handler installed here (kopf.run does not add its own).
    logs.configure("json" if settings.log_format == "json" else "text", verbose=settings.verbose)
    heap.tune()  # before the first connections and threads: their large blocks go back to the OS
    if settings.metrics_port:
        start_http_server(settings.metrics_port, registry=REGISTRY)
    memo = kopf.Memo(
        runtime=build_runtime(settings),
        selector=parse_selector(settings.selector) if settings.selector else None,
        shard=settings.selector,
        api_connections=api_connection_limit(() if settings.all_namespaces else settings.namespaces),
    )
    if settings.leader_election and settings.peering:
        # The leader Lease decides which process acts (controller/operator/leadership.py); kopf's
        # peering would pause watches on its own keepalives, and die with its peering objects.
        logging.getLogger(__name__).info(
            "--peering %s: kopf peering is off; the leader Lease of this scope decides which process acts",
            settings.peering)
    kopf.run(
        registry=registry,
        memo=memo,
        clusterwide=settings.all_namespaces,
        namespaces=() if settings.all_namespaces else settings.namespaces,
        standalone=settings.leader_election or settings.peering is None,
        # A name given makes kopf wait for its peering objects even standalone: none with the Lease.
        peering_name=None if settings.leader_election else settings.peering,
        priority=settings.priority,
        liveness_endpoint=f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None,
        stop_flag=stop_flag,
    )
