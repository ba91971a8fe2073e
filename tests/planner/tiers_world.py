"""The planner simulator (`sim.py`) extended with what the tiers need: CloudFront continuous
deployment (staging copy, policy weight, promotion, disabling) and the API-contract gate's result,
which the reconciler would find over the network and hand in through `Context.contract`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable, Iterable, Sequence

from controller.api.release import Measurement, ReleaseSpec, ReleaseStatus
from controller.planner import Context, Requests, analysis_due, decide
from controller.planner.actions import Action, DisableStaging, PromoteStaging, SetStagingWeight
from controller.planner.decision import ContractCheck
from controller.planner.tiers import contract_target
from controller.planner.world import Frontend, Observation, StagingDistribution

from tests.planner import sim
from tests.planner.sim import NAME, NS, T0, Knobs, Measure, Pass, Run

STAGING = "E2STAGING"

# A contract answer for the version the planner asks about: problems by backend version.
Contracts = Callable[[str], ContractCheck]


def contracts(problems: dict[str, Sequence[str]] | None = None, error: str | None = None) -> Contracts:
    def check(version: str) -> ContractCheck:
        return ContractCheck(version, tuple((problems or {}).get(version, ())), error)
    return check


def apply(obs: Observation, actions: Iterable[Action], knobs: Knobs | None = None) -> Observation:
    """`sim.apply`, plus the continuous-deployment actions as CloudFront would carry them out."""
    rest: list[Action] = []
    for a in actions:
        if isinstance(a, (SetStagingWeight, PromoteStaging, DisableStaging)):
            obs = sim.apply(obs, rest, knobs) if rest else obs
            rest = []
            obs = _staging(obs, a)
        else:
            rest.append(a)
    return sim.apply(obs, rest, knobs) if rest else obs


def _staging(obs: Observation, a: Action) -> Observation:
    fe = obs.frontend
    assert fe is not None
    staging = fe.staging
    if isinstance(a, SetStagingWeight):
        assert 0 <= a.weight_percent <= 15
        staging = StagingDistribution(STAGING, a.origin_path, "policy-1", True, a.weight_percent)
    elif isinstance(a, PromoteStaging):
        if staging is not None:
            fe = replace(fe, origin_path=staging.origin_path)
    elif isinstance(a, DisableStaging):
        if staging is not None:
            staging = replace(staging, policy_enabled=False)
    return replace(obs, frontend=replace(fe, staging=staging))


def with_staging_frontend(obs: Observation) -> Observation:
    """A world whose frontend has never used continuous deployment (no policy attached)."""
    assert obs.frontend is not None
    return replace(obs, frontend=Frontend(obs.frontend.distribution_id, obs.frontend.origin_id, obs.frontend.origin_path))


def drive(
    spec: ReleaseSpec,
    obs: Observation,
    status: ReleaseStatus | None = None,
    now: datetime = T0,
    requests: Requests = Requests(),
    measure: Measure | None = None,
    contract: Contracts | None = None,
    max_passes: int = 300,
    until: Callable[[Pass], bool] | None = None,
    between: Callable[[Observation, Pass], Observation] | None = None,
    exact: bool = False,
) -> Run:
    """`sim.drive` with the staging world and the contract gate; `between` edits the world between
    passes (a person changing AWS by hand). `exact`: run `max_passes` passes, at rest or not."""
    run = Run(spec=spec, status=status or ReleaseStatus(), observation=obs, now=now)
    for _ in range(max_passes):
        measurements: Sequence[Measurement] = ()
        if measure is not None and analysis_due(spec, run.status, run.now):
            measurements = measure(run.now, run.observation, run.status)
        checked = None
        version = contract_target(spec, run.status, run.observation)
        if contract is not None and version is not None:
            checked = contract(version)
        ctx = Context(namespace=NS, name=NAME, generation=1, now=run.now, requests=requests,
                      measurements=tuple(measurements), contract=checked)
        d = decide(spec, run.status, run.observation, ctx)
        run.observation = apply(run.observation, d.actions)
        run.status = d.status
        p = Pass(now=run.now, decision=d, observation=run.observation)
        run.passes.append(p)
        if until is not None and until(p):
            break
        if between is not None:
            run.observation = between(run.observation, p)
        if d.requeue_after is None:
            break
        run.now = run.now + timedelta(seconds=d.requeue_after)
    else:
        if exact:
            return run
        raise AssertionError(f"no rest after {max_passes} passes; last status {run.status.phase} {run.status.message}")
    return run
