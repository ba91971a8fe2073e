"""The baseline for benchmarks/operator_scale.py: a kopf operator that watches Releases and does nothing.

It has the same shape as the real operator (controller/operator/handlers.py) minus the work: the
same kopf settings (annotation storage, watch timeouts), a no-op `on.event` handler, and either
one daemon per Release that wakes every `--resync` seconds and returns to sleep (`--mode daemon`,
the real operator's structure) or a no-op `kopf.timer` with that interval (`--mode timer`, the
idiomatic kopf periodic handler). Each wake-up counts in `bare_kopf_wakeups_total` on /metrics, the
counterpart of the real operator's `release_controller_reconcile_total`.

So the difference between the two processes' CPU is what the controller's own work costs on top
of kopf: the AWS reads, parsing, planning and status comparison. This module must not import the
controller: the baseline has to stay bare.

    python benchmarks/bare_kopf.py --namespace bench --resync 10 --metrics-port 9100
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import kopf
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

RELEASES = ("delivery.pratiko.ai", "v1alpha1", "releases")
STORAGE_PREFIX = "bare-kopf.delivery.pratiko.ai"

REGISTRY = CollectorRegistry()
WAKEUPS = Counter("bare_kopf_wakeups_total", "Periodic no-op wake-ups (daemon loop or timer).", registry=REGISTRY)
EVENTS = Counter("bare_kopf_events_total", "Watch events handled (no-op).", registry=REGISTRY)
OBJECTS = Gauge("bare_kopf_objects", "Releases with a running daemon (daemon mode) or seen (timer mode).", registry=REGISTRY)


def build_registry(mode: str, resync: float) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    seen: set[tuple[str, str]] = set()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # The real operator's settings, so that only the handlers differ.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STORAGE_PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=STORAGE_PREFIX, key="last-handled-configuration"
        )
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330

    @kopf.on.event(*RELEASES, registry=registry)
    def noticed(body: kopf.Body, **_: Any) -> None:
        EVENTS.inc()
        if mode == "timer":
            key = (body.metadata.namespace or "", body.metadata.name or "")
            if key not in seen:
                seen.add(key)
                OBJECTS.inc()

    if mode == "daemon":

        @kopf.daemon(*RELEASES, registry=registry, cancellation_timeout=30, initial_delay=0)
        async def worker(stopped: kopf.DaemonStopped, **_: Any) -> None:
            OBJECTS.inc()
            try:
                while not stopped:
                    WAKEUPS.inc()
                    await stopped.wait(resync)
            finally:
                OBJECTS.dec()

    else:

        @kopf.timer(*RELEASES, registry=registry, interval=resync, initial_delay=0)
        def tick(**_: Any) -> None:
            WAKEUPS.inc()

    return registry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--resync", type=float, default=30.0)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--mode", choices=("daemon", "timer"), default="daemon")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf").setLevel(logging.WARNING)
    start_http_server(args.metrics_port, addr="127.0.0.1", registry=REGISTRY)
    kopf.run(registry=build_registry(args.mode, args.resync), namespaces=[args.namespace], standalone=True)


if __name__ == "__main__":
    main()
