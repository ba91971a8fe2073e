"""Planner tables: the frontend canary through CloudFront continuous deployment (staging weights
of at most 15%, pauses, analysis, promotion of the staging config, rollback by disabling the policy).
The effector side is tested in tests/aws/test_cloudfront_staging.py (with botocore's Stubber, and
over HTTP against the local moto process, which adds the calls moto lacks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from controller.api.release import ConditionType, Measurement, Phase, ReleaseStatus
from controller.planner import Requests
from controller.planner.actions import DisableStaging, PromoteStaging, SetOriginPath, SetStagingWeight
from controller.planner.conditions import find
from controller.planner.world import Observation

from tests.planner.sim import DIST, GREEN, drive, make_spec, measurement, world

FAST = {"type": "Fast"}
CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "30s"}}]}}
STEPS = {"steps": [{"setWeight": 5}, {"pause": {"duration": "1m"}}, {"setWeight": 15}, {"pause": {"duration": "1m"}}]}
METRICS = {"interval": "10s", "failureLimit": 0, "minSamples": 1,
           "metrics": [{"name": "error-rate", "prometheus": {"address": "http://p:9090", "query": "q"}, "max": 0.05}]}


def frontend(version: str, canary: dict[str, Any] | None = STEPS) -> dict[str, Any]:
    fe: dict[str, Any] = {"version": version, "cloudfront": {"distributionId": DIST, "originId": "web"}}
    if canary is not None:
        fe["canary"] = canary
    return fe


def staging_trace(run: Any) -> list[int]:
    out: list[int] = []
    for p in run.passes:
        st = p.observation.frontend.staging
        w = st.weight_percent if st is not None and st.policy_enabled else 0
        if not out or out[-1] != w:
            out.append(w)
    return out


def base(strategy: dict[str, Any] = FAST, **spec: Any) -> Any:
    return drive(make_spec("1.0.0", strategy, frontend=frontend("1.0.0"), **spec),
                     world("1.0.0", frontend_path="/releases/1.0.0"))


def rates(value: float) -> Any:
    def measure(now: datetime, obs: Observation, status: ReleaseStatus) -> Sequence[Measurement]:
        return [measurement("error-rate", value, now)]
    return measure


def test_frontend_canary_steps_staging_weights_then_promotes_staging() -> None:
    b = base()
    run = drive(make_spec("1.0.0", FAST, frontend=frontend("2.0.0")), b.observation, b.status, now=b.now)
    assert run.status.phase == Phase.SUCCEEDED
    weights = [a.weight_percent for a in run.actions if isinstance(a, SetStagingWeight)]
    assert weights == [5, 15] and all(w <= 15 for w in weights)
    assert {a.origin_path for a in run.actions if isinstance(a, SetStagingWeight)} == {"/releases/2.0.0"}
    assert staging_trace(run) == [5, 15, 0]
    kinds = [type(a) for a in run.actions]
    assert kinds.index(PromoteStaging) > kinds.index(SetStagingWeight) and kinds[-1] is DisableStaging
    assert not any(isinstance(a, SetOriginPath) for a in run.actions)  # promotion, not an atomic switch
    # Each pause is held for its duration before the next weight.
    t5 = next(p.now for p in run.passes if any(isinstance(a, SetStagingWeight) and a.weight_percent == 5
                                             for a in p.decision.actions))
    t15 = next(p.now for p in run.passes if any(isinstance(a, SetStagingWeight) and a.weight_percent == 15
                                              for a in p.decision.actions))
    assert (t15 - t5).total_seconds() >= 60
    assert run.observation.frontend.origin_path == "/releases/2.0.0"  # type: ignore[union-attr]
    assert run.status.frontend.stable_version == "2.0.0" and run.status.frontend.current_step is None
    assert "FrontendCanary" in run.events and "FrontendPromoted" in run.events


def test_frontend_canary_starts_only_after_the_backend_is_promoted() -> None:
    b = base(CANARY)
    run = drive(make_spec("2.0.0", CANARY, frontend=frontend("2.0.0")), b.observation, b.status, now=b.now)
    promoted = next(i for i, p in enumerate(run.passes) if "Promoted" in [e.reason for e in p.decision.events])
    staged = next(i for i, p in enumerate(run.passes) if any(isinstance(a, SetStagingWeight) for a in p.decision.actions))
    assert staged >= promoted and run.status.phase == Phase.SUCCEEDED


def test_failing_analysis_during_the_frontend_canary_rolls_back_the_frontend_only() -> None:
    b = base(CANARY, analysis=METRICS)
    good = drive(make_spec("1.5.0", CANARY, frontend=frontend("1.0.0"), analysis=METRICS), b.observation,
                     b.status, now=b.now, measure=rates(0.0))
    assert good.status.phase == Phase.SUCCEEDED and good.status.backend.stable_version == "1.5.0"
    spec = make_spec("1.5.0", CANARY, frontend=frontend("2.0.0"), analysis=METRICS)
    run = drive(spec, good.observation, good.status, now=good.now, measure=rates(0.4))
    st = run.status
    assert st.phase == Phase.ROLLED_BACK
    last = run.passes[-1].decision.actions
    rollback = next(p for p in run.passes if p.decision.status.phase == Phase.ROLLED_BACK).decision.actions
    assert DisableStaging(DIST) in rollback and not any(isinstance(a, (SetStagingWeight, PromoteStaging)) for a in last)
    assert run.observation.frontend.origin_path == "/releases/1.0.0"  # type: ignore[union-attr]
    assert run.observation.frontend.staging is not None and not run.observation.frontend.staging.policy_enabled  # type: ignore[union-attr]
    assert st.backend.stable_version == "1.5.0"  # the backend is not touched
    assert st.frontend.current_step is None and st.frontend.stable_version == "1.0.0"
    assert st.history[-1].result == "RolledBack" and "frontend 2.0.0" in st.history[-1].message
    healthy = find(st.conditions, ConditionType.HEALTHY)
    assert healthy is not None and healthy.reason == "AnalysisFailed"


def test_pause_until_promote_waits_for_the_request() -> None:
    b = base()
    spec = make_spec("1.0.0", FAST, frontend=frontend("2.0.0", {"steps": [{"setWeight": 10}, {"pause": {}}]}))
    held = drive(spec, b.observation, b.status, now=b.now)
    assert held.status.phase == Phase.PAUSED and held.status.frontend.current_step == 1
    assert held.status.frontend.canary_weight == 10
    done = drive(spec, held.observation, held.status, now=held.now, requests=Requests(promote="t1"))
    assert done.status.phase == Phase.SUCCEEDED
    assert done.observation.frontend.origin_path == "/releases/2.0.0"  # type: ignore[union-attr]


def test_abort_during_the_frontend_canary_disables_staging() -> None:
    b = base()
    spec = make_spec("1.0.0", FAST, frontend=frontend("2.0.0", {"steps": [{"setWeight": 10}, {"pause": {}}]}))
    held = drive(spec, b.observation, b.status, now=b.now)
    run = drive(spec, held.observation, held.status, now=held.now, requests=Requests(abort="t1"))
    assert run.passes[0].decision.actions == (DisableStaging(DIST),)
    assert run.status.phase == Phase.ROLLED_BACK and run.status.history[-1].result == "Aborted"
    assert run.observation.frontend.origin_path == "/releases/1.0.0"  # type: ignore[union-attr]


def test_without_canary_steps_the_frontend_switches_atomically() -> None:
    b = base()
    run = drive(make_spec("1.0.0", FAST, frontend=frontend("2.0.0", canary=None)), b.observation, b.status, now=b.now)
    assert [type(a) for a in run.actions] == [SetOriginPath]


def test_a_frontend_already_served_at_first_sight_is_stable_not_a_canary() -> None:
    """A Release created with the frontend CloudFront already serves: nothing to roll out for it,
    so `status` must not show it as a frontend canary (the phantom canary a new user saw)."""
    spec = make_spec("2.0.0", {"type": "Canary", "canary": {"steps": [{"setWeight": 10}, {"pause": {}}]}},
                     frontend=frontend("2.0.0"))
    run = drive(spec, world("1.0.0", frontend_path="/releases/2.0.0"),
                until=lambda p: p.decision.status.phase == Phase.PAUSED)
    assert run.status.frontend.stable_version == "2.0.0"
    assert run.status.frontend.canary_version is None


def test_a_frontend_only_change_mid_canary_does_not_restart_the_backend() -> None:
    """Backend 2.0.0 at 50% of a 20/50 canary when the frontend moves on: the backend keeps its step,
    weights and timer (no fall back to 20%), and no Event says it was superseded by itself."""
    steps = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "1m"}},
                                                    {"setWeight": 50}, {"pause": {"duration": "5m"}}]}}
    b = base(steps)
    first = drive(make_spec("2.0.0", steps, frontend=frontend("1.0.0")), b.observation, b.status, now=b.now,
                  until=lambda p: p.decision.status.current_step == 3)
    at = first.status
    assert at.current_step == 3 and first.observation.listener.weights[GREEN] == 50  # type: ignore[union-attr]
    later = drive(make_spec("2.0.0", steps, frontend=frontend("1.1.0")), first.observation, at, now=first.now)
    assert later.status.phase == Phase.SUCCEEDED
    weights = [p.weights[GREEN] for p in later.passes]
    assert min(weights[:weights.index(100)] if 100 in weights else weights) == 50, weights
    step3 = [p for p in later.passes if p.decision.status.current_step == 3]
    assert step3 and all(p.decision.status.step_started_at == at.step_started_at for p in step3)
    messages = [e.message for p in later.passes for e in p.decision.events]
    assert not any("superseded by 2.0.0" in m for m in messages), messages
    assert any("goes on at step 4/4" in m and "frontend 1.0.0 -> 1.1.0" in m for m in messages), messages
    assert later.status.revision == at.revision
    assert later.status.frontend.stable_version == "1.1.0"
