"""Planner tables: a flags-only change is a release of its own, and flipping flags back is the
first step of a rollback after a flag change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Sequence

from controller.api.release import Measurement, Phase, ReleaseStatus
from controller.planner.actions import PublishFlags, SetListenerWeights, SetOriginPath
from controller.planner.world import Observation

from tests.planner.sim import DIST, drive, make_spec, measurement, world

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}}]}}
METRICS = {"interval": "10s", "failureLimit": 0, "minSamples": 1,
           "metrics": [{"name": "error-rate", "prometheus": {"address": "http://p:9090", "query": "q"}, "max": 0.05}]}
FE = {"version": "1.0.0", "cloudfront": {"distributionId": DIST, "originId": "web", "bucket": "web-bucket"}}


def rates(value: float) -> Any:
    def measure(now: datetime, obs: Observation, status: ReleaseStatus) -> Sequence[Measurement]:
        return [measurement("error-rate", value, now)]
    return measure


def settled(flags: dict[str, Any], **spec: Any) -> Any:
    return drive(make_spec("1.0.0", CANARY, frontend=FE, featureFlags=flags, **spec),
                 world("1.0.0", frontend_path="/releases/1.0.0"))


def test_flags_only_change_publishes_to_ssm_and_the_frontend_bucket_and_nothing_else() -> None:
    base = settled({"new_chat": False})
    spec = make_spec("1.0.0", CANARY, frontend=FE, featureFlags={"new_chat": True, "ai": {"enabled": True, "rolloutPercent": 25}})
    run = drive(spec, base.observation, base.status, now=base.now)
    (publish,) = run.actions
    assert isinstance(publish, PublishFlags)
    assert publish.bucket == "web-bucket" and publish.key == "flags.json" and publish.distribution_id == DIST
    assert dict(publish.flags) == {"ai": {"enabled": True, "rolloutPercent": 25}, "new_chat": True}
    assert run.observation.service == base.observation.service  # no task set made, scaled or moved
    assert run.observation.listener == base.observation.listener
    assert run.observation.frontend == base.observation.frontend
    assert run.status.phase == Phase.SUCCEEDED and run.status.revision == base.status.revision + 1
    entry = run.status.history[-1]
    assert entry.result == "Succeeded" and entry.flags_hash == run.status.flags_hash != base.status.flags_hash
    assert run.status.rollback_flags == {"new_chat": False}


def test_analysis_failing_after_a_flag_change_flips_the_flags_back_first() -> None:
    base = settled({"new_chat": False}, analysis=METRICS)
    spec = make_spec("1.0.0", CANARY, frontend=FE, featureFlags={"new_chat": True}, analysis=METRICS)
    published = drive(spec, base.observation, base.status, now=base.now, measure=rates(0.0),
                      until=lambda p: p.decision.status.phase == Phase.SUCCEEDED)
    assert published.observation.flags == {"new_chat": True}
    run = drive(spec, published.observation, published.status, now=published.now + timedelta(seconds=10),
                measure=rates(0.5))
    rb = next(p for p in run.passes if p.decision.status.phase == Phase.ROLLED_BACK)
    assert rb.decision.actions[0] == PublishFlags(
        "/release-controller/production/pratiko/flags", {"new_chat": False}, bucket="web-bucket", distribution_id=DIST)
    assert run.observation.flags == {"new_chat": False}
    assert not any(isinstance(a, (SetListenerWeights, SetOriginPath)) for a in run.actions)
    assert run.status.phase == Phase.ROLLED_BACK and "flags" in run.status.message
    assert "FlagsRolledBack" in run.events
    # Held: the spec's flags are not published again until a new spec or retry.
    later = drive(spec, run.observation, run.status, now=run.now + timedelta(minutes=5))
    assert later.actions == [] and later.observation.flags == {"new_chat": False}


def test_backend_and_flags_change_rollback_flips_flags_before_traffic() -> None:
    base = settled({"new_chat": False}, analysis=METRICS)
    spec = make_spec("2.0.0", CANARY, frontend=FE, featureFlags={"new_chat": True}, analysis=METRICS)
    good = drive(spec, base.observation, base.status, now=base.now, measure=rates(0.0),
                 until=lambda p: p.decision.status.phase == Phase.SUCCEEDED)
    run = drive(spec, good.observation, good.status, now=good.now + timedelta(seconds=10), measure=rates(0.5),
                until=lambda p: p.decision.status.phase == Phase.ROLLED_BACK)
    kinds = [type(a) for a in run.passes[-1].decision.actions]
    assert kinds[0] is PublishFlags and SetListenerWeights in kinds
    assert run.observation.flags == {"new_chat": False}
    assert run.status.backend.stable_version == "1.0.0"
