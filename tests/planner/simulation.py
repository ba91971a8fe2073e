"""A deterministic simulation of the pure planner, in the way FoundationDB tests itself.

A seed names a scenario: `scenario(seed)` draws a list of steps with `random.Random(seed)` (spec
edits, user requests, clock jumps, operator restarts, AWS faults, analysis answers), `run(steps)`
plays them against `decide` and the one fake AWS world (`tests.planner.sim.apply`), one pass per
step, then stops the faults and lets the Release settle. After every pass the invariants below are
checked; a violation is a `Violation` naming the invariant, the pass and what was seen, and
`shrink(steps)` cuts the step list down (delta debugging) to a minimal one that still fails the same
invariant, printed by `reproduction` as a literal that `run` replays (see
tests/planner/test_simulation_replays.py).

Why plain `random.Random(seed)` and not hypothesis: a seed is then a stable name for one scenario
(the benchmark's `--start S` and a bug report's seed mean the same steps on every machine and every
library version), generating a scenario costs microseconds, and the steps are plain dicts, so delta
debugging over them is a few lines and its result is a literal a test can paste.

What the simulation stands in for, besides AWS (sim.py's world):
- the reconciler's refusals before `decide`: an invalid spec (pydantic refuses it) and a Conflict
  (another Release holds the service) reach `decide` as `Context.refusal`, as
  `controller.reconciler.driver` gives them: `Ready=False`, nothing changes in AWS; the status
  written there is what the next `decide` sees;
- a throttled write: the applier stops at the throttled action, the actions before it have landed,
  and the decision's status is written with the error (the reconciler gives the planner a
  `Refusal` with `during` set to that decision);
- an operator restart: the next pass decides from an older status (the last write was lost, or
  several), or from none at all.
AWS writes from one pass land in order and are never reordered with a later pass's (the effector
waits for each call), so "applied late" means: landed, but the next pass's read does not show it yet.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping, Sequence

from pydantic import ValidationError

from controller.api.release import ConditionType, Measurement, Phase, ReleaseSpec, ReleaseStatus, Verdict
from controller.planner import Context, Decision, Refusal, Requests, analysis_due, decide, target_hash
from controller.planner.actions import Action
from controller.planner.core import HISTORY_LIMIT
from controller.planner import group
from controller.planner.steps import PauseStep, PreviewStep, SetStep
from controller.planner.strategy import plan_for
from controller.planner.tiers import origin_path
from controller.planner.world import Observation, ObservationError, TaskSet
from controller.testing.specs import merge, release_spec

from tests.planner.sim import (BLUE, DIST, GREEN, LISTENER, NAME, NS, T0, Knobs, apply, image, tier_spec, tier_world,
                               version_of, world)

Step = dict[str, Any]
Decide = Callable[[ReleaseSpec, ReleaseStatus, Observation, Context], Decision]

VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "1.3.0", "2.0.0", "2.1.0", "3.0.0")
FRONTEND_VERSIONS = ("1.0.0", "1.1.0", "2.0.0", "2.1.0")
REQUIRES = (None, ">=1.0.0", ">=2.0.0", ">=1.0.0,<2.0.0", ">=3.0.0")
METRICS = {"interval": "10s", "failureLimit": 1, "minSamples": 1,
           "metrics": [{"name": "error-rate", "prometheus": {"address": "http://p:9090", "query": "q"}, "max": 0.05}]}
FAULTS = ("lose", "twice", "late", "throttle_read", "throttle_write", "stale", "unstable")
SETTLE_PASSES = 200  # with faults stopped, a Release reaches a rest within this many passes
TOLERANCE = 0.5  # percent, as `fleet.SCALE_TOLERANCE`


# --------------------------------------------------------------------------- generating scenarios

def _canary_steps(rng: random.Random, top: int, pauses: bool = True, preview: bool = False) -> list[dict[str, Any]]:
    weights = sorted(rng.sample(range(1, top + 1), rng.randint(1, 3)))
    out: list[dict[str, Any]] = []
    if preview and rng.random() < 0.3:
        out.append({"preview": {"duration": rng.choice(["30s", "2m"])}})
    for w in weights:
        out.append({"setWeight": w})
        if pauses and rng.random() < 0.6:
            out.append({"pause": rng.choice([{}, {"duration": "30s"}, {"duration": "2m"}])})
    return out


def _strategy(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["Fast", "Rolling", "Canary", "BlueGreen", "Auto"])
    if kind == "Rolling" and rng.random() < 0.5:
        return {"type": "Rolling", "rolling": {"steps": sorted(rng.sample(range(1, 101), rng.randint(1, 3))) + [100],
                                               "interval": rng.choice(["5s", "30s"])}}
    if kind == "Canary":
        return {"type": "Canary", "canary": {"steps": _canary_steps(rng, 100, preview=True)}}
    if kind == "BlueGreen":
        header = {"previewHeader": {}} if rng.random() < 0.3 else {}
        return {"type": "BlueGreen", "blueGreen": {"previewDuration": rng.choice(["10s", "1m"]),
                                                    "scaleDownDelay": rng.choice(["30s", "5m"]), **header}}
    if kind == "Auto":
        return {"type": "Auto", **({"changeClass": rng.choice(["infrastructure", "api", "core", "minor"])} if rng.random() < 0.5 else {})}
    return {"type": kind}


def _frontend(rng: random.Random) -> dict[str, Any]:
    fe: dict[str, Any] = {"version": rng.choice(FRONTEND_VERSIONS), "cloudfront": {"distributionId": DIST, "originId": "web"}}
    requires = rng.choice(REQUIRES)
    if requires:
        fe["requiresBackend"] = requires
    if rng.random() < 0.3:
        fe["canary"] = {"steps": _canary_steps(rng, 15)}
    return fe


INVALID = (
    {"strategy": {"type": "Bogus"}},
    {"backend": {"version": "not-a-version"}},
    {"featureFlags": {"new_chat": "yes"}},
    {"strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 150}]}}},
)


def _step(rng: random.Random) -> Step:
    r = rng.random()
    if r < 0.16:
        return {"op": "version", "version": rng.choice(VERSIONS)}
    if r < 0.22:
        return {"op": "strategy", "strategy": _strategy(rng)}
    if r < 0.26:
        return {"op": "paused", "value": rng.random() < 0.5}
    if r < 0.29:
        return {"op": "flags", "flags": {"new_chat": rng.random() < 0.5}}
    if r < 0.33:
        return {"op": "frontend", "frontend": _frontend(rng)}
    if r < 0.35:
        return {"op": "invalid", "patch": rng.randrange(len(INVALID))}
    if r < 0.37:
        return {"op": "undo"}
    if r < 0.45:
        return {"op": "request", "kind": rng.choice(["promote", "promote", "abort", "retry"])}
    if r < 0.50:
        return {"op": "clock", "seconds": rng.choice([30, 120, 600, 3600])}
    if r < 0.55:
        return {"op": "restart", "back": rng.choice([1, 1, 2, 3, "empty"])}
    if r < 0.57:
        return {"op": "conflict"}
    if r < 0.62:
        return {"op": "measure", "verdict": rng.choice(["Passed", "Failed", "Inconclusive", "NoData"])}
    if r < 0.80:
        fault: Step = {"op": "fault", "kind": rng.choice(FAULTS)}
        if fault["kind"] in ("lose", "throttle_write"):
            fault["index"] = rng.randrange(4)
        return fault
    return {"op": "pass"}


def scenario(seed: int, steps: int = 40) -> list[Step]:
    """The steps seed `seed` names: first the Release's starting spec, then `steps` events."""
    rng = random.Random(seed)
    start: Step = {"op": "start", "strategy": _strategy(rng), "analysis": rng.random() < 0.4,
                   "frontend": _frontend(rng) if rng.random() < 0.4 else None,
                   "flags": {"new_chat": False} if rng.random() < 0.3 else None}
    if start["frontend"] is not None:
        # The frontend that runs already: the one the spec starts at.
        start["frontend"]["version"] = "1.0.0"
        start["frontend"].pop("requiresBackend", None)
        if seed % 4 == 0:
            # Both tiers previewed together (no extra random number: the other seeds stay as they were):
            # a frontend canary, and a canary whose first step previews the backend behind the header.
            start["frontend"].setdefault("canary", {"steps": [{"setWeight": 5}, {"pause": {"duration": "1m"}}]})
            if start["strategy"].get("type") not in ("Canary", "BlueGreen"):
                start["strategy"] = {"type": "Canary", "canary": {"steps": [
                    {"preview": {"duration": "1m"}}, {"setWeight": 20}, {"pause": {"duration": "30s"}}]}}
    tier = _tier(seed)
    if tier is not None:
        # Several services (issue many-services): a preview step (or blueGreen.previewHeader) stays:
        # every service is previewed. The tier's fake world has no CloudFront (`sim.tier_world`), so
        # a tier runs without a frontend here; a frontend after a tier is tests/e2e/test_system_release.py's.
        start["tier"] = tier
        start["frontend"] = None
    return [start, *(_step(rng) for _ in range(steps))]


