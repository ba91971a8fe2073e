"""Per-Release workers and their wake-ups, independent of kopf's handler plumbing.

Each Release gets one worker (a kopf daemon) that runs a pass, then sleeps until its next pass is
due by time (`requeue_after`, e.g. a canary pause ending), until its spec or a user request
changes, or until the periodic resync. Passes run in a thread: boto3 and the Kubernetes client
block, and the event loop must keep serving watches for every other Release.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.kube import REQUEST_ANNOTATIONS
from controller.reconciler import Reconciler

log = logging.getLogger(__name__)

Key = tuple[str, str]


def trigger_of(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What, in an object, should wake its worker: spec generation and user requests, not status."""
    meta = body.get("metadata", {})
    annotations = meta.get("annotations") or {}
    return (meta.get("generation"), meta.get("deletionTimestamp"), *(annotations.get(a) for a in REQUEST_ANNOTATIONS.values()))


@dataclass
class Runtime:
    reconciler: Reconciler
    resync_seconds: float = 30.0
    prefetch: Any = None  # callable(list of (key, spec)) -> None: batched read for steady state
    _wakeups: dict[Key, asyncio.Event] = field(default_factory=dict)
    _triggers: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    _steady: dict[Key, Any] = field(default_factory=dict)  # key -> body of Releases waiting on resync
    _resynced: set[Key] = field(default_factory=set)

    def wakeup(self, key: Key) -> asyncio.Event:
        return self._wakeups.setdefault(key, asyncio.Event())

    def notice(self, key: Key, body: Mapping[str, Any]) -> None:
        """A watch event arrived: wake the worker if it changes what the worker should do."""
        trigger = trigger_of(body)
        if self._triggers.get(key) != trigger:
            self._triggers[key] = trigger
            self.wakeup(key).set()

    def forget(self, key: Key) -> None:
        self._wakeups.pop(key, None)
        self._triggers.pop(key, None)
        self._steady.pop(key, None)

    async def work(self, key: Key, body: Mapping[str, Any], stopped: Any) -> None:
        """The worker loop of one Release; returns when kopf stops the daemon."""
        wake = self.wakeup(key)
        fresh = True
        while not stopped:
            wake.clear()
            try:
                outcome = await asyncio.to_thread(self.reconciler.reconcile, dict(body), fresh=fresh)
                delay = outcome.requeue_after
            except Exception:  # a bug or an API outage: log, back off, keep the worker alive
                log.exception("reconcile of %s/%s failed", *key)
                delay = 10.0
            if delay is None:
                self._steady[key] = body
                # The resync loop wakes steady workers after its batched read; the timer is a fallback.
                timeout = self.resync_seconds * (2 if self.prefetch is not None else 1)
            else:
                self._steady.pop(key, None)
                timeout = min(delay, self.resync_seconds)
            woke = await _wait(wake, stopped, timeout)
            by_resync = key in self._resynced
            self._resynced.discard(key)
            # Woken by a change or a timer: read AWS afresh. Woken by the resync: its snapshot serves.
            fresh = not (woke and by_resync)

    async def resync_loop(self) -> None:
        """Every resync period, read AWS for all steady Releases in batches, then wake them."""
        frozen = False
        while True:
            await asyncio.sleep(self.resync_seconds)
            steady = list(self._steady.items())
            if not steady:
                continue
            if not frozen:
                # By the first resync the long-lived heap is built (kopf, botocore's service models,
                # the first watch lists). Moving it out of the collector's reach cut the cost of
                # garbage collection in a steady pass from ~15% to ~3% (benchmarks/README.md).
                gc.freeze()
                frozen = True
            if self.prefetch is not None:
                try:
                    await asyncio.to_thread(self.prefetch, steady)
                except Exception:
                    log.exception("batched resync read failed; workers will read for themselves")
                    continue
            for key, _ in steady:
                self._resynced.add(key)
                self.wakeup(key).set()


async def _wait(event: asyncio.Event, stopped: Any, timeout: float) -> bool:
    """Wait for `event` or `timeout`, waking early when kopf asks the daemon to stop.

    Blocks on both at once rather than polling: with hundreds of steady workers, a poll every
    second per worker cost more CPU than their reconcile passes (benchmarks/operator_scale.py).
    """
    if stopped:
        return False
    woken = asyncio.ensure_future(event.wait())
    waiters: set[asyncio.Future[Any]] = {woken}
    if callable(getattr(stopped, "wait", None)):  # kopf's DaemonStopped: `await stopped.wait()`
        waiters.add(asyncio.ensure_future(stopped.wait()))
    try:
        await asyncio.wait(waiters, timeout=max(timeout, 0.05), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return event.is_set() and not stopped
