"""The workers' scheduling (controller/operator/runtime.py) when the resync rounds are slow and the
thread pools are full: what showed at 1,000 Releases (benchmarks/README.md).

A stand-in reconciler here, not the real one: what is under test is when and in which thread pool
`Runtime` starts passes, which needs passes and rounds whose duration the test holds in its hand
(a real pass's time depends on moto and the API server). The stand-in records each pass (its
Release, whether it read AWS afresh, when it started) and blocks the passes the test gates. The
real reconciler's `resync` and passes are covered against the real parts in
tests/e2e/test_steady_rounds.py and tests/e2e/test_shards.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.operator.runtime import Key, Runtime
from controller.reconciler.ports import Outcome

SETTLED = Outcome(requeue_after=None, phase="Succeeded", wrote_status=False, actions=0)


@dataclass
class Pass:
    name: str
    fresh: bool
    started: float
    generation: int


@dataclass
class StandIn:
    """Records passes; a pass of a Release in `gated` waits until `gate` opens."""

    passes: list[Pass] = field(default_factory=list)
    gated: set[str] = field(default_factory=set)
    gate: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reconcile(self, obj: Mapping[str, Any], *, fresh: bool = True) -> Outcome:
        meta = obj["metadata"]
        with self.lock:
            self.passes.append(Pass(meta["name"], fresh, time.monotonic(), meta["generation"]))
        if meta["name"] in self.gated:
            self.gate.wait(timeout=30)
        return SETTLED

    def release(self, key: Key) -> None:
        pass

    def of(self, name: str) -> list[Pass]:
        with self.lock:
            return [p for p in self.passes if p.name == name]


class Stopped:
    """kopf's DaemonStopped as the worker uses it: falsy until set, and awaitable."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()


def body(name: str, generation: int = 1) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "generation": generation, "uid": f"uid-{name}"}}


async def until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


def run_workers(runtime: Runtime, names: Sequence[str], stopped: Stopped) -> list[asyncio.Task[None]]:
    return [asyncio.ensure_future(runtime.work(("ns", n), body(n), stopped)) for n in names]


async def stop(runtime: Runtime, stopped: Stopped, tasks: Sequence[asyncio.Task[Any]]) -> None:
    stopped.event.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    runtime.close()


def test_a_round_slower_than_the_fallback_window_brings_no_fallback_passes() -> None:
    """Each round takes 4x the workers' fallback window (2 x resync); the rounds reach every Release
    and find them unchanged, so no Release gets a pass after its first one."""
    names = [f"rel-{i}" for i in range(5)]
    stand_in = StandIn()
    rounds: list[float] = []

    def slow_round(items: Sequence[tuple[Key, Mapping[str, Any]]]) -> list[Key]:
        rounds.append(time.monotonic())
        time.sleep(0.8)  # resync 0.1 s: the fallback window is 0.2 s
        return []

    async def scenario() -> None:
        # The round limit (a stuck round, 10 x resync = 1 s by default) is another bound than the
        # fallback window this test is about: set well above the 0.8 s round, so that a loaded
        # machine stretching the round past 1 s does not turn it into a stuck one.
        runtime = Runtime(stand_in, resync_seconds=0.1, steady_round=slow_round,  # type: ignore[arg-type]
                          round_limit_seconds=5.0)
        stopped = Stopped()
        tasks = run_workers(runtime, names, stopped)
        loop = asyncio.ensure_future(runtime.resync_loop())
        # Three slow rounds (each 0.8 s, far past the 0.2 s fallback window), however long a loaded
        # machine takes to run them (bounded).
        deadline = time.monotonic() + 30.0
        while len(rounds) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        loop.cancel()
        await stop(runtime, stopped, [*tasks, loop])

    asyncio.run(scenario())
    assert len(rounds) >= 3, rounds
    for name in names:
        assert len(stand_in.of(name)) == 1, (name, stand_in.of(name))  # its first pass only