TIER_SHARE = 0.4
"""The share of seeds whose Release is a tier of services (`backend.services`), drawn apart from the
scenario's own draws so a seed of one service names the same scenario as before."""


def _tier(seed: int) -> list[list[Any]] | None:
    """None (the single-service form), or 1 to 3 services as [name, after, with traffic]: api first;
    then mcp (with traffic) and a worker (without), each after api or not."""
    rng = random.Random(f"tier:{seed}")
    if rng.random() >= TIER_SHARE:
        return None
    services: list[list[Any]] = [["api", [], True]]
    for name, traffic in rng.sample([("mcp", True), ("worker", False)], rng.randint(0, 2)):
        services.append([name, ["api"] if rng.random() < 0.8 else [], traffic])
    return services


# --------------------------------------------------------------------------- invariants

@dataclass(frozen=True)
class Violation:
    invariant: str
    pass_index: int
    message: str

    def __str__(self) -> str:
        return f"{self.invariant} at pass {self.pass_index}: {self.message}"


@dataclass
class PassRecord:
    """One pass as the invariants see it."""

    index: int
    spec: ReleaseSpec | None  # None: the spec is invalid (refused before decide)
    status_in: ReleaseStatus
    seen: Observation  # what the planner was shown
    decision: Decision
    again: Decision | None  # the same pass decided a second time (None: decide was not called)
    intent: Observation  # `seen` after the decision's actions, as the planner meant them
    refused: str | None  # why the spec was not taken on (invalid, conflict, the planner's refusal)
    impossible: str | None = None  # an action the world shown to the planner cannot do


def live_task_sets(obs: Observation) -> list[TaskSet]:
    return [ts for ts in (obs.service.task_sets if obs.service else ()) if ts.status != "DRAINING"]


def at_most_two_task_sets(p: PassRecord, state: dict[str, Any]) -> str | None:
    """Never more than two live task sets, as the planner means the world after its pass."""
    live = live_task_sets(p.intent)
    if len(live) > 2:
        return f"{len(live)} live task sets: {[(ts.id, ts.image) for ts in live]}"
    return None


def _capacity(obs: Observation, tg: str) -> float:
    return sum(ts.scale_percent for ts in live_task_sets(obs) if ts.target_group_arn == tg and ts.stability == "STEADY_STATE")


def weight_only_on_ready_capacity(p: PassRecord, state: dict[str, Any]) -> str | None:
    """Weight on a target group never exceeds the scale of its steady task sets: traffic is never
    put on a task set that is not at its scale and steady. Weight the pass found already there on
    capacity a fault took away (a task set gone unsteady) is not the pass's doing, unless it adds to it."""
    if p.intent.listener is None:
        return None
    for tg, weight in sorted(p.intent.listener.weights.items()):
        if weight <= 0 or weight <= _capacity(p.intent, tg) + TOLERANCE:
            continue
        before = p.seen.listener.weight(tg) if p.seen.listener else 0
        if before >= weight and _capacity(p.seen, tg) + TOLERANCE < before:
            continue  # inherited: the world lost the capacity, the planner did not add the weight
        return f"weight {weight} on target group {tg.rsplit('/', 2)[-2]}, steady capacity {_capacity(p.intent, tg)}%"
    return None


