"""The simulation learns processes: two operator processes share one world and one API server.

tests/planner/simulation.py proves the planner safe for one process with faults in AWS. Here the
faults are in what runs around the planner: two processes (as two replicas, or two operators started
by hand on one namespace), each the real `Reconciler` (its memory, resourceVersion preconditions and
fencing) and the real `Leadership` (controller/operator/leadership.py) over an in-memory API server
(`ApiServer`: Leases and the Release, resourceVersions, `Date` headers, outages), deciding with the
real planner on the simulated AWS of tests/planner/sim.py. One seed draws:

- a wall-clock offset per process, up to 10 minutes either way (its monotonic clock runs true);
- pauses of either process (SIGSTOP) for a random time, between passes or in the middle of one (the
  other process runs meanwhile; the paused pass then goes on with what it decided before);
- API server outages for a random time;
- a canary rollout with pauses of random lengths.

The world's time advances in ticks of `TICK` seconds. Invariants, checked on every AWS action and
every tick:

- `one_writer`: at most one process holds a valid leadership at any moment, and every AWS action is
  made by a process that holds it (so no two processes' actions interleave);
- `monotonic`: within the rollout, the canary's traffic only goes up (no abort or rollback is drawn);
- `pause_kept`: a pause step never ends before its duration has passed in the world's time (which
  every process's clock may be off from by 10 minutes), less the `Date` header's second;
- `live`: once the faults stop, the rollout completes.
"""

from __future__ import annotations

import copy
import email.utils
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from kubernetes.client.rest import ApiException

from controller.api.release import ReleaseSpec
from controller.operator.app import PurePlanner
from controller.errors import StaleStatus
from controller.fencing import NotLeading, check
from controller.operator.leadership import Leadership, LeaseTimes
from controller.planner.actions import Action
from controller.planner.world import Observation
from controller.reconciler.driver import Reconciler
from tests.planner.sim import GREEN, NAME, NS, apply, make_spec, world

TICK = 0.5
WALL0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
TIMES = LeaseTimes(lease=15.0, renew=10.0, retry=2.0)
RESYNC = 3.0
SETTLE_TICKS = 600  # 300 s without faults: the rollout completes within this


class Down(ConnectionError):
    """The API server does not answer (an outage)."""


@dataclass
class Clock:
    t: float = 0.0  # seconds since WALL0, the world's time (every monotonic clock runs with it)

    def wall(self) -> datetime:
        return WALL0 + timedelta(seconds=self.t)


class ApiServer:
    """The parts of kube-apiserver the two processes use: one Lease, one Release, its Events."""

    def __init__(self, clock: Clock, obj: dict[str, Any]) -> None:
        self.clock, self.up, self._rv = clock, True, 1
        self.lease: Any = None
        self.obj = obj
        self.obj["metadata"]["resourceVersion"] = "1"
        self.events: list[tuple[float, str]] = []

    @staticmethod
    def _copy(lease: Any) -> Any:
        """A Lease copy that shares nothing a caller changes (deepcopy also copies the client's
        configuration in each model: most of the simulation's time)."""
        out = copy.copy(lease)
        out.metadata, out.spec = copy.copy(lease.metadata), copy.copy(lease.spec)
        return out

    def _next(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _check(self) -> None:
        if not self.up:
            raise Down("connection refused")

    def _date(self) -> dict[str, str]:
        return {"Date": email.utils.format_datetime(self.clock.wall().replace(microsecond=0), usegmt=True)}

    # CoordinationV1Api
    def read_namespaced_lease_with_http_info(self, name: str, namespace: str, **_: Any) -> tuple[Any, int, Any]:
        self._check()
        if self.lease is None:
            exc = ApiException(status=404, reason="Not Found")
            exc.headers = self._date()
            raise exc
        return self._copy(self.lease), 200, self._date()

    def create_namespaced_lease(self, namespace: str, body: Any, **_: Any) -> Any:
        self._check()
        if self.lease is not None:
            raise ApiException(status=409, reason="AlreadyExists")
        body = self._copy(body)
        body.metadata.resource_version = self._next()
        self.lease = body
        return self._copy(body)

    def replace_namespaced_lease(self, name: str, namespace: str, body: Any, **_: Any) -> Any:
        self._check()
        if self.lease is None or body.metadata.resource_version != self.lease.metadata.resource_version:
            raise ApiException(status=409, reason="Conflict")
        body = self._copy(body)
        body.metadata.resource_version = self._next()
        self.lease = body
        return self._copy(body)

    # StatusSink
    def current(self, namespace: str, name: str) -> dict[str, Any]:
        self._check()
        return self.obj  # replaced whole on each write, never changed in place

    def replace_status(self, namespace: str, name: str, status: dict[str, Any], uid: str | None = None,
                       resource_version: str | None = None) -> str:
        self._check()
        if resource_version and resource_version != self.obj["metadata"]["resourceVersion"]:
            raise StaleStatus(namespace, name)
        self.obj = {**self.obj, "status": status,
                    "metadata": {**self.obj["metadata"], "resourceVersion": self._next()}}
        return str(self.obj["metadata"]["resourceVersion"])

    def event(self, ref: Any, reason: str, message: str, type_: str = "Normal") -> None:
        self._check()
        self.events.append((self.clock.t, reason))


@dataclass
class Violation:
    invariant: str
    at: float
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant} at t={self.at:.1f}s: {self.detail}"