def test_the_fallback_still_reads_for_itself_when_the_rounds_fail() -> None:
    """The safety net stays: rounds that raise reach no Release, so each worker passes afresh on its
    fallback timer."""
    stand_in = StandIn()

    def failing_round(items: Sequence[tuple[Key, Mapping[str, Any]]]) -> list[Key]:
        raise RuntimeError("AWS unreachable")

    async def scenario() -> None:
        runtime = Runtime(stand_in, resync_seconds=0.1, steady_round=failing_round)  # type: ignore[arg-type]
        stopped = Stopped()
        tasks = run_workers(runtime, ["rel-0"], stopped)
        loop = asyncio.ensure_future(runtime.resync_loop())
        # Wait for the state (two passes after the first), bounded; not a fixed second, which a
        # loaded machine may spend before the first fallback fires.
        await until(lambda: len(stand_in.of("rel-0")) >= 3, timeout=10.0)
        loop.cancel()
        await stop(runtime, stopped, [*tasks, loop])

    asyncio.run(scenario())
    later = stand_in.of("rel-0")[1:]
    assert len(later) >= 2, stand_in.of("rel-0")
    assert all(p.fresh for p in later)


def test_a_change_starts_its_pass_while_background_passes_are_queued() -> None:
    """40 Releases' first passes (adoption) hold every background thread and queue behind them; a
    spec change to another Release gets its pass at once, not after them."""
    stand_in = StandIn()
    busy = [f"busy-{i}" for i in range(40)]
    stand_in.gated.update(busy)

    async def scenario() -> None:
        runtime = Runtime(stand_in, resync_seconds=30.0, steady_round=lambda items: [])
        stopped = Stopped()
        changed = run_workers(runtime, ["changed"], stopped)
        assert await until(lambda: len(stand_in.of("changed")) == 1, 5.0)
        await asyncio.sleep(0.05)  # its worker is waiting for the resync
        tasks = run_workers(runtime, busy, stopped)
        assert await until(lambda: len(stand_in.passes) >= 1 + runtime.background_threads, 5.0)
        await asyncio.sleep(0.1)
        assert len(stand_in.passes) == 1 + runtime.background_threads  # the rest are queued

        runtime.notice(("ns", "changed"), body("changed", generation=2))
        started = await until(lambda: len(stand_in.of("changed")) == 2, 5.0)
        queued = len(busy) - (len(stand_in.passes) - len(stand_in.of("changed")))
        stand_in.gate.set()
        await stop(runtime, stopped, [*changed, *tasks])
        assert started, "the change waited behind the background passes"
        assert queued > 0  # it did not wait for them: they were still queued when it started
        assert stand_in.of("changed")[1].fresh

    asyncio.run(scenario())


def test_the_passes_of_a_rollout_in_progress_do_not_queue_behind_background_passes() -> None:
    """After a change, the rollout's timed follow-up passes (requeue_after) stay in the change lane."""
    busy = [f"busy-{i}" for i in range(40)]

    class Rolling(StandIn):
        follow_ups = 3

        def reconcile(self, obj: Mapping[str, Any], *, fresh: bool = True) -> Outcome:
            super().reconcile(obj, fresh=fresh)
            if obj["metadata"]["name"] == "rolling" and obj["metadata"]["generation"] == 2 and self.follow_ups:
                self.follow_ups -= 1
                return Outcome(requeue_after=0.05, phase="Progressing", wrote_status=True, actions=1)
            return SETTLED

    stand_in = Rolling()
    stand_in.gated.update(busy)

    async def scenario() -> None:
        runtime = Runtime(stand_in, resync_seconds=30.0, steady_round=lambda items: [])
        stopped = Stopped()
        rolling_body = body("rolling")  # kopf hands a worker a live view of its object
        rolling = [asyncio.ensure_future(runtime.work(("ns", "rolling"), rolling_body, stopped))]
        assert await until(lambda: len(stand_in.of("rolling")) == 1, 5.0)
        await asyncio.sleep(0.05)
        tasks = run_workers(runtime, busy, stopped)
        assert await until(lambda: len(stand_in.passes) >= 1 + runtime.background_threads, 5.0)

        rolling_body["metadata"]["generation"] = 2
        runtime.notice(("ns", "rolling"), rolling_body)
        # The change's pass, three timed follow-ups, and the pass that finds it done.
        done = await until(lambda: len(stand_in.of("rolling")) == 5, 5.0)
        passes = stand_in.of("rolling")
        stand_in.gate.set()
        await stop(runtime, stopped, [*rolling, *tasks])
        assert done, passes
        assert [p.generation for p in passes] == [1, 2, 2, 2, 2]

    asyncio.run(scenario())