def stable_keeps_the_rest(p: PassRecord, state: dict[str, Any]) -> str | None:
    """During a rollout, all traffic not on the canary's target group stays on the stable version the
    rollout started from (the last promoted one: a canary superseded mid-promotion is not, and its
    traffic goes back), until promotion. A version that already served beside it in its group when
    the rollout began (a leftover the status does not name, after a restart from an older status)
    served before the rollout too: it may keep serving there until it goes (the planner takes it
    away only once the stable task set can hold the traffic), but no other version may come in."""
    st = p.decision.status
    if p.spec is None or st.backend.canary_image is None or st.phase not in (Phase.PROGRESSING, Phase.PAUSED):
        state.pop("rollout", None)
        return None
    key = (st.revision, st.target_hash)
    if state.get("rollout", (None,))[0] != key:
        # The baseline: the status's stable image, if it runs (a status older than the world may name
        # one long gone; then the rollout has no baseline to hold).
        runs = any(ts.image == st.backend.stable_image for ts in live_task_sets(p.seen))
        baseline = st.backend.stable_image if runs else None
        home = {ts.target_group_arn for ts in live_task_sets(p.seen) if ts.image == baseline}
        beside = frozenset(ts.image for ts in live_task_sets(p.seen)
                           if ts.target_group_arn in home and ts.scale_percent > 0
                           and ts.image not in (baseline, st.backend.canary_image))
        state["rollout"] = (key, baseline, beside)
    before, beside = state["rollout"][1], state["rollout"][2]
    if before is None or p.intent.listener is None or before == st.backend.canary_image:
        return None
    groups = {ts.target_group_arn for ts in live_task_sets(p.intent) if ts.image == before}
    for tg, weight in sorted(p.intent.listener.weights.items()):
        if weight <= 0 or tg not in groups:
            continue  # the canary's group: its share is the canary's (or a superseded canary's)
        images = {ts.image for ts in live_task_sets(p.intent) if ts.target_group_arn == tg and ts.scale_percent > 0}
        if before not in images or not images <= {before, *beside}:
            return (f"rollout to {_v(st.backend.canary_image)}: {weight}% on the stable group, served by "
                    f"{sorted(_v(i) for i in images)}, but {_v(before)} served before the rollout")
    if not groups and sum(p.intent.listener.weights.values()) > p.intent.listener.weights.get(_canary_group(p), 0):
        return f"rollout to {_v(st.backend.canary_image)}: {_v(before)}, which served before, is gone mid-rollout"
    return None


def preview_route_only_during_a_preview(p: PassRecord, state: dict[str, Any]) -> str | None:
    """Per service: the Release's preview rule on the service's listener exists only while the status
    it ends the pass with is at a preview step (so never at rest), one rule at most, under the
    service's own owner (`<namespace>/<name>/<service>` in a tier of several, `<namespace>/<name>` for
    one service; no other owner of this Release), and its target group takes no production weight:
    the header reaches a version no user is sent to yet. (A refused pass decides nothing, so changes
    nothing.)"""
    if p.refused is not None or p.spec is None:
        return None
    several = p.spec.backend.several
    for name, q in per_service(p):
        found = _preview_rule_of(q, f"{NS}/{NAME}/{name}" if several else f"{NS}/{NAME}")
        if found is not None:
            return f"service {name}: {found}" if several else found
    return None


def _preview_rule_of(p: PassRecord, owner: str) -> str | None:
    listener = p.intent.listener
    ours = [r for r in listener.previews if r.owner == f"{NS}/{NAME}" or r.owner.startswith(f"{NS}/{NAME}/")] \
        if listener is not None else []
    if not ours:
        return None
    assert listener is not None and p.spec is not None
    strays = sorted({r.owner for r in ours if r.owner != owner})
    if strays:
        return f"preview rules of this Release under {strays}, not {owner}"
    if len(ours) > 1:
        return f"{len(ours)} preview rules: {ours}"
    st = p.decision.status
    steps = plan_for(st.strategy, p.spec).steps if st.strategy is not None else ()
    at = steps[st.current_step] if 0 <= st.current_step < len(steps) else None
    if not isinstance(at, PreviewStep) or st.phase not in (Phase.PROGRESSING, Phase.PAUSED) or st.backend.canary_image is None:
        return f"a preview rule with the status {st.phase.value if st.phase else None} at step {st.current_step} ({at})"
    tg = ours[0].target_group_arn
    if tg is None or listener.weight(tg) > 0:
        return f"the preview rule forwards to {tg}, which takes {listener.weight(tg) if tg else '?'}% of production"
    return None


def staging_previews_only_during_a_preview(p: PassRecord, state: dict[str, Any]) -> str | None:
    """CloudFront's staging distribution routes by a header only while the status the pass ends with is
    at a preview step (so the new frontend is previewed with the new backend, and at no other time),
    and by that step's header, serving the spec's frontend; it takes production weight (an enabled
    SingleWeight share) only with no backend rollout under way (the backend promoted, or not
    changing), never during a backend's rollout."""
    fe = p.intent.frontend
    staging = fe.staging if fe is not None else None
    if staging is None or p.refused is not None or p.spec is None:
        return None
    st = p.decision.status
    if staging.policy_enabled and staging.weight_percent > 0 and st.backend.canary_image is not None:
        return (f"staging takes {staging.weight_percent}% of viewers with the backend rollout at "
                f"{_v(st.backend.canary_image)} and the frontend canary at step {st.frontend.current_step} "
                f"({st.phase.value if st.phase else None})")
    if not staging.header_routed:
        return None
    steps = plan_for(st.strategy, p.spec).steps if st.strategy is not None else ()
    at = steps[st.current_step] if 0 <= st.current_step < len(steps) else None
    if not isinstance(at, PreviewStep) or st.phase not in (Phase.PROGRESSING, Phase.PAUSED) or st.backend.canary_image is None:
        return f"staging routes by {staging.header_name} with the status {st.phase.value if st.phase else None} at step {st.current_step} ({at})"
    if (staging.header_name, staging.header_value) != (at.header_name, at.header_value):
        return f"staging routes by {staging.header_name}: {staging.header_value}, the preview by {at.header_name}: {at.header_value}"
    want = origin_path(p.spec)
    if staging.origin_path != want:
        return f"staging previews {staging.origin_path}, the spec's frontend is {want}"
    return None


