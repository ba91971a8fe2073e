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
from controller.planner.steps import PreviewStep
from controller.planner.strategy import plan_for
from controller.planner.world import Observation, ObservationError, TaskSet
from controller.testing.specs import merge, release_spec

from tests.planner.sim import BLUE, DIST, GREEN, LISTENER, NAME, NS, T0, Knobs, apply, image, version_of, world

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
    return [start, *(_step(rng) for _ in range(steps))]


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
    """The Release's preview rule exists only while the status it ends the pass with is at a preview
    step (so never at rest), one rule at most, and its target group takes no production weight: the
    header reaches a version no user is sent to yet. (A refused pass decides nothing, so changes nothing.)"""
    listener = p.intent.listener
    rules = listener.preview_of(f"{NS}/{NAME}") if listener is not None else ()
    if not rules or p.refused is not None or p.spec is None:
        return None
    assert listener is not None
    if len(rules) > 1:
        return f"{len(rules)} preview rules: {rules}"
    st = p.decision.status
    steps = plan_for(st.strategy, p.spec).steps if st.strategy is not None else ()
    at = steps[st.current_step] if 0 <= st.current_step < len(steps) else None
    if not isinstance(at, PreviewStep) or st.phase not in (Phase.PROGRESSING, Phase.PAUSED) or st.backend.canary_image is None:
        return f"a preview rule with the status {st.phase.value if st.phase else None} at step {st.current_step} ({at})"
    tg = rules[0].target_group_arn
    if tg is None or listener.weight(tg) > 0:
        return f"the preview rule forwards to {tg}, which takes {listener.weight(tg) if tg else '?'}% of production"
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


PASS_INVARIANTS: tuple[Callable[[PassRecord, dict[str, Any]], str | None], ...] = (
    at_most_two_task_sets,
    weight_only_on_ready_capacity,
    stable_keeps_the_rest,
    refused_spec_writes_nothing,
    deterministic,
    history_bounded,
    acts_only_on_what_it_saw,
    status_shows_what_serves,
    preview_route_only_during_a_preview,
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
    world = tuple(sorted((ts.image, ts.scale_percent, ts.status) for ts in live_task_sets(p.intent)))
    weights = tuple(sorted(p.intent.listener.weights.items())) if p.intent.listener is not None else ()
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
            svc = self.obs.service
            assert svc is not None
            self.obs = replace(self.obs, service=replace(svc, task_sets=tuple(
                ts if ts.status == "PRIMARY" else replace(ts, stability="STABILIZING") for ts in svc.task_sets)))
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
            self.edit({"backend": {"version": v, "image": image(v)}})
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

    def settle(self) -> Decision:
        """Faults stop: task sets settle, nothing is lost; a person unpauses and promotes what waits."""
        self.unstable, self.late = False, ()
        svc = self.obs.service
        assert svc is not None
        self.obs = replace(self.obs, service=replace(
            svc, task_sets=tuple(replace(ts, stability="STEADY_STATE") for ts in svc.task_sets)))
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
