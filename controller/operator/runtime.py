"""Per-Release workers and their wake-ups, independent of kopf's handler plumbing.

Each Release gets one worker (a kopf daemon) that runs a pass, then sleeps until its next pass is
due by time (`requeue_after`, e.g. a canary pause ending), until its spec or a user request
changes, or until the periodic resync. Passes run in a thread: boto3 and the Kubernetes client
block, and the event loop must keep serving watches for every other Release.

Settled workers (their last pass asked for no timer) are not woken by the resync: the resync loop
hands all of them to `steady_round` (`Reconciler.resync`: one batched read, a comparison per
Release) in one thread hop, and wakes only the workers whose Release needs a full pass. Should the
rounds stop reaching a Release (a round that fails), it reads AWS for itself once its last check is
2 x resync old: the loop wakes it for a fresh pass after the failed round. (Each worker used to keep
that fallback timer itself; 2,000 timers firing every minute cost more than a tenth of the steady
CPU.) A worker's own timer is only the last net, at the round limit (10 x resync), should the loop
itself be stuck. A round still in flight counts as reaching the Releases it covers: with 1,000
Releases on a slow emulator a round took as long as the fallback window, and every worker the
round had not yet reached fell back to a full pass (benchmarks/README.md).

Passes run in two bounded thread pools, not asyncio's default one. Passes a user is waiting for (a
watch event changed the spec or a request annotation, and the timed follow-ups of the rollout that
started) run in the `change` lane; passes nobody waits for (a worker's first pass at adoption, a
pass the resync round asked for, a fallback pass) run in the `background` lane. A change never
queues behind background passes, however many there are. The round itself has a thread of its own.

With leader election (`leadership`, controller/operator/leadership.py) a process passes only while
it leads: a standby's workers wait for the leadership to change, its resync loop skips its rounds.
Whenever a term begins (this process starts leading, or leads again after a gap in which its
deadline passed), everything it remembered goes (the reconciler's memory and snapshots, the
settled set) and every worker passes afresh from the API server's copy and a fresh read of AWS.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller import metrics
from controller.errors import ObjectGone
from controller.fencing import NotLeading
from controller.kube.client import REQUEST_ANNOTATIONS
from controller.kube.client import ObjectRef
from controller.reconciler.backoff import PassResult, requeue_after
from controller.reconciler.driver import Reconciler

log = logging.getLogger(__name__)

Key = tuple[str, str]
SteadyRound = Callable[[Sequence[tuple[Key, Mapping[str, Any]]]], list[Key]]
CHANGE, BACKGROUND, ROUND = "change", "background", "round"
FREEZE_GROWTH = 1.25  # the heap is frozen again once the settled Releases grew by a quarter


def freeze_heap() -> None:
    """Collect what is garbage now, then move every surviving object out of the collector's reach
    (`gc.freeze`). A frozen object is still freed when its last reference goes; only a cycle of
    frozen objects that becomes garbage later (say, the worker of a Release deleted since) stays.
    The loop freezes only when the settled Releases have grown by a quarter past their count at
    the last freeze (which only rises), so what can stay that way is bounded by the largest fleet,
    not by churn."""
    gc.collect()
    gc.freeze()
    log.debug("heap frozen: %d objects out of the collector's reach", gc.get_freeze_count())


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
    # key -> the object (a plain copy, taken when it settled or its object last changed) of the
    # Releases waiting on the resync: a round reads them without going through kopf's live views.
    _steady: dict[Key, Mapping[str, Any]] = field(default_factory=dict)
    _resynced: set[Key] = field(default_factory=set)  # woken by a round: its snapshot serves
    _fallen_back: set[Key] = field(default_factory=set)  # woken after failed rounds: reads AWS itself
    _asked: set[Key] = field(default_factory=set)  # woken for a pass nobody waits for (a delivery's sent mark)
    _loop: asyncio.AbstractEventLoop | None = None  # the loop the workers run on (`ask_pass` is called off it)
    _checked_at: dict[Key, float] = field(default_factory=dict)  # key -> monotonic time of its last round
    # Threads per lane. Passes mostly wait on AWS and the API server, so a few threads per lane
    # keep 2 cores busy; more would only queue inside the emulator.
    change_threads: int = 4
    background_threads: int = 4
    # A round in flight for longer than this no longer counts as checking its Releases (a round
    # stuck on a dead endpoint must not hold the fallback forever). None: 10 x resync.
    round_limit_seconds: float | None = None
    _round: frozenset[Key] = frozenset()  # the keys of the round in flight
    _round_started: float = 0.0
    freeze: Callable[[], None] = freeze_heap  # called by the resync loop; a test records the calls
    _pools: dict[str, ThreadPoolExecutor] = field(default_factory=dict)
    # Leader election: None runs every pass (one process, or tests). See `lead`.
    leadership: Any = None
    _changed: asyncio.Event | None = None  # set, and replaced, each time the leadership changes
    # The operator's RoleBinding per watched namespace (controller/kube/bindings.py): let go once a
    # namespace being deleted holds no Release. None: nothing to let go (--all-namespaces, tests).
    bindings: Any = None

    def lead(self, leadership: Any) -> None:
        """Pass only while `leadership` (a `controller.fencing.Fence` with `subscribe`) leads;
        call on the event loop, before the workers start."""
        self.leadership = leadership
        self.reconciler.fence = leadership
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        leadership.subscribe(self._leadership_changed)

    def _leadership_changed(self, leading: bool, term: int, why: str) -> None:
        """From the election's thread: hand the change to the event loop."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_leadership, leading, term)

    def _on_leadership(self, leading: bool, term: int) -> None:
        if leading:
            # A new term: nothing remembered from before it is acted on. The reconciler drops its
            # memory itself, at the term's first pass (`Reconciler._enter`, under its lock): dropping
            # it from here, later, would also drop what that pass did in the new term (the hold of
            # the gap, once per term: held again on the next pass).
            self._steady.clear()
            self._resynced.clear()
            self._fallen_back.clear()
            self._checked_at.clear()
        changed, self._changed = self._changed, asyncio.Event()
        if changed is not None:
            changed.set()

    async def _await_leadership(self, stopped: Any) -> None:
        """A standby's worker: wait for the next change of leadership (or the daemon's stop)."""
        changed = self._changed
        if changed is not None:
            await _wait(changed, stopped, 3600.0)

    def leading(self) -> bool:
        return self.leadership is None or bool(self.leadership.leading)

    def _pool(self, lane: str) -> ThreadPoolExecutor:
        pool = self._pools.get(lane)
        if pool is None:
            threads = {CHANGE: self.change_threads, BACKGROUND: self.background_threads}.get(lane, 1)
            pool = self._pools[lane] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"rc-{lane}")
        return pool

    async def _in_thread(self, lane: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`asyncio.to_thread` on the lane's pool: the context is copied too (controller/logs.py)."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, func, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool(lane), call)

    def close(self) -> None:
        """The operator is stopping: queued passes are dropped, running ones finish on their own."""
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self._pools.clear()

    def wakeup(self, key: Key) -> asyncio.Event:
        return self._wakeups.setdefault(key, asyncio.Event())

    def notice(self, key: Key, body: Mapping[str, Any]) -> None:
        """A watch event arrived: wake the worker if it changes what the worker should do."""
        trigger = trigger_of(body)
        if key in self._steady:
            self._steady[key] = dict(body)  # e.g. a status edited by someone else: the round sees it
        if self._triggers.get(key) != trigger:
            self._triggers[key] = trigger
            self._steady.pop(key, None)  # out of the next steady round: its worker passes now
            self._resynced.discard(key)  # a change: its pass reads afresh, in the change lane
            self.wakeup(key).set()

    def forget(self, key: Key) -> None:
        """A Release is no longer managed: everything this process keeps for it goes, in one call
        (its worker's wake-up state here, the reconciler's memory, snapshot and metric series)."""
        self._wakeups.pop(key, None)
        self._triggers.pop(key, None)
        self._steady.pop(key, None)
        self._checked_at.pop(key, None)
        self._resynced.discard(key)
        self._fallen_back.discard(key)
        self._asked.discard(key)
        self.reconciler.release(key)

    def ask_pass(self, ref: ObjectRef) -> None:
        """A pass of this Release soon, in the background lane; callable from any thread (the
        notification worker calls it once a sink accepted a delivery, for that pass to record it)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._ask, (ref.namespace, ref.name))

    def _ask(self, key: Key) -> None:
        if key in self._wakeups:  # only a Release with a worker: a deleted one is not brought back
            self._asked.add(key)
            self.wakeup(key).set()

    async def work(self, key: Key, body: Mapping[str, Any], stopped: Any) -> None:
        """The worker loop of one Release; returns when kopf stops the daemon."""
        self._loop = asyncio.get_running_loop()
        wake = self.wakeup(key)
        fresh = True
        lane = BACKGROUND  # the first pass: adoption at start-up, or a new Release
        while not stopped:
            wake.clear()
            failed = False
            if not self.leading():
                await self._await_leadership(stopped)
                fresh, lane = True, BACKGROUND
                continue
            try:
                outcome = await self._in_thread(lane, self.reconciler.reconcile, dict(body), fresh=fresh)
                delay = outcome.requeue_after
                failed = outcome.blocked  # throttled, unreachable: its retry never takes a change's thread
                metrics.record_check(*key)
            except NotLeading as why:  # lost during the pass, or a term began since it started
                log.info("pass of %s/%s stopped: %s", key[0], key[1], why)
                fresh, lane = True, BACKGROUND
                if not self.leading():
                    await self._await_leadership(stopped)
                continue
            except ObjectGone as gone:
                # Deleted or replaced while this worker held an old body: it has nothing left to do,
                # and must not loop (each pass would act for an object that does not exist).
                log.info("%s; its worker stops", gone)
                self._steady.pop(key, None)
                return
            except Exception:  # a bug or an API outage: log, back off, keep the worker alive
                log.exception("reconcile of %s/%s failed", *key)
                delay, failed = requeue_after(PassResult(error=True)), True
            if delay is None:
                self._steady[key] = dict(body)
                if self.steady_round is not None:
                    # The resync loop checks settled Releases, and wakes this one should its rounds
                    # fail; the worker's own timer is the last net, should the loop be stuck.
                    self._checked_at[key] = time.monotonic()  # this pass has just read AWS
                    timeout = self._round_limit()
                else:
                    timeout = self.resync_seconds
            else:
                self._steady.pop(key, None)
                timeout = min(delay, self.resync_seconds)
            woke = await _wait(wake, stopped, timeout)
            while not woke and not stopped and self._checked_within(key, timeout):
                woke = await _wait(wake, stopped, timeout)  # the resync loop has it in hand
            by_resync = key in self._resynced
            nobody_waits = key in self._fallen_back or key in self._asked  # a fallback, a delivery's mark
            self._resynced.discard(key)
            self._fallen_back.discard(key)
            self._asked.discard(key)
            # Woken by a change, a timer or the fallback: read AWS afresh. Woken by the resync: its
            # snapshot serves.
            fresh = not (woke and by_resync)
            # A change, and the timed passes of what is in progress, are what a user waits for; a
            # pass the round asked for, the fallback of a settled Release and the retry after a
            # failed pass (all of them, in an outage) are not.
            by_user = woke and not (by_resync or nobody_waits)
            lane = CHANGE if by_user or (not woke and delay is not None and not failed) else BACKGROUND

    def _checked_within(self, key: Key, seconds: float) -> bool:
        """Whether the resync rounds have `key` in hand: a round reached it in the last `seconds`,
        or the round in flight covers it (and has not been running for longer than its limit)."""
        if key not in self._steady:
            return False
        now = time.monotonic()
        if key in self._round and now - self._round_started < self._round_limit():
            return True
        return now - self._checked_at.get(key, -float("inf")) < seconds

    def _round_limit(self) -> float:
        return self.round_limit_seconds if self.round_limit_seconds is not None else 10 * self.resync_seconds

    def _fall_back(self) -> None:
        """After a failed round: the settled Releases no round has reached for 2 x resync read AWS
        for themselves (a fresh pass each, in the background lane)."""
        now = time.monotonic()
        for key in list(self._steady):
            if now - self._checked_at.get(key, -float("inf")) >= 2 * self.resync_seconds:
                self._fallen_back.add(key)
                self.wakeup(key).set()

    def gone(self, namespace: str) -> None:
        """A Release of `namespace` has gone (its DELETED watch event): if the namespace is being
        deleted and no Release is left there, the operator's RoleBinding may go too. On the loop."""
        if self.bindings is not None and self.leading():
            asyncio.get_running_loop().create_task(self._let_binding_go(namespace))

    async def _let_binding_go(self, namespace: str | None = None) -> None:
        try:
            if namespace is None:
                await self._in_thread(ROUND, self.bindings.sweep)
            else:
                await self._in_thread(ROUND, self.bindings.release, namespace)
        except Exception:  # the resync loop's sweep tries again
            log.exception("could not let the operator's RoleBinding go in %s", namespace or "namespaces being deleted")

    async def resync_loop(self) -> None:
        """Every resync period, check all settled Releases at once; wake the workers that must pass.
        Also lets the operator's RoleBinding go in namespaces being deleted that hold no Release
        (one was deleted while no Release was there, or the operator missed the last one going)."""
        frozen_at = 0  # settled Releases when the heap was last frozen
        while True:
            await asyncio.sleep(self.resync_seconds)
            if self.bindings is not None and self.leading():
                await self._let_binding_go()
            steady = list(self._steady.items())
            if not steady or not self.leading():
                continue
            if len(steady) >= frozen_at * FREEZE_GROWTH + 1:
                # What the settled Releases keep (kopf's objects, their snapshots and memory) is
                # long-lived: moved out of the collector's reach, no full collection scans it
                # again. Frozen again as the fleet grows: at 2,000 Releases adoption outlasts many
                # rounds, and a heap frozen only at the first one left the rest of it to every
                # full collection (benchmarks/README.md).
                frozen_at = len(steady)
                self.freeze()
            need = [key for key, _ in steady]
            if self.steady_round is not None:
                self._round, self._round_started = frozenset(need), time.monotonic()
                try:
                    need = await self._in_thread(ROUND, self.steady_round, steady)
                except Exception:
                    log.exception("the resync round failed; Releases it has not reached for 2 x resync read AWS themselves")
                    self._fall_back()
                    continue
                finally:
                    self._round = frozenset()
                checked = time.monotonic()
                self._checked_at.update((key, checked) for key, _ in steady)
                passing = set(need)
                for key, _ in steady:
                    if key not in passing:  # found as its last pass left it: checked (the others pass)
                        metrics.record_check(*key)
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