def _canary_group(p: PassRecord) -> str:
    canary = p.decision.status.backend.canary_image
    return next((ts.target_group_arn or "" for ts in live_task_sets(p.intent) if ts.image == canary), "")


def _v(img: str | None) -> str:
    return img.rsplit(":", 1)[-1] if img else "-"


def refused_spec_writes_nothing(p: PassRecord, state: dict[str, Any]) -> str | None:
    """A spec refused (invalid, conflict, incompatible, unsupported) changes nothing in AWS."""
    if p.refused is not None and p.decision.actions:
        return f"refused ({p.refused}) yet asked for {[type(a).__name__ for a in p.decision.actions]}"
    return None


def deterministic(p: PassRecord, state: dict[str, Any]) -> str | None:
    """The same inputs give the same decision."""
    if p.again is not None and p.again != p.decision:
        return "decide gave two different decisions for the same inputs"
    return None


def acts_only_on_what_it_saw(p: PassRecord, state: dict[str, Any]) -> str | None:
    """Every action names something in the world the planner was shown (no task set it did not see)."""
    return p.impossible


def status_shows_what_serves(p: PassRecord, state: dict[str, Any]) -> str | None:
    """The status's versions and weights are what the world the planner was shown serves, at every
    phase (paused, superseded, rolled back, held): counted here from the task sets and listener
    weights, independently of `planner.serving`."""
    if p.again is None or p.seen.service is None:
        return None  # refused before decide: the reconciler's gate wrote the status
    serves: dict[str, float] = {}
    groups: dict[str | None, list[TaskSet]] = {}
    for ts in p.seen.service.task_sets:
        if ts.scale_percent > 0:
            groups.setdefault(ts.target_group_arn, []).append(ts)
    weights = dict(p.seen.listener.weights) if p.seen.listener is not None else {}
    total = sum(weights.values())
    for tg, sets in groups.items():
        share = 100.0 * weights.get(tg or "", 0) / total if total else 100.0 / len(groups)
        scale = sum(ts.scale_percent for ts in sets)
        for ts in sets:
            v = version_of(ts.image) or "unknown"
            serves[v] = serves.get(v, 0.0) + share * ts.scale_percent / scale
    want = {v: round(w) for v, w in serves.items() if round(w) > 0}
    shown = {s.version: s.weight for s in p.decision.status.backend.serving}
    if want != shown:
        return f"status shows {shown or 'nothing'} serving, AWS serves {want}"
    canary = p.decision.status.backend.canary_version
    if p.decision.status.backend.canary_weight != (want.get(canary, 0) if canary else 0):
        return f"canary {canary} shown at {p.decision.status.backend.canary_weight}%, AWS gives it {want.get(canary or '', 0)}%"
    return None


def history_bounded(p: PassRecord, state: dict[str, Any]) -> str | None:
    n = len(p.decision.status.history)
    return f"history has {n} entries (limit {HISTORY_LIMIT})" if n > HISTORY_LIMIT else None


# --------------------------------------------------------------------------- a tier of several services

def several(p: PassRecord) -> bool:
    return p.spec is not None and p.spec.backend.several


def per_service(p: PassRecord) -> list[tuple[str, PassRecord]]:
    """The pass as each service of a tier sees it (`planner.group`'s projections of the spec, the
    statuses and the worlds), so every invariant of one service holds for each; one service: the pass."""
    if p.spec is None or not p.spec.backend.several:
        return [("", p)]
    out = []
    for s in p.spec.backend.service_list():
        out.append((s.name, replace(
            p, spec=group.project(p.spec, s), status_in=group.status_of(p.status_in, s),
            seen=group.observation_of(p.seen, s.name), intent=group.observation_of(p.intent, s.name),
            decision=replace(p.decision, status=group.status_of(p.decision.status, s)))))
    return out


def new_share(obs: Observation, version: str) -> float:
    """Percent of what one service serves (its listener's traffic; a worker: its tasks) on task sets
    of `version` (by the image's tag, as the fake world tags them)."""
    groups: dict[str | None, list[TaskSet]] = {}
    for ts in live_task_sets(obs):
        if ts.scale_percent > 0:
            groups.setdefault(ts.target_group_arn, []).append(ts)
    weights = dict(obs.listener.weights) if obs.listener is not None else {}
    total = sum(weights.values())
    share = 0.0
    for tg, sets in groups.items():
        part = 100.0 * weights.get(tg or "", 0) / total if total else 100.0 / len(groups)
        scale = sum(ts.scale_percent for ts in sets)
        share += sum(part * ts.scale_percent / scale for ts in sets if version_of(ts.image) == version)
    return share


def tier_version(p: PassRecord) -> str | None:
    """The version the tier is moving to (its canary), or, going back, the one it is moving away from."""
    st = p.decision.status
    if st.backend.canary_version is not None:
        return st.backend.canary_version
    if st.phase in (Phase.ROLLED_BACK, Phase.FAILED) and st.history and st.history[-1].result != "Succeeded":
        return st.history[-1].backend_version
    return None


