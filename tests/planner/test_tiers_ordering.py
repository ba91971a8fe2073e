"""Planner tables: the backend moves before the frontend, a rollback goes the other way, and the
compatibility gate reads the backend version that serves traffic, not the spec."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from controller.api.release import ConditionType, Phase, ReleaseSpec
from controller.planner import decide
from controller.planner.actions import (
    DeleteTaskSet,
    EnsureTaskSet,
    PublishFlags,
    ScaleTaskSet,
    SetListenerWeights,
    SetOriginPath,
    SetPrimaryTaskSet,
)
from controller.planner.conditions import find

from tests.planner.sim import BLUE, DIST, GREEN, Knobs, Run, ctx, drive, image, make_spec, measurement, world

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}}]}}
METRICS = {"interval": "10s", "failureLimit": 0, "minSamples": 1,
           "metrics": [{"name": "error-rate", "prometheus": {"address": "http://p:9090", "query": "q"}, "max": 0.05}]}


def frontend(version: str, **extra: Any) -> dict[str, Any]:
    return {"version": version, "cloudfront": {"distributionId": DIST, "originId": "web"}, **extra}


def first(run: Any, kind: type) -> int:
    return next(i for i, p in enumerate(run.passes) if any(isinstance(a, kind) for a in p.decision.actions))


def test_both_tiers_change_backend_first_then_flags_then_frontend() -> None:
    base = drive(make_spec("1.0.0", CANARY, frontend=frontend("1.0.0")), world("1.0.0", frontend_path="/releases/1.0.0"))
    spec = make_spec("2.0.0", CANARY, frontend=frontend("2.0.0", requiresBackend=">=2.0.0"),
                     featureFlags={"new_chat": True})
    run = drive(spec, base.observation, base.status, now=base.now)
    assert run.status.phase == Phase.SUCCEEDED
    created, weighted, primary = first(run, EnsureTaskSet), first(run, SetListenerWeights), first(run, SetPrimaryTaskSet)
    flags, origin = first(run, PublishFlags), first(run, SetOriginPath)
    assert created <= weighted < primary < flags < origin
    # While the backend was a canary, the frontend never moved.
    for p in run.passes[:primary + 1]:
        assert p.observation.frontend is not None and p.observation.frontend.origin_path == "/releases/1.0.0"
    assert run.observation.frontend.origin_path == "/releases/2.0.0"  # type: ignore[union-attr]
    assert run.status.history[-1].backend_version == "2.0.0" and run.status.history[-1].frontend_version == "2.0.0"


def promoted_with_frontend() -> tuple[ReleaseSpec, Run]:
    """Backend and frontend 1.0.0 -> 2.0.0 through a healthy canary: the spec and the run that promoted it."""
    base = drive(make_spec("1.0.0", CANARY, frontend=frontend("1.0.0"), analysis=METRICS),
                 world("1.0.0", frontend_path="/releases/1.0.0"))
    spec = make_spec("2.0.0", CANARY, frontend=frontend("2.0.0"), analysis=METRICS)
    good = drive(spec, base.observation, base.status, now=base.now,
                 measure=lambda now, obs, st: [measurement("error-rate", 0.0, now)],
                 until=lambda p: p.decision.status.phase == Phase.SUCCEEDED)
    return spec, good


def test_rollback_after_promotion_moves_the_frontend_back_before_the_backend() -> None:
    spec, good = promoted_with_frontend()
    assert good.observation.frontend.origin_path == "/releases/2.0.0"  # type: ignore[union-attr]
    bad = drive(spec, good.observation, good.status, now=good.now + timedelta(seconds=20),
                measure=lambda now, obs, st: [measurement("error-rate", 0.5, now)],
                until=lambda p: p.decision.status.phase == Phase.ROLLED_BACK)
    kinds = [type(a) for a in bad.passes[-1].decision.actions]
    assert kinds[0] is SetOriginPath, kinds
    assert SetListenerWeights in kinds and kinds.index(SetOriginPath) < kinds.index(SetListenerWeights)
    origin = bad.passes[-1].decision.actions[0]
    assert isinstance(origin, SetOriginPath) and origin.origin_path == "/releases/1.0.0"
    assert bad.observation.listener.weights == {BLUE: 100, GREEN: 0}  # type: ignore[union-attr]
    assert bad.status.frontend.stable_version == "1.0.0" and bad.status.backend.stable_version == "1.0.0"


def test_backend_change_outside_the_live_frontends_range_is_refused_without_any_action() -> None:
    fe = frontend("1.2.0", requiresBackend=">=1.0.0,<2.0.0")
    base = drive(make_spec("1.0.0", CANARY, frontend=fe), world("1.0.0", frontend_path="/releases/1.2.0"))
    for later in (0, 30, 600):
        d = decide(make_spec("2.0.0", CANARY, frontend=fe), base.status, base.observation,
                   ctx(base.now + timedelta(seconds=later)))
        assert d.actions == ()
        c = find(d.status.conditions, ConditionType.COMPATIBLE)
        assert c is not None and (c.status, c.reason) == ("False", "IncompatibleBackend")
        assert "2.0.0" in c.message and "1.2.0" in c.message and ">=1.0.0,<2.0.0" in c.message
        assert d.status.revision == base.status.revision and d.requeue_after is not None


def test_compatibility_is_checked_against_the_backend_serving_not_the_spec() -> None:
    """The status says 2.0.0 is stable, but AWS shows 1.0.0 taking the traffic: the frontend waits."""
    base = drive(make_spec("2.0.0", {"type": "Fast"}, frontend=frontend("1.0.0")),
                 world("2.0.0", frontend_path="/releases/1.0.0"))
    spec = make_spec("2.0.0", {"type": "Fast"}, frontend=frontend("2.0.0", requiresBackend=">=2.0.0"))
    lying = replace(base.observation, backend_version_serving="1.0.0")
    d = decide(spec, base.status, lying, ctx(base.now))
    assert not any(isinstance(a, SetOriginPath) for a in d.actions)
    c = find(d.status.conditions, ConditionType.COMPATIBLE)
    assert c is not None and c.status == "False" and "backend serving is 1.0.0" in c.message
    honest = decide(spec, base.status, base.observation, ctx(base.now))
    assert any(isinstance(a, SetOriginPath) for a in honest.actions)


def test_failed_backend_canary_never_touches_the_frontend() -> None:
    base = drive(make_spec("1.0.0", CANARY, frontend=frontend("1.0.0"), analysis=METRICS),
                 world("1.0.0", frontend_path="/releases/1.0.0"))
    spec = make_spec("2.0.0", CANARY, frontend=frontend("2.0.0"), analysis=METRICS)
    run = drive(spec, base.observation, base.status, now=base.now,
                measure=lambda now, obs, st: [measurement("error-rate", 0.5, now)])
    assert run.status.phase == Phase.ROLLED_BACK
    assert not any(isinstance(a, SetOriginPath) for a in run.actions)
    assert run.observation.frontend.origin_path == "/releases/1.0.0"  # type: ignore[union-attr]
    assert [t.image for t in run.observation.service.task_sets] == [image("1.0.0")]  # type: ignore[union-attr]
    assert not any(isinstance(a, (DeleteTaskSet, ScaleTaskSet)) for a in run.passes[-1].decision.actions)


def test_a_rollback_origin_switch_that_did_not_land_is_asked_again() -> None:
    """The rollback asked CloudFront for the previous frontend and the write was lost (a pass died,
    a throttled call ran out of retries): the RolledBack Release keeps asking until AWS shows it."""
    spec, good = promoted_with_frontend()
    lost = Knobs(lose=lambda a: isinstance(a, SetOriginPath))
    bad = drive(spec, good.observation, good.status, now=good.now + timedelta(seconds=20),
                measure=lambda now, obs, st: [measurement("error-rate", 0.5, now)], knobs=lost,
                until=lambda p: p.decision.status.phase == Phase.ROLLED_BACK)
    assert bad.observation.frontend.origin_path == "/releases/2.0.0"  # type: ignore[union-attr]

    held = decide(spec, bad.status, bad.observation, ctx(bad.now + timedelta(seconds=2)))
    origins = [a for a in held.actions if isinstance(a, SetOriginPath)]
    assert [a.origin_path for a in origins] == ["/releases/1.0.0"]
    assert held.requeue_after is not None  # and it looks again until the switch shows
    after = drive(spec, bad.observation, bad.status, now=bad.now + timedelta(seconds=2))
    assert after.observation.frontend.origin_path == "/releases/1.0.0"  # type: ignore[union-attr]
    assert after.status.phase == Phase.ROLLED_BACK
    # Once AWS shows it, holding costs nothing.
    assert not any(isinstance(a, SetOriginPath) for a in after.passes[-1].decision.actions)
    # A hand-made origin (neither version) is not this rollback's business.
    elsewhere = replace(after.observation, frontend=replace(after.observation.frontend, origin_path="/releases/0.9.0"))  # type: ignore[type-var]
    assert not any(isinstance(a, SetOriginPath) for a in decide(spec, after.status, elsewhere, ctx(after.now)).actions)


def test_a_switch_whose_pass_died_before_its_invalidation_is_invalidated_by_the_next_pass() -> None:
    """UpdateDistribution landed, then the pass died before CreateInvalidation and before writing
    status. The next pass sees the new path already live; it asks for the switch again, which the
    effector turns into the missing invalidation (once per switch, by caller reference)."""
    base = drive(make_spec("1.0.0", {"type": "Fast"}, frontend=frontend("1.0.0")),
                 world("1.0.0", frontend_path="/releases/1.0.0"))
    spec = make_spec("2.0.0", {"type": "Fast"}, frontend=frontend("2.0.0"))
    run = drive(spec, base.observation, base.status, now=base.now,
                until=lambda p: any(isinstance(a, SetOriginPath) for a in p.decision.actions))
    assert run.observation.frontend.origin_path == "/releases/2.0.0"  # type: ignore[union-attr]
    status_before = run.passes[-2].decision.status  # what the API server still holds

    died = decide(spec, status_before, run.observation, ctx(run.now + timedelta(seconds=1)))
    (again,) = [a for a in died.actions if isinstance(a, SetOriginPath)]
    assert again.origin_path == "/releases/2.0.0" and "/index.html" in again.invalidate_paths
    assert died.status.frontend.stable_version == "2.0.0"

    # The pass that switched finished: the next one only records the frontend as live.
    finished = decide(spec, run.status, run.observation, ctx(run.now + timedelta(seconds=1)))
    assert not any(isinstance(a, SetOriginPath) for a in finished.actions)
    assert finished.status.frontend.stable_version == "2.0.0" and finished.status.frontend.origin_requested is None
