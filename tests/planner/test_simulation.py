"""The planner simulation on a bounded number of seeds, and proof that its checker catches each
invariant: a deliberately broken planner (a wrapper around `decide`) per invariant must be caught.

More seeds: `benchmarks/simulation.py --seeds 10000`. A failing seed prints a shrunk reproduction
to paste into tests/planner/test_simulation_replays.py.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
from unittest.mock import patch

from controller.api.release import Phase, ReleaseSpec, ReleaseStatus
from controller.planner import Context, Decision, decide, group, target_hash
from controller.planner.actions import (
    ClearStagingHeader,
    EnsureTaskSet,
    RemovePreviewRoute,
    ScaleTaskSet,
    SetListenerWeights,
)
from controller.planner.world import Observation

from tests.planner.sim import BLUE, GREEN, LISTENER
from tests.planner.simulation import CONVERGES, ENDS_IN_TIME, INVARIANTS, Step, reproduction, run, run_seeds, scenario, shrink

SEEDS = 200  # ~8 s here (2 cores, shared); the benchmark runs thousands


def test_no_invariant_is_violated_on_the_first_seeds() -> None:
    report = run_seeds(range(SEEDS))
    assert report.stats.passes > SEEDS * 20 and all(report.stats.faults[k] > 0 for k in report.stats.faults)
    if report.failing:
        seed, found = report.failing[0]
        steps = shrink(scenario(seed), found.invariant)
        pytest.fail(f"{len(report.failing)} failing seeds; the first, shrunk:\n"
                    f"{reproduction(steps, run(steps) or found, seed)}")


# --------------------------------------------------------------------------- broken planners

def weight_on_a_new_task_set(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    d = decide(spec, status, obs, ctx)
    if any(isinstance(a, EnsureTaskSet) for a in d.actions):
        d = replace(d, actions=(*d.actions, SetListenerWeights(LISTENER, {BLUE: 90, GREEN: 10})))
    return d


def a_third_task_set(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    d = decide(spec, status, obs, ctx)
    extra = [replace(a, external_id=a.external_id + "x") for a in d.actions if isinstance(a, EnsureTaskSet)]
    return replace(d, actions=(*d.actions, *extra))


def canary_in_the_stable_group(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    d = decide(spec, status, obs, ctx)
    stable = d.status.backend.stable_target_group_arn or BLUE
    return replace(d, actions=tuple(replace(a, target_group_arn=stable) if isinstance(a, EnsureTaskSet) else a
                                    for a in d.actions))


def writes_on_refusal(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    d = decide(spec, status, obs, ctx)
    if d.status.target_hash != target_hash(spec) and obs.listener is not None:
        d = replace(d, actions=(*d.actions, SetListenerWeights(LISTENER, dict(obs.listener.weights))))
    return d


_calls = itertools.count()


def nondeterministic(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    d = decide(spec, status, obs, ctx)
    return replace(d, requeue_after=(d.requeue_after or 1.0) + next(_calls) % 2)


def unbounded_history(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    d = decide(spec, status, obs, ctx)
    history = [*status.history, *d.status.history[-1:]]
    return replace(d, status=d.status.model_copy(update={"history": history}))


def never_settles(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    d = decide(spec, status, obs, ctx)
    if d.status.phase == Phase.SUCCEEDED:
        d = replace(d, status=d.status.model_copy(update={"phase": Phase.PROGRESSING}), requeue_after=2.0)
    return d


def scales_what_it_did_not_see(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    d = decide(spec, status, obs, ctx)
    ecs = spec.backend.ecs
    return replace(d, actions=(*d.actions, ScaleTaskSet(ecs.cluster, ecs.service, "rc.gone", 0.0)))


def hides_what_serves(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    d = decide(spec, status, obs, ctx)
    backend = d.status.backend.model_copy(update={"serving": d.status.backend.serving[:1]})
    return replace(d, status=d.status.model_copy(update={"backend": backend}))


def holds_for_ever(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    """Once a canary is at a step, it waits there: no action, nothing moves, not even at the deadline."""
    d = decide(spec, status, obs, ctx)
    if status.backend.canary_image is not None and status.current_step > 0 and status.phase == Phase.PROGRESSING:
        return replace(d, actions=(), status=status, requeue_after=30.0)
    return d


def keeps_the_preview_route(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    """Never removes a preview route: it outlives its preview (into the canary steps, a rollback, rest)."""
    d = decide(spec, status, obs, ctx)
    return replace(d, actions=tuple(a for a in d.actions if not isinstance(a, RemovePreviewRoute)))


def keeps_the_staging_header(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    """Never takes CloudFront's staging off the preview header: the new frontend outlives its preview."""
    d = decide(spec, status, obs, ctx)
    return replace(d, actions=tuple(a for a in d.actions if not isinstance(a, ClearStagingHeader)))


# A tier of several services: the group's rules broken one at a time (`planner.group`, patched for
# the one pass the wrapper decides).

_converge, _back = group.converge, group.back_to_stable