def _order_breaches(p: PassRecord, world: Observation) -> dict[tuple[str, str], tuple[float, str]]:
    """(service, a service it comes after) -> (the service's share, what is wrong), for each pair where
    the service serves more of the tier's version than the one it follows."""
    assert p.spec is not None
    version = tier_version(p)
    if version is None or version == p.decision.status.backend.stable_version:
        return {}
    shares = {s.name: new_share(group.observation_of(world, s.name), version) for s in p.spec.backend.service_list()}
    # A service whose new task sets lost their capacity (the world made them unsteady) has its traffic
    # taken off them, as one service would; its followers wait for it (not counted: the world's doing).
    unsteady = {s.name for s in p.spec.backend.service_list() if any(
        ts.stability != "STEADY_STATE" and ts.scale_percent > 0
        for ts in live_task_sets(group.observation_of(world, s.name)))}
    # A service the status says already runs the version (a tier half rolled out when the status was
    # lost: it was found so at the rollout's start) keeps it; it is not the planner's move.
    ahead = {s.name for s in p.spec.backend.service_list()
             if (e := group.entry(p.decision.status, s.name)) is not None
             and e.canary_image is None and version_of(e.stable_image) == version}
    return {(s.name, a): (shares[s.name], f"{s.name} {shares[s.name]:.0f}% on {version}, {a} {shares[a]:.0f}%")
            for s in p.spec.backend.service_list() for a in s.after
            if shares[s.name] > shares[a] + 1.0 and a not in unsteady and s.name not in ahead}


def _order_made(p: PassRecord) -> str | None:
    """The order breaches of the world the pass means, not counting one it found already there (a
    late write, a lost one) and did not make worse: the follower's share not raised."""
    now, before = _order_breaches(p, p.intent), _order_breaches(p, p.seen)
    made = [what for pair, (share, what) in now.items() if pair not in before or share > before[pair][0] + 1.0]
    return "; ".join(made) if made else None


def order(p: PassRecord, state: dict[str, Any]) -> str | None:
    """A tier of several, moving forward: no service serves the new version (traffic, or a worker's
    tasks) more than a service it comes after does, so none takes a step before those it follows."""
    if not several(p) or p.decision.status.phase in (Phase.ROLLED_BACK, Phase.FAILED):
        return None
    return _order_made(p)


def reverse_rollback(p: PassRecord, state: dict[str, Any]) -> str | None:
    """A tier of several, going back (RolledBack, Failed): a service is back on the old version only
    once every service that comes after it is (the order above, in reverse)."""
    if not several(p) or p.decision.status.phase not in (Phase.ROLLED_BACK, Phase.FAILED):
        return None
    return _order_made(p)


def lockstep(p: PassRecord, state: dict[str, Any]) -> str | None:
    """A tier of several: a pause's timer starts only once every service shows the weight of the
    step before it (a promote request may end a step early: then nothing is claimed)."""
    if not several(p) or p.again is None:
        return None
    st, before = p.decision.status, p.status_in
    assert p.spec is not None
    if (st.strategy is None or st.backend.canary_image is None or st.target_hash != before.target_hash
            or st.revision != before.revision or st.current_step != before.current_step + 1
            or st.acknowledged.promote != before.acknowledged.promote):
        return None
    steps = plan_for(st.strategy, p.spec).steps
    if not 0 <= st.current_step < len(steps) or not isinstance(steps[st.current_step], PauseStep):
        return None
    held = steps[st.current_step - 1]
    if not isinstance(held, SetStep):
        return None
    short = []
    for s in p.spec.backend.service_list():
        view = group.observation_of(p.seen, s.name)
        e = group.entry(st, s.name)
        if e is not None and e.canary_image is None:
            continue  # already runs the version (a tier half rolled out when the status was lost): it stays
        if s.traffic is not None and view.listener is not None and st.backend.canary_version is not None:
            want = held.canary_weight
            got = round(new_share(view, st.backend.canary_version))
            if abs(got - want) > 1:
                short.append(f"{s.name} at {got}%, the step says {want}%")
    return f"the pause of step {st.current_step + 1} began with " + "; ".join(short) if short else None


def each_service(inv: Callable[[PassRecord, dict[str, Any]], str | None],
                 head_only: bool = False) -> Callable[[PassRecord, dict[str, Any]], str | None]:
    """`inv` for every service of a tier (its own state each), named as `inv`. `head_only`: for the
    first service only (the one the tier's own status fields speak for)."""
    def check(p: PassRecord, state: dict[str, Any]) -> str | None:
        for name, q in per_service(p)[:1] if head_only else per_service(p):
            found = inv(q, state.setdefault(("service", name), {}) if name else state)
            if found is not None:
                return f"service {name}: {found}" if name else found
        return None
    check.__name__ = inv.__name__
    check.__doc__ = inv.__doc__
    return check


def status_shows_each_weight(p: PassRecord, state: dict[str, Any]) -> str | None:
    """A tier of several: each service's canary weight in status.backend.services is what AWS gives
    its canary (independently counted, for the services with traffic), and the tier's is the least."""
    if not several(p) or p.again is None:
        return None
    assert p.spec is not None
    st = p.decision.status
    canary = st.backend.canary_version
    weights = []
    for s in p.spec.backend.service_list():
        e = group.entry(st, s.name)
        view = group.observation_of(p.seen, s.name)
        if s.traffic is None or e is None or view.service is None:
            continue
        want = round(new_share(view, canary)) if canary else 0
        shown = e.canary_weight
        if canary and abs(shown - want) > 1:
            return f"{s.name}: canary shown at {shown}%, AWS gives the new version {want}%"
        weights.append(shown)
    if canary and weights and st.backend.canary_weight != min(weights):
        return f"the tier's canary weight {st.backend.canary_weight}%, its services' {weights}"
    return None


PASS_INVARIANTS: tuple[Callable[[PassRecord, dict[str, Any]], str | None], ...] = (
    each_service(at_most_two_task_sets),
    each_service(weight_only_on_ready_capacity),
    each_service(stable_keeps_the_rest),
    refused_spec_writes_nothing,
    deterministic,
    history_bounded,
    acts_only_on_what_it_saw,
    each_service(status_shows_what_serves, head_only=True),
    preview_route_only_during_a_preview,
    staging_previews_only_during_a_preview,
    order,
    lockstep,
    reverse_rollback,
    status_shows_each_weight,
)
CONVERGES = "converges"
ENDS_IN_TIME = "ends_in_time"
INVARIANTS = tuple(f.__name__ for f in PASS_INVARIANTS) + (CONVERGES, ENDS_IN_TIME)
LIVENESS_SLACK = timedelta(minutes=2)
"""With faults stopped, no Release goes longer than progressDeadline plus this without progress,
unless held for a person (`human_hold`): every wait of a rollout is bounded."""