@dataclass
class World:
    """The simulated AWS (tests/planner/sim.py) with a log of who changed it, and when."""

    obs: Observation
    writes: list[tuple[float, str, str]] = field(default_factory=list)  # (t, process, action kind)


class Process:
    def __init__(self, name: str, offset: float, clock: Clock, api: ApiServer, aws: World, sim: "Sim") -> None:
        self.name, self.offset, self.clock, self.api, self.aws, self.sim = name, offset, clock, api, aws, sim
        self.lead = Leadership(None, "operator", "leader", me=name, times=TIMES, clock=lambda: clock.t,
                               wall=lambda: clock.wall() + timedelta(seconds=offset))
        self.lead._leases = api  # type: ignore[assignment]  # the in-memory API server
        self.rec = Reconciler(observer=self, applier=self.apply, planner=PurePlanner(), sink=api,  # type: ignore[arg-type]
                              clock=self.lead.server_now, fence=self.lead)
        self.body = api.obj  # what its watch last delivered
        self.paused_until = -1.0
        self.next_try = 0.0
        self.next_pass = 0.0
        self.pause_mid_pass = 0.0  # > 0: the next pass stops this long between deciding and acting

    # ObserverLike
    def observe(self, key: Any, spec: ReleaseSpec, fresh: bool) -> Observation:
        return self.aws.obs

    def observe_many(self, items: Any) -> dict[Any, Observation]:
        return {key: self.aws.obs for key, _ in items}

    def forget(self, key: Any) -> None:
        pass

    # Applier: the fence is checked before each request, as controller/fencing.aws_hook does.
    def apply(self, actions: Any, observation: Observation) -> None:
        if actions and self.pause_mid_pass > 0:
            stopped, self.pause_mid_pass = self.pause_mid_pass, 0.0
            self.sim.run_others(self, stopped)
        for action in actions:
            check(self.lead)
            self.sim.on_write(self, action)
            self.aws.obs = apply(self.aws.obs, [action])

    def tick(self) -> None:
        t = self.clock.t
        if t < self.paused_until:
            return
        if t >= self.next_try:
            self.lead.try_once()
            self.next_try = t + TIMES.retry
        if self.api.up and self.sim.rng.random() < 0.8:  # the watch delivers, now and then late
            self.body = self.api.obj
        if t < self.next_pass:
            return
        try:
            outcome = self.rec.reconcile(self.body)
            delay = outcome.requeue_after
        except NotLeading:
            delay = TIMES.retry
        except (Down, StaleStatus):
            delay = 1.0
        self.next_pass = t + min(delay if delay is not None else RESYNC, RESYNC)