def test_the_heap_is_frozen_again_as_the_settled_fleet_grows() -> None:
    """Adoption outlasts many rounds at 2,000 Releases: the resync loop freezes the heap at its first
    round, again each time the settled Releases have grown by a quarter since, and not at a round
    where they have not (a freeze costs a full collection)."""
    stand_in = StandIn()
    frozen: list[int] = []

    async def scenario() -> None:
        runtime = Runtime(stand_in, resync_seconds=0.05, steady_round=lambda items: [])
        runtime.freeze = lambda: frozen.append(len(runtime._steady))
        stopped = Stopped()
        tasks = run_workers(runtime, [f"first-{i}" for i in range(8)], stopped)
        assert await until(lambda: len(runtime._steady) == 8, 5.0)
        loop = asyncio.ensure_future(runtime.resync_loop())
        assert await until(lambda: frozen == [8], 5.0), frozen
        tasks += run_workers(runtime, ["one-more"], stopped)  # 9 < 8 x 1.25 + 1: not yet
        await asyncio.sleep(0.5)  # ~10 rounds
        assert frozen == [8]
        tasks += run_workers(runtime, [f"wave-{i}" for i in range(3)], stopped)  # 12 >= 11
        assert await until(lambda: frozen == [8, 12], 5.0), frozen
        await asyncio.sleep(0.5)
        loop.cancel()
        await stop(runtime, stopped, [*tasks, loop])

    asyncio.run(scenario())
    assert frozen == [8, 12]


def test_a_freeze_collects_the_garbage_first_and_freezes_what_survives() -> None:
    """`freeze_heap`: garbage cycles made before it are freed (a freeze alone would keep them for the
    life of the process); the live objects are out of the collector's reach afterwards."""
    import gc
    import weakref

    from controller.operator.runtime import freeze_heap

    class Node:
        other: Any = None

    cycle_a, cycle_b = Node(), Node()
    cycle_a.other, cycle_b.other = cycle_b, cycle_a
    gone = weakref.ref(cycle_a)
    del cycle_a, cycle_b
    kept = [Node() for _ in range(1000)]
    before = gc.get_freeze_count()
    try:
        freeze_heap()
        assert gone() is None
        assert gc.get_freeze_count() >= before + len(kept)
    finally:
        gc.unfreeze()


def test_a_pass_asked_for_from_another_thread_runs_soon_and_only_for_a_release_with_a_worker() -> None:
    """The notification worker, once a sink accepted a delivery, asks for a pass of that Release
    (`Runtime.ask_pass`, from its own thread), for the pass to record the sent mark: a settled
    Release, whose worker would otherwise sleep until the resync, gets that pass at once. A Release
    with no worker (deleted meanwhile) gets none and no wake-up state."""
    from controller.kube.client import ObjectRef

    stand_in = StandIn()

    async def scenario() -> tuple[bool, bool]:
        runtime = Runtime(stand_in, resync_seconds=30.0, steady_round=lambda items: [])
        stopped = Stopped()
        tasks = run_workers(runtime, ["settled"], stopped)
        assert await until(lambda: len(stand_in.of("settled")) == 1, 5.0)
        await asyncio.sleep(0.05)  # its worker is waiting for the resync (30 s)
        asker = threading.Thread(target=runtime.ask_pass, args=(ObjectRef("ns", "settled", "uid-settled"),))
        asker.start()
        asker.join()
        passed = await until(lambda: len(stand_in.of("settled")) == 2, 5.0)
        runtime.ask_pass(ObjectRef("ns", "gone", "uid-gone"))
        await asyncio.sleep(0.05)
        no_worker = ("ns", "gone") not in runtime._wakeups and stand_in.of("gone") == []
        await stop(runtime, stopped, tasks)
        return passed, no_worker

    passed, no_worker = asyncio.run(scenario())
    assert passed, "the asked-for pass waited for the resync"
    assert no_worker