def progress_key(p: PassRecord) -> tuple[Any, ...]:
    """What moving on means: the rollout's place, its analysis's samples, and the world it made."""
    st = p.decision.status
    views = [q.intent for _, q in per_service(p)]
    world = tuple(sorted((ts.image, ts.scale_percent, ts.status) for o in views for ts in live_task_sets(o)))
    weights = tuple(sorted(w for o in views if o.listener is not None for w in o.listener.weights.items()))
    samples = st.analysis.samples if st.analysis is not None else None
    return (st.phase, st.revision, st.target_hash, st.current_step, st.frontend.current_step, st.promoted_at,
            samples, world, weights)


HUMAN_HOLDS = frozenset({"WaitingForPromote", "Paused", "AnalysisFailed", "AnalysisInvalid", "AnalysisUnanswered",
                         "RollbackUnsafe"})
"""Where a rollout waits for a person by the spec's own request, each documented (README, "Pausing
and holds"): `pause: {}` (WaitingForPromote), `spec.paused`, `onDegradation: Pause` after a failed or
unanswered analysis, and a rollback refused after an irreversible hook."""


def human_hold(p: PassRecord) -> bool:
    st = p.decision.status
    if st.phase != Phase.PAUSED:
        return False
    reasons = {c.reason for c in st.conditions if c.type in (ConditionType.PROGRESSING, ConditionType.READY)}
    return bool(reasons & HUMAN_HOLDS)


def at_rest(p: PassRecord) -> bool:
    """A Release at rest: Succeeded, RolledBack or Failed, or Stalled (a refused spec), asking AWS for nothing."""
    if p.decision.actions:
        return False
    if p.refused is not None:
        return True
    stalled = next((c for c in p.decision.status.conditions if c.type == ConditionType.STALLED), None)
    if stalled is not None and stalled.status == "True":
        return True  # it will not get further without a new spec (a refused frontend, say): kstatus's Failed
    return p.decision.status.phase in (Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.FAILED)


# --------------------------------------------------------------------------- running

def tier_services(tier: Sequence[Sequence[Any]], version: str) -> list[dict[str, Any]]:
    """`backend.services` of a tier of [name, after, with traffic] at `version` (`sim.tier_spec`)."""
    return [s.model_dump(mode="json", by_alias=True, exclude_none=True)
            for s in tier_spec(version, None, [(n, tuple(a), t) for n, a, t in tier]).backend.service_list()]


def each_task_set(obs: Observation, change: Callable[[TaskSet], TaskSet]) -> Observation:
    """`obs` with `change` applied to every task set of every service (one, or each of a tier's)."""
    def of(svc: Any) -> Any:
        return None if svc is None else replace(svc, task_sets=tuple(change(ts) for ts in svc.task_sets))
    views = {n: replace(v, service=of(v.service)) for n, v in obs.services.items()}
    head = next(iter(views.values())).service if views else of(obs.service)
    return replace(obs, service=head, services=views)


def apply_each(obs: Observation, actions: Sequence[Action], knobs: Knobs | None = None) -> tuple[Observation, str | None]:
    """`sim.apply`, one action at a time, stopping at the first that AWS would refuse (a task set
    that no longer exists: with stale reads and late writes the planner may name one), as the
    applier stops at the first EffectError. Returns the world and that error."""
    for a in actions:
        try:
            obs = apply(obs, (a,), knobs)
        except AssertionError as exc:
            return obs, f"{type(a).__name__}: {exc}"
    return obs, None


@dataclass
class Stats:
    passes: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    covered: Counter[str] = field(default_factory=Counter)  # passes that ended with a preview in AWS


