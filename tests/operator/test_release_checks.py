"""`release_controller_release_checks_total{namespace,name}`: each completed pass of a Release and
each resync round that found it as its last pass left it counts one check (controller/operator/
runtime.py). The e2e tests wait on it (`wait_passes`); an operator reads it as "is this Release
still looked at"."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from controller import metrics
from controller.operator.runtime import Key, Runtime
from tests.unit.test_runtime_lanes import StandIn, Stopped, run_workers, stop


def checks(name: str) -> float:
    value = metrics.REGISTRY.get_sample_value("release_controller_release_checks_total",
                                              {"namespace": "ns", "name": name})
    return value or 0.0


def test_passes_and_unchanged_rounds_are_counted_per_release_and_the_series_goes_with_it() -> None:
    stand_in = StandIn()
    rounds: list[int] = []

    def steady_round(items: Sequence[tuple[Key, Mapping[str, Any]]]) -> list[Key]:
        rounds.append(len(items))
        return [key for key, _ in items if key[1] == "moving"]  # "moving" needs a pass each round

    async def scenario() -> None:
        runtime = Runtime(stand_in, resync_seconds=0.05, steady_round=steady_round)  # type: ignore[arg-type]
        stopped = Stopped()
        tasks = run_workers(runtime, ["still", "moving"], stopped)
        loop = asyncio.ensure_future(runtime.resync_loop())
        deadline = asyncio.get_running_loop().time() + 10
        while (checks("still") < 4 or len(stand_in.of("moving")) < 4) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        loop.cancel()
        await stop(runtime, stopped, [*tasks, loop])
        # What a pass and what a round counts: its first pass plus the rounds that found it
        # unchanged for "still", which never passed again; one per pass for "moving".
        assert len(stand_in.of("still")) == 1
        assert len(rounds) - 1 <= checks("still") - 1 <= len(rounds), (checks("still"), rounds)
        assert checks("still") >= 4
        assert len(stand_in.of("moving")) - 1 <= checks("moving") <= len(stand_in.of("moving"))

    asyncio.run(scenario())
    # A Release no longer managed: the reconciler's `release` drops its series with the others.
    metrics.forget("ns", "still")
    assert checks("still") == 0 and metrics.REGISTRY.get_sample_value(
        "release_controller_release_checks_total", {"namespace": "ns", "name": "still"}) is None
    metrics.forget("ns", "moving")
