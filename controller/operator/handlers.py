"""kopf handlers for Releases. Each one is a line or two: the work is in `runtime` and `reconciler`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
import kopf

from controller.api.reasons import Reason
from controller.api.release import GROUP, PLURAL, VERSION
from controller.fencing import NotLeading
from controller.kube.client import ObjectRef
from controller.operator.runtime import Runtime

registry = kopf.OperatorRegistry()
RELEASES = (GROUP, VERSION, PLURAL)
STORAGE_PREFIX = f"release-controller.{GROUP}"


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf keeps no copy of the object's last handled spec.

    kopf's default stores the whole spec in an annotation to compute diffs for on-create/update
    handlers. We have none: every pass reconciles from the object and the observed world. The copy
    would only double the object's size and, with `kubectl apply`'s own copy, push a large spec over
    the 256 KiB annotation limit, after which no write to the object (not even the finalizer's
    removal on delete) succeeds.
    """

    def fetch(self, *, body: kopf.Body) -> None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        return None


def _runtime(memo: Any) -> Runtime:
    runtime: Runtime = memo.runtime
    return runtime


def in_shard(labels: kopf.Labels, memo: Any, **_: Any) -> bool:
    """`run --selector`: only the Releases of this Deployment's shard (controller/operator/selector.py)."""
    selects = getattr(memo, "selector", None)
    return selects is None or bool(selects(labels))


# Connections kopf may open to the API server besides its watch streams (`watch_streams`).
API_CONNECTIONS = 64


def watch_streams(namespaces: Sequence[str]) -> int:
    """The watch requests kopf holds open at once, each on a connection of its own: the Releases in
    each watched namespace (one for all of them, cluster-wide), the CRDs (kopf's resource observer),
    and the namespaces when it watches given ones (its namespace observer; kopf/_core/reactor/
    observation.py). No peering stream: kopf runs standalone (controller/operator/main.py).

    >>> watch_streams(()), watch_streams(("a", "b", "c"))
    (2, 5)
    """
    return max(len(namespaces), 1) + 1 + (1 if namespaces else 0)


def api_connection_limit(namespaces: Sequence[str]) -> int | None:
    """How many connections kopf's session may hold; None (unbounded, kopf's default) when a
    namespace pattern may match any number of namespaces, each with watch streams of its own.

    Unbounded, kopf opens one TLS connection per object it patches at once: adopting 1,000 new
    Releases (each gets a finalizer) opened about 450, and asyncio keeps a 256 KiB read buffer
    for each. They close after aiohttp's keep-alive, but the memory stays with the process
    (benchmarks/README.md, "Memory at adoption").
    """
    if any(c in ns for ns in namespaces for c in "*?[!"):
        return None
    return API_CONNECTIONS + watch_streams(namespaces)


@kopf.on.login(registry=registry)
async def login(memo: Any, **kwargs: Any) -> kopf.ConnectionInfo | kopf.AiohttpSession | None:
    """In a pod, the ServiceAccount; elsewhere, the kubeconfig (KUBECONFIG or ~/.kube/config);
    kopf's own session, but with a bounded connection pool (`api_connection_limit`)."""
    info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
    limit = getattr(memo, "api_connections", None)
    if info is None or limit is None:
        return info
    # What kopf builds from a ConnectionInfo (kopf/_cogs/clients/auth.py), but `limit` is not 0.
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),  # kopf adds its User-Agent
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(aiohttp_session=session, server=info.server, priority=info.priority,
                               default_namespace=info.default_namespace, expiration=info.expiration)


@kopf.on.startup(registry=registry)
async def configure(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    # Our status schema is structural, so kopf's own state lives in annotations, not in status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STORAGE_PREFIX)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.level = logging.WARNING
    shard = getattr(memo, "shard", None)
    if shard:
        # Each shard owns its finalizer: with one shared name, a shard that stops selecting a
        # relabelled Release would remove the finalizer the new shard has just added, and so on.
        digest = hashlib.sha256(shard.encode()).hexdigest()[:10]
        settings.persistence.finalizer = f"{STORAGE_PREFIX}/shard-{digest}"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    runtime = _runtime(memo)
    if runtime.leadership is not None:
        runtime.lead(runtime.leadership)
        runtime.leadership.start()
    memo.resync_task = asyncio.get_running_loop().create_task(_runtime(memo).resync_loop())


@kopf.on.cleanup(registry=registry)
async def cleanup(memo: Any, **_: Any) -> None:
    task = getattr(memo, "resync_task", None)
    if task is not None:
        task.cancel()
    runtime = _runtime(memo)
    if runtime.leadership is not None:  # a standby takes over at once, not after the Lease expires
        await asyncio.to_thread(runtime.leadership.stop)
    runtime.close()


@kopf.on.event(*RELEASES, registry=registry, when=in_shard)
async def noticed(body: kopf.Body, memo: Any, type: str | None = None, **_: Any) -> None:
    # On the event loop (kopf runs a sync handler in a thread): the worker's asyncio.Event may only
    # be set from the loop, and a watch event must not wait for a free thread.
    if type == "DELETED":  # the finalizer is off and the Release gone: maybe the namespace's last
        _runtime(memo).gone(body.metadata.namespace or "")
    _runtime(memo).notice((body.metadata.namespace or "", body.metadata.name or ""), body)


@kopf.daemon(*RELEASES, registry=registry, cancellation_timeout=30, initial_delay=0, when=in_shard)
async def worker(body: kopf.Body, stopped: kopf.DaemonStopped, memo: Any, **_: Any) -> None:
    key = (body.metadata.namespace or "", body.metadata.name or "")
    runtime = _runtime(memo)
    runtime.reconciler.forget(key)
    await runtime.work(key, body, stopped)


@kopf.on.delete(*RELEASES, registry=registry, when=in_shard)
def released(body: kopf.Body, memo: Any, **_: Any) -> None:
    """Deleting a Release: a rollout in flight is aborted first (traffic back on stable, canary
    removed), then the controller stops managing it and frees its claims (Reconciler.finalize)."""
    key = (body.metadata.namespace or "", body.metadata.name or "")
    runtime = _runtime(memo)
    ref = ObjectRef(key[0], key[1], body.metadata.uid)
    try:
        if not runtime.leading():
            raise NotLeading("another process leads")
        if not runtime.reconciler.finalize(body):
            raise kopf.TemporaryError("deleting: waiting for all traffic to be back on the stable version", delay=1)
        runtime.forget(key)
        freed = runtime.reconciler.released(key[0], key[1], body.metadata.uid)
    except NotLeading as why:
        raise kopf.TemporaryError(f"deleting: {why}; the leading process finalizes the Release", delay=5) from None
    runtime.reconciler.sink.event(
        ref, Reason.UNMANAGED,
        "Release deleted: the controller stopped managing it; AWS serves what the Release last left live"
        + (f"; released its claim on {', '.join(freed)}" if freed else ""),
    )


@kopf.on.probe(id="progress", registry=registry)
def progress(memo: Any, **_: Any) -> str:
    """/healthz fails (so the kubelet restarts the process) when it can no longer make progress: the
    resync loop or the leader election has stopped. A stuck event loop does not answer at all."""
    task = getattr(memo, "resync_task", None)
    if task is not None and task.done():
        raise kopf.PermanentError("the resync loop has stopped")
    leadership = _runtime(memo).leadership
    if leadership is not None and not leadership.alive:
        raise kopf.PermanentError("the leader election has stopped")
    return "ok"