@dataclass
class _Sim:
    decide: Decide
    stats: Stats
    spec_raw: dict[str, Any] = field(default_factory=dict)
    valid_raw: dict[str, Any] = field(default_factory=dict)  # the last valid spec (edits apply to it)
    good_raw: dict[str, Any] | None = None  # the spec of the last Succeeded revision (undo's target)
    obs: Observation = field(default_factory=Observation)
    previous_obs: Observation = field(default_factory=Observation)
    late: tuple[Action, ...] = ()
    status: ReleaseStatus = field(default_factory=ReleaseStatus)
    written: list[ReleaseStatus] = field(default_factory=list)
    now: datetime = T0
    requests: Requests = Requests()
    verdict: Verdict = Verdict.PASSED
    unstable: bool = False
    conflict: bool = False
    records: list[PassRecord] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    tier: list[list[Any]] | None = None  # the start step's services, when the Release is a tier of them

    # ---------------------------------------------------------------- one pass

    def parse(self) -> ReleaseSpec | None:
        try:
            return ReleaseSpec.model_validate(self.spec_raw)
        except ValidationError:
            return None

    def measurements(self, spec: ReleaseSpec) -> tuple[Measurement, ...]:
        if not spec.analysis.metrics or not analysis_due(spec, self.status, self.now):
            return ()
        value = {Verdict.PASSED: 0.01, Verdict.FAILED: 0.5}.get(self.verdict)
        # Inconclusive without a value: the provider is down; NoData: the query finds no series.
        return (Measurement(metric="error-rate", value=value, verdict=self.verdict,
                            message=f"error-rate {self.verdict.value}", time=self.now),)

    def gate(self, spec: ReleaseSpec | None, reason: str, message: str) -> Decision:
        """The reconciler's refusal before decide, given to the planner as the reconciler gives it
        (`Context.refusal`): conditions, no action (see the module docstring)."""
        ctx = Context(namespace=NS, name=NAME, generation=1, now=self.now, requests=self.requests,
                      refusal=Refusal(reason, message))
        return decide(spec, self.status, Observation(), ctx)  # the real planner: the mutants break phases

    def one(self, fault: Step | None) -> PassRecord:
        kind = fault["kind"] if fault else None
        if kind:
            self.stats.faults[kind] += 1
        if kind == "unstable":
            self.unstable = True
            # The tasks of every task set not serving as primary start failing their health checks.
            self.obs = each_task_set(self.obs, lambda ts: ts if ts.status == "PRIMARY" else replace(
                ts, stability="STABILIZING"))
        seen = self.previous_obs if kind == "stale" else self.obs
        if kind == "throttle_read":
            seen = seen.with_errors(ObservationError("AwsError", "Throttling: Rate exceeded", retryable=True))
        spec = self.parse()
        again: Decision | None = None
        refused: str | None = None
        if spec is None:
            decision, refused = self.gate(None, "InvalidSpec", "spec is invalid"), "InvalidSpec"
        elif self.conflict:
            decision, refused = self.gate(spec, "Conflict", f"backend/{NS}/other owns the service"), "Conflict"
        else:
            ctx = Context(namespace=NS, name=NAME, generation=1, now=self.now, requests=self.requests,
                          measurements=self.measurements(spec))
            decision = self.decide(spec, self.status, seen, ctx)
            again = self.decide(spec, self.status, seen, ctx)
            if decision.status.target_hash != target_hash(spec):
                refused = next((c.reason for c in decision.status.conditions
                                if c.type == ConditionType.PROGRESSING and c.status == "False"), "NotTakenOn")
        self.conflict = False
        intent, impossible = apply_each(seen, decision.actions)
        record = PassRecord(len(self.records), spec, self.status, seen, decision, again, intent, refused,
                            impossible=impossible)
        self.records.append(record)
        self.stats.passes += 1
        staged = intent.frontend.staging if intent.frontend is not None else None
        if staged is not None and staged.header_routed:
            self.stats.covered["staging header"] += 1
        views = [intent.view(s.name) for s in spec.backend.service_list()] if spec is not None else []
        if any(v.listener is not None and v.listener.previews for v in views):
            self.stats.covered["preview route"] += 1
            if len(views) > 1:
                self.stats.covered["preview route, several services"] += 1

        # The world: what lands, in order.
        knobs = Knobs(stabilizing=self.unstable)
        before = self.obs
        world_now, _ = apply_each(self.obs, self.late, knobs)  # a late write that now fails is dropped
        self.late = ()
        actions = decision.actions
        status = decision.status
        error: str | None = None
        if kind == "lose" and actions:
            lost = actions[fault["index"] % len(actions)]  # type: ignore[index]
            knobs = replace(knobs, lose=lambda a: a is lost)
        if kind == "throttle_write" and actions:
            actions = actions[: fault["index"] % len(actions)]  # type: ignore[index]
            error = "Throttling: Rate exceeded"
        if kind == "late":
            self.late = actions
        else:
            world_now, failed = apply_each(world_now, actions, knobs)
            if kind == "twice":
                world_now, _ = apply_each(world_now, actions, knobs)
            error = error or failed
        if error is not None and spec is not None:
            # The applier stopped at a failed write: the decision's status is written with the error,
            # as the reconciler has the planner say it (a `Refusal` during that decision).
            refusal = Refusal("AwsError", error, during=decision)
            status = decide(spec, self.status, seen, Context(namespace=NS, name=NAME, generation=1, now=self.now,
                                                              requests=self.requests, refusal=refusal)).status
        self.previous_obs, self.obs = before, world_now
        self.status = status
        self.written.append(status)
        if spec is not None and status.phase == Phase.SUCCEEDED and status.target_hash == target_hash(spec):
            self.good_raw = dict(self.spec_raw)
        step = decision.requeue_after if decision.requeue_after is not None else 30.0
        self.now += timedelta(seconds=step)
        return record

    # ---------------------------------------------------------------- events between passes

    def edit(self, over: Mapping[str, Any]) -> None:
        self.spec_raw = merge(self.valid_raw, over)
        self.valid_raw = self.spec_raw

    def event(self, step: Step, token: str) -> Step | None:
        """Apply `step` to the world or the inputs; return it when it is a fault for the next pass."""
        op = step["op"]
        if op == "version":
            v = step["version"]
            if self.tier is not None:
                self.edit({"backend": {"version": v, "services": tier_services(self.tier, v)}})
            else:
                self.edit({"backend": {"version": v, "image": image(v)}})
                fe = self.valid_raw.get("frontend")
                if fe and fe.get("canary") and VERSIONS.index(v) % 2:
                    # A release of both tiers (half the versions, drawn from no extra random number, so the
                    # other scenarios stay as they were): with a preview step, the new frontend is staged
                    # behind the preview header while the new backend is previewed.
                    self.edit({"frontend": {"version": FRONTEND_VERSIONS[VERSIONS.index(v) % len(FRONTEND_VERSIONS)]}})
        elif op == "strategy":
            self.spec_raw = {**self.valid_raw, "strategy": step["strategy"]}
            self.valid_raw = self.spec_raw
        elif op == "paused":
            self.edit({"paused": step["value"]})
        elif op == "flags":
            self.edit({"featureFlags": step["flags"]})
        elif op == "frontend":
            if "frontend" in self.valid_raw:  # only a Release with a frontend changes it
                self.spec_raw = {**self.valid_raw, "frontend": step["frontend"]}
                self.valid_raw = self.spec_raw
        elif op == "invalid":
            self.spec_raw = merge(self.valid_raw, INVALID[step["patch"]])
        elif op == "undo":
            if self.good_raw is not None:
                self.spec_raw = self.valid_raw = dict(self.good_raw)
        elif op == "request":
            self.requests = replace(self.requests, **{step["kind"]: token})
        elif op == "clock":
            self.now += timedelta(seconds=step["seconds"])
        elif op == "restart":
            back = step["back"]
            if back == "empty":
                self.status = ReleaseStatus()
            elif len(self.written) > back:
                self.status = self.written[-1 - back]
        elif op == "conflict":
            self.conflict = True
        elif op == "measure":
            self.verdict = Verdict(step["verdict"])
        elif op == "fault":
            return step
        return None

    def begin(self, step: Step) -> None:
        body = release_spec(version="1.0.0", image=image("1.0.0"), cluster="prod", service="backend",
                            traffic=(LISTENER, BLUE, GREEN), strategy=step["strategy"])
        over = {"analysis": METRICS if step["analysis"] else None, "frontend": step["frontend"],
                "featureFlags": step["flags"]}
        self.spec_raw = self.valid_raw = merge(body, {k: v for k, v in over.items() if v is not None})
        self.obs = self.previous_obs = world("1.0.0", frontend_path="/releases/1.0.0" if step["frontend"] else None)
        self.tier = step.get("tier")
        if self.tier is not None:
            self.spec_raw["backend"] = {"version": "1.0.0", "services": tier_services(self.tier, "1.0.0")}
            self.valid_raw = self.spec_raw
            self.obs = self.previous_obs = tier_world("1.0.0", [(n, tuple(a), t) for n, a, t in self.tier])

    def settle(self) -> Decision:
        """Faults stop: task sets settle, nothing is lost; a person unpauses and promotes what waits."""
        self.unstable, self.late = False, ()
        self.obs = each_task_set(self.obs, lambda ts: replace(ts, stability="STEADY_STATE"))
        if self.verdict not in (Verdict.INCONCLUSIVE, Verdict.NO_DATA):
            self.verdict = Verdict.PASSED  # a monitoring outage or a query finding nothing goes on: bounded all the same
        if self.parse() is not None and self.spec_raw.get("paused"):
            self.edit({"paused": False})
        return self.records[-1].decision