def moves_before_its_leader(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    """Every service takes each step at once, not waiting for those it comes after."""
    with patch.object(group, "_after_all", lambda m, seen: True):
        return decide(spec, status, obs, ctx)


def ends_a_step_on_the_first_service(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    """A step is done once the first service shows it: the pause begins while the others are short
    (and they catch up during it, as the pause holds the step)."""
    def head_only(ms: Any, waves: Any, step: Any) -> Any:
        acts, shown = group._toward(ms[0], step, len(ms) > 1)
        return ([], True) if shown else (acts, False)
    with patch.object(group, "converge", head_only):
        return decide(spec, status, obs, ctx)


def goes_back_first_wave_first(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    """A rollback in the order the services roll out, not waiting for those after each one."""
    with patch.object(group, "back_to_stable", lambda ms, order: _back(ms, tuple(reversed(order))) if not any(
            m.service.after for m in ms) else _back_unordered(ms)):
        return decide(spec, status, obs, ctx)


def _back_unordered(ms: Any) -> Any:
    out: list[Any] = []
    done = True
    for m in ms:
        acts, ok = m.fleet.back_to_stable()
        out += acts
        done = done and ok
    return out, done


def hides_each_weight(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, ctx: Context) -> Decision:
    """Says every service of a tier but the first is at 0%."""
    d = decide(spec, status, obs, ctx)
    entries = [e.model_copy(update={"canary_weight": 0}) if i else e for i, e in enumerate(d.status.backend.services)]
    backend = d.status.backend.model_copy(update={"services": entries})
    return replace(d, status=d.status.model_copy(update={"backend": backend}))


BROKEN: dict[str, Any] = {
    "staging_previews_only_during_a_preview": keeps_the_staging_header,
    "order": moves_before_its_leader,
    "lockstep": ends_a_step_on_the_first_service,
    "reverse_rollback": goes_back_first_wave_first,
    "status_shows_each_weight": hides_each_weight,
    "preview_route_only_during_a_preview": keeps_the_preview_route,
    "status_shows_what_serves": hides_what_serves,
    ENDS_IN_TIME: holds_for_ever,
    "acts_only_on_what_it_saw": scales_what_it_did_not_see,
    "weight_only_on_ready_capacity": weight_on_a_new_task_set,
    "at_most_two_task_sets": a_third_task_set,
    "stable_keeps_the_rest": canary_in_the_stable_group,
    "refused_spec_writes_nothing": writes_on_refusal,
    "deterministic": nondeterministic,
    "history_bounded": unbounded_history,
    CONVERGES: never_settles,
}


def test_every_invariant_has_a_broken_planner() -> None:
    assert sorted(BROKEN) == sorted(INVARIANTS)


GROUP = ("order", "lockstep", "reverse_rollback", "status_shows_each_weight")


def _previews(start: dict[str, Any]) -> bool:
    """Whether a scenario's starting spec has a preview step (or a blue-green previewHeader)."""
    strategy = start["strategy"]
    return any("preview" in s for s in (strategy.get("canary") or {}).get("steps", [])) or \
        "previewHeader" in (strategy.get("blueGreen") or {})


def _seeds_for(invariant: str) -> Any:
    """The seeds whose scenarios can break `invariant`: the group's need a tier of several services,
    the staging header a frontend canary previewed with the backend (seeds 0 mod 4 with a frontend)."""
    if invariant in GROUP:
        return [s for s in range(400) if scenario(s)[0].get("tier")][:60]
    if invariant == "staging_previews_only_during_a_preview":
        return [s for s in range(400) if (scenario(s)[0].get("frontend") or {}).get("canary")
                and _previews(scenario(s)[0])][:40]
    return range(40)


@pytest.mark.parametrize("invariant", sorted(BROKEN))
def test_the_checker_catches_a_planner_broken_against(invariant: str) -> None:
    report = run_seeds(_seeds_for(invariant), decide_fn=BROKEN[invariant], until=invariant)
    assert report.violations[invariant] > 0, dict(report.violations)


def test_the_checker_catches_a_tier_keeping_its_preview_routes() -> None:
    """Per service: a planner that never removes a preview rule is caught on tier seeds with a preview."""
    seeds = [s for s in range(600) if scenario(s)[0].get("tier") and len(scenario(s)[0]["tier"]) > 1
             and _previews(scenario(s)[0])][:30]
    assert seeds
    invariant = "preview_route_only_during_a_preview"
    report = run_seeds(seeds, decide_fn=BROKEN[invariant], until=invariant)
    assert report.violations[invariant] > 0, dict(report.violations)
    assert any("service " in str(v) for _, v in report.failing), [str(v) for _, v in report.failing]


def test_a_failing_seed_shrinks_to_a_reproduction_that_replays() -> None:
    broken = BROKEN["weight_only_on_ready_capacity"]
    seed, found = next((s, v) for s, v in run_seeds(range(40), decide_fn=broken, until="weight_only_on_ready_capacity").failing
                       if v.invariant == "weight_only_on_ready_capacity")
    steps = shrink(scenario(seed), found.invariant, broken)
    assert len(steps) < len(scenario(seed))
    text = reproduction(steps, found, seed)
    namespace: dict[str, Any] = {}
    exec(text.rsplit("\n", 1)[0], namespace)  # the STEPS literal, as a replay test pastes it
    replayed: list[Step] = namespace["STEPS"]
    assert replayed == steps
    again = run(replayed, broken)
    assert again is not None and again.invariant == "weight_only_on_ready_capacity"
    assert run(replayed) is None  # the real planner passes the same steps


def test_a_seed_is_the_same_scenario_every_time() -> None:
    assert scenario(7) == scenario(7) and scenario(7) != scenario(8)
