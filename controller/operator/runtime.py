"""Per-Release workers and their wake-ups, independent of kopf's handler plumbing.

Each Release gets one worker (a kopf daemon) that runs a pass, then sleeps until its next pass is
due by time (`requeue_after`, e.g. a canary pause ending), until its spec or a user request
changes, or until the periodic resync. Passes run in a thread: boto3 and the Kubernetes client
block, and the event loop must keep serving watches for every other Release.

Settled workers (their last pass asked for no timer) are not woken by the resync: the resync loop
hands all of them to `steady_round` (`Reconciler.resync`: one batched read, a comparison per
Release) in one thread hop, and wakes only the workers whose Release needs a full pass.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.errors import ObjectGone
from controller.kube import REQUEST_ANNOTATIONS
from controller.reconciler import Reconciler

log = logging.getLogger(__name__)

Key = tuple[str, str]
SteadyRound = Callable[[Sequence[tuple[Key, Mapping[str, Any]]]], list[Key]]


def trigger_of(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What, in an object, should wake its worker: spec generation and user requests, not status."""
    meta = body.get("metadata", {})
    annotations = meta.get("annotations") or {}
    return (meta.get("generation"), meta.get("deletionTimestamp"), *(annotations.get(a) for a in REQUEST_ANNOTATIONS.values()))


@dataclass
class Runtime:
    reconciler: Reconciler
    resync_seconds: float = 30.0
    # (key, body) of settled Releases -> the keys that need a full pass. None: wake every worker.
    steady_round: SteadyRound | None = None
    _wakeups: dict[Key, asyncio.Event] = field(default_factory=dict)
    _triggers: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    _steady: dict[Key, Any] = field(default_factory=dict)  # key -> body of Releases waiting on resync
    _resynced: set[Key] = field(default_factory=set)
    _checked_at: dict[Key, float] = field(default_factory=dict)  # key -> monotonic time of its last round

    def wakeup(self, key: Key) -> asyncio.Event:
        return self._wakeups.setdefault(key, asyncio.Event())

    def notice(self, key: Key, body: Mapping[str, Any]) -> None:
        """A watch event arrived: wake the worker if it changes what the worker should do."""
        trigger = trigger_of(body)
        if self._triggers.get(key) != trigger:
            self._triggers[key] = trigger
            self._steady.pop(key, None)  # out of the next steady round: its worker passes now
            self.wakeup(key).set()

    def forget(self, key: Key) -> None:
        """A Release is no longer managed: everything this process keeps for it goes, in one call
        (its worker's wake-up state here, the reconciler's memory, snapshot and metric series)."""
        self._wakeups.pop(key, None)
        self._triggers.pop(key, None)
        self._steady.pop(key, None)
        self._checked_at.pop(key, None)
        self.reconciler.release(key)

    async def work(self, key: Key, body: Mapping[str, Any], stopped: Any) -> None:
        """The worker loop of one Release; returns when kopf stops the daemon."""
        wake = self.wakeup(key)
        fresh = True
        while not stopped:
            wake.clear()
            try:
                outcome = await asyncio.to_thread(self.reconciler.reconcile, dict(body), fresh=fresh)
                delay = outcome.requeue_after
            except ObjectGone as gone:
                # Deleted or replaced while this worker held an old body: it has nothing left to do,
                # and must not loop (each pass would act for an object that does not exist).
                log.info("%s; its worker stops", gone)
                self._steady.pop(key, None)
                return
            except Exception:  # a bug or an API outage: log, back off, keep the worker alive
                log.exception("reconcile of %s/%s failed", *key)
                delay = 10.0
            if delay is None:
                self._steady[key] = body
                # The resync loop checks settled Releases; the timer is a fallback should it fail.
                timeout = self.resync_seconds * (2 if self.steady_round is not None else 1)
            else:
                self._steady.pop(key, None)
                timeout = min(delay, self.resync_seconds)
            woke = await _wait(wake, stopped, timeout)
            while not woke and not stopped and self._checked_within(key, timeout):
                woke = await _wait(wake, stopped, timeout)  # the resync loop has it in hand
            by_resync = key in self._resynced
            self._resynced.discard(key)
            # Woken by a change or a timer: read AWS afresh. Woken by the resync: its snapshot serves.
            fresh = not (woke and by_resync)

    def _checked_within(self, key: Key, seconds: float) -> bool:
        return key in self._steady and time.monotonic() - self._checked_at.get(key, -float("inf")) < seconds

    async def resync_loop(self) -> None:
        """Every resync period, check all settled Releases at once; wake the workers that must pass."""
        frozen = False
        while True:
            await asyncio.sleep(self.resync_seconds)
            steady = [(key, dict(body)) for key, body in self._steady.items()]
            if not steady:
                continue
            if not frozen:
                # By the first resync the long-lived heap is built (kopf, botocore's service models,
                # the first watch lists). Moving it out of the collector's reach cut the cost of
                # garbage collection in a steady pass from ~15% to ~3% (benchmarks/README.md).
                gc.freeze()
                frozen = True
            need = [key for key, _ in steady]
            if self.steady_round is not None:
                try:
                    need = await asyncio.to_thread(self.steady_round, steady)
                except Exception:
                    log.exception("the resync round failed; each worker will read for itself after its fallback timer")
                    continue
                checked = time.monotonic()
                self._checked_at.update((key, checked) for key, _ in steady)
            for key in need:
                if key in self._steady:  # not woken by a change meanwhile
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