def run(steps: Sequence[Step], decide_fn: Decide = decide, stats: Stats | None = None,
        trace: list[PassRecord] | None = None) -> Violation | None:
    """Play `steps` (a scenario, or a shrunk one); the first invariant violated, or None.
    `trace` (a list) receives every pass."""
    sim = _Sim(decide=decide_fn, stats=stats or Stats())
    if trace is not None:
        sim.records = trace
    if not steps or steps[0]["op"] != "start":
        raise ValueError("a scenario begins with its start step")
    sim.begin(steps[0])

    def check(p: PassRecord) -> Violation | None:
        for inv in PASS_INVARIANTS:
            message = inv(p, sim.state)
            if message is not None:
                return Violation(inv.__name__, p.index, message)
        return None

    first = check(sim.one(None))
    if first:
        return first
    for n, step in enumerate(steps[1:], 1):
        fault = sim.event(step, f"t{n}")
        if step["op"] == "clock":
            continue  # time passes; the next step's pass sees it
        found = check(sim.one(fault))
        if found:
            return found
    sim.settle()
    spec = sim.parse()
    deadline = (spec.progress_deadline if spec is not None else timedelta(minutes=10)) + LIVENESS_SLACK
    moved, key = sim.now, None
    for i in range(SETTLE_PASSES):
        p = sim.one(None)
        found = check(p)
        if found:
            return found
        if progress_key(p) != key:
            moved, key = sim.now, progress_key(p)
        if at_rest(p):
            return None
        if human_hold(p) and not p.decision.actions:
            sim.requests = replace(sim.requests, promote=f"settle{i}")  # a person promotes what waits
            moved = sim.now
        elif sim.now - moved > deadline:
            st = p.decision.status
            return Violation(ENDS_IN_TIME, p.index, f"no progress for {sim.now - moved} (progressDeadline "
                             f"{deadline - LIVENESS_SLACK}) and no human hold: {st.phase} {st.message}")
    last = sim.records[-1].decision.status
    return Violation(CONVERGES, len(sim.records) - 1,
                     f"no rest after {SETTLE_PASSES} passes without faults: {last.phase} {last.message}")


# --------------------------------------------------------------------------- shrinking

def shrink(steps: Sequence[Step], invariant: str, decide_fn: Decide = decide, budget: int = 400) -> list[Step]:
    """A smaller step list that still violates `invariant` (delta debugging, ddmin, over the steps
    after the start step), within `budget` replays."""
    head, body = steps[0], list(steps[1:])
    tries = 0

    def fails(candidate: list[Step]) -> bool:
        nonlocal tries
        tries += 1
        found = run([head, *candidate], decide_fn)
        return found is not None and found.invariant == invariant

    n = 2
    while len(body) >= 1 and tries < budget:
        chunk = max(1, len(body) // n)
        reduced = False
        for i in range(0, len(body), chunk):
            candidate = body[:i] + body[i + chunk:]
            if tries < budget and fails(candidate):
                body, n, reduced = candidate, max(n - 1, 2), True
                break
        if not reduced:
            if chunk == 1:
                break
            n = min(len(body), n * 2)
    return [head, *body]


def reproduction(steps: Sequence[Step], violation: Violation, seed: int | None = None) -> str:
    """Python a replay test can paste: the steps and the violation they produce."""
    lines = [f"# seed {seed}: {violation}" if seed is not None else f"# {violation}", "STEPS = ["]
    lines += [f"    {step!r}," for step in steps]
    lines += ["]", f"assert run(STEPS) is None  # fails today with {violation.invariant}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- many seeds

@dataclass
class Report:
    seeds: int = 0
    stats: Stats = field(default_factory=Stats)
    violations: Counter[str] = field(default_factory=Counter)
    failing: list[tuple[int, Violation]] = field(default_factory=list)


def run_seeds(seeds: Iterable[int], steps: int = 40, decide_fn: Decide = decide,
              until: str | None = None) -> Report:
    """Run each seed's scenario; `until`: stop at the first seed that violates that invariant."""
    report = Report()
    for seed in seeds:
        report.seeds += 1
        found = run(scenario(seed, steps), decide_fn, report.stats)
        if found is not None:
            report.violations[found.invariant] += 1
            report.failing.append((seed, found))
            if found.invariant == until:
                break
    return report