class Sim:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        rng = self.rng
        self.clock = Clock()
        pauses = [rng.choice((2, 5, 10, 20, 30)) for _ in range(2)]
        self.pauses = pauses
        strategy = {"type": "Canary", "canary": {"steps": [
            {"setWeight": 20}, {"pause": {"duration": f"{pauses[0]}s"}},
            {"setWeight": 50}, {"pause": {"duration": f"{pauses[1]}s"}}, {"setWeight": 80}]}}
        spec = make_spec("2.0.0", strategy, progressDeadline="1h")
        obj = {"metadata": {"namespace": NS, "name": NAME, "uid": "u1", "generation": 1},
               "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True)}
        self.api = ApiServer(self.clock, obj)
        self.aws = World(world("1.0.0"))
        self.procs = [Process(n, rng.uniform(-600, 600), self.clock, self.api, self.aws, self)
                      for n in ("a", "b")]
        self.violations: list[Violation] = []
        self.faults_until = rng.uniform(60, 120)
        self._weights: list[tuple[float, int]] = [(0.0, 0)]
        self._nesting = 0

    # --- invariants
    def _violate(self, invariant: str, detail: str) -> None:
        self.violations.append(Violation(invariant, self.clock.t, detail))

    def _valid(self) -> list[str]:
        return [p.name for p in self.procs if p.lead.leading]

    def on_write(self, proc: Process, action: Action) -> None:
        valid = self._valid()
        if valid != [proc.name]:
            self._violate("one_writer", f"{proc.name} wrote {type(action).__name__} while {valid or 'nobody'} led")
        if self.aws.writes and self.aws.writes[-1][1] != proc.name and self.aws.writes[-1][0] == self.clock.t:
            self._violate("one_writer", f"{proc.name} and {self.aws.writes[-1][1]} wrote at the same moment")
        self.aws.writes.append((self.clock.t, proc.name, type(action).__name__))

    def _observe_weights(self) -> None:
        listener = self.aws.obs.listener
        weight = int(listener.weights.get(GREEN, 0)) if listener is not None else 0
        last_t, last = self._weights[-1]
        if weight == last:
            return
        if weight < last and weight != 0:
            self._violate("monotonic", f"the canary's weight went back from {last} to {weight}")
        if weight < last and weight == 0 and last != 100:
            self._violate("monotonic", f"the canary's traffic went back to stable from {last}")
        # A pause after the weights 20 and 50: the next weight comes no sooner than its duration.
        for before, pause in ((20, self.pauses[0]), (50, self.pauses[1])):
            if last == before and weight > before:
                started = next(t for t, w in self._weights if w == before)
                if self.clock.t - started < pause - 1.0 - TICK:
                    self._violate("pause_kept", f"the {pause}s pause after {before}% ended after "
                                                f"{self.clock.t - started:.1f}s")
        self._weights.append((self.clock.t, weight))

    def _check_tick(self) -> None:
        if len(self._valid()) > 1:
            self._violate("one_writer", f"both lead: {self._valid()}")
        self._observe_weights()

    # --- faults
    def _faults(self) -> None:
        rng, t = self.rng, self.clock.t
        if t >= self.faults_until:
            self.api.up = True
            return
        if self.api.up and rng.random() < 0.01:
            self.api.up = False
            self._api_back = t + rng.uniform(1, 40)
        elif not self.api.up and t >= getattr(self, "_api_back", 0):
            self.api.up = True
        for p in self.procs:
            if t >= p.paused_until and rng.random() < 0.01:
                if rng.random() < 0.5:
                    p.paused_until = t + rng.uniform(1, 40)
                else:
                    p.pause_mid_pass = rng.uniform(1, 40)

    # --- time
    def _tick(self) -> None:
        self._faults()
        for p in self.rng.sample(self.procs, len(self.procs)):
            p.tick()
            self._observe_weights()
        self._check_tick()
        self.clock.t += TICK

    def run_others(self, paused: Process, seconds: float) -> None:
        """`paused` stops mid-pass for `seconds`: the world and the other process go on."""
        if self._nesting:
            return
        self._nesting += 1
        try:
            end = self.clock.t + seconds
            while self.clock.t < end:
                self._faults()
                for p in self.procs:
                    if p is not paused:
                        p.tick()
                        self._observe_weights()
                self._check_tick()
                self.clock.t += TICK
        finally:
            self._nesting -= 1

    def done(self) -> bool:
        status = self.api.obj.get("status") or {}
        return (status.get("phase") == "Succeeded" and (status.get("backend") or {}).get("stableVersion") == "2.0.0"
                and status.get("observedGeneration") == 1)

    def run(self) -> list[Violation]:
        limit = self.faults_until + SETTLE_TICKS * TICK
        while self.clock.t < limit and not self.violations:
            self._tick()
            if self.clock.t > self.faults_until and self.done():
                break
        if not self.violations and not self.done():
            self._violate("live", f"the rollout did not complete {SETTLE_TICKS * TICK:.0f}s after the faults "
                                  f"stopped; status {self.api.obj.get('status', {}).get('phase')}")
        return self.violations


@dataclass
class Report:
    seeds: int = 0
    failures: dict[int, str] = field(default_factory=dict)
    writes: int = 0
    handovers: int = 0
    fenced: int = 0


def run_seeds(seeds: range, progress: Any = None) -> Report:
    report = Report()
    for seed in seeds:
        if progress is not None and report.seeds and report.seeds % 100 == 0:
            progress(report)
        sim = Sim(seed)
        violations = sim.run()
        report.seeds += 1
        report.writes += len(sim.aws.writes)
        report.handovers += sum(1 for a, b in zip(sim.aws.writes, sim.aws.writes[1:]) if a[1] != b[1])
        if violations:
            report.failures[seed] = str(violations[0])
    return report


if __name__ == "__main__":  # python -m tests.planner.sim_processes START COUNT
    import logging
    import sys
    import time

    logging.disable(logging.CRITICAL)
    start, count = int(sys.argv[1]), int(sys.argv[2])
    began = time.monotonic()
    def progress(r: Report) -> None:
        print(f"  {r.seeds} seeds from {start}: {len(r.failures)} failed, {r.writes} AWS actions, "
              f"{r.handovers} changes of writer, {time.monotonic() - began:.0f}s", flush=True)

    rep = run_seeds(range(start, start + count), progress)
    print(f"seeds {start}..{start + count - 1}: {rep.seeds} run, {len(rep.failures)} failed, {rep.writes} AWS "
          f"actions, {rep.handovers} changes of writer, {time.monotonic() - began:.0f}s")
    for s, v in list(rep.failures.items())[:20]:
        print(f"  seed {s}: {v}")
