"""Several ECS services in one Release (issue many-services, docs/many-services.md section 2): the
tier walks its steps wave by wave and in lockstep, promotes wave by wave, goes back in reverse
order, and canaries a worker by the share of its tasks. Driven on the fake world (`sim.tier_world`):
api; mcp after api; a worker after api with no traffic."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from controller.api.reasons import Reason
from controller.api.release import Phase
from controller.planner import Requests, decide
from controller.planner.actions import (
    Action,
    EnsurePreviewRoute,
    EnsureTaskSet,
    RemovePreviewRoute,
    ScaleTaskSet,
    SetListenerWeights,
)
from controller.planner.world import Observation, PreviewRule

from tests.planner.sim import (
    NAME, NS, T0, Knobs, Pass, Run, ctx, drive, measurement, tier_arns, tier_image, tier_spec, tier_world,
)

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}},
                                                 {"setWeight": 50}, {"pause": {}}]}}


def weight(obs: Observation, name: str) -> int:
    """Percent of service `name`'s traffic on its canary (green) group; a worker: its canary's share of tasks."""
    view = obs.services[name]
    if view.listener is not None:
        return view.listener.weight(tier_arns(name)[2])
    assert view.service is not None
    sets = view.service.task_sets
    new = sum(t.scale_percent for t in sets if t.image and t.image.endswith(":2.0.0"))
    total = sum(t.scale_percent for t in sets)
    return round(100 * new / total) if total else 0


def at_pause() -> Run:
    """The tier settled at 1.0.0, then rolled out to 2.0.0 until the indefinite pause (step 4)."""
    settled = drive(tier_spec("1.0.0", CANARY), tier_world("1.0.0"))
    assert settled.status.phase == Phase.SUCCEEDED
    return drive(tier_spec("2.0.0", CANARY), settled.observation, settled.status, now=settled.now)


def settled_then(**kw: Any) -> Run:
    settled = drive(tier_spec("1.0.0", CANARY), tier_world("1.0.0"))
    return drive(tier_spec("2.0.0", CANARY), settled.observation, settled.status, now=settled.now, **kw)


def slow(listener_name: str, until: Any, since: Any = T0) -> Knobs:
    """A world in which `listener_name`'s weight changes do not land from `since` to `until` (a slow ALB)."""
    listener = tier_arns(listener_name)[0]
    clock = {"now": T0}

    def lose(a: Action) -> bool:
        return (isinstance(a, SetListenerWeights) and a.listener_arn == listener
                and since <= clock["now"] < until)
    knobs = Knobs(lose=lose)
    knobs.clock = clock  # type: ignore[attr-defined]
    return knobs


def ticking(knobs: Knobs) -> Any:
    def between(obs: Observation, p: Pass) -> Observation:
        knobs.clock["now"] = p.now  # type: ignore[attr-defined]
        return obs
    return between


def test_the_tier_walks_its_steps_and_stops_at_the_pause_with_every_service_at_the_step() -> None:
    run = at_pause()
    assert run.status.phase == Phase.PAUSED and run.status.current_step == 3
    assert {n: weight(run.observation, n) for n in ("api", "mcp", "worker")} == {"api": 50, "mcp": 50, "worker": 50}
    entries = {e.name: e for e in run.status.backend.services}
    assert {n: e.canary_weight for n, e in entries.items()} == {"api": 50, "mcp": 50, "worker": 50}
    assert entries["mcp"].canary_image is not None and entries["mcp"].canary_image.endswith("pratiko-mcp:2.0.0")
    assert run.status.backend.canary_weight == 50


def test_lockstep_the_pause_timer_starts_only_once_every_service_shows_the_steps_weight() -> None:
    # mcp's listener does not take its weight for a minute: api (and the worker) are at 20% long before.
    late = T0 + timedelta(minutes=5)
    settled = drive(tier_spec("1.0.0", CANARY), tier_world("1.0.0"))
    knobs = slow("mcp", settled.now + timedelta(seconds=60))
    run = drive(tier_spec("2.0.0", CANARY), settled.observation, settled.status, now=settled.now, knobs=knobs,
                between=ticking(knobs), until=lambda p: p.decision.status.current_step >= 2 or p.now > late)
    mcp_landed = next(p.now for p in run.passes if weight(p.observation, "mcp") == 20)
    api_landed = next(p.now for p in run.passes if weight(p.observation, "api") == 20)
    assert mcp_landed - api_landed >= timedelta(seconds=55)  # the slow listener held mcp back
    for p in run.passes:
        st = p.decision.status
        if st.current_step == 1:  # the 30s pause: its timer started once mcp showed its 20%
            assert st.step_started_at is not None and st.step_started_at >= mcp_landed
            assert weight(p.observation, "api") == weight(p.observation, "mcp") == 20
    pause_began = next(p.decision.status.step_started_at for p in run.passes if p.decision.status.current_step == 1)
    left_pause = next(p.now for p in run.passes if p.decision.status.current_step == 2)
    assert pause_began is not None and left_pause - pause_began >= timedelta(seconds=30)
    assert left_pause - api_landed >= timedelta(seconds=85)  # 60s waiting for mcp, then the whole pause


def test_order_no_service_takes_a_steps_weight_before_the_one_it_comes_after() -> None:
    # api's listener takes each weight change only at the third time of asking: mcp and the worker
    # wait for it at every step and at promotion.
    timed = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}},
                                                    {"setWeight": 50}, {"pause": {"duration": "30s"}}]}}
    api_listener = tier_arns("api")[0]
    asked = {"n": 0}

    def lose(a: Action) -> bool:
        if isinstance(a, SetListenerWeights) and a.listener_arn == api_listener:
            asked["n"] += 1
            return asked["n"] % 3 != 0
        return False
    settled = drive(tier_spec("1.0.0", timed), tier_world("1.0.0"))
    run = drive(tier_spec("2.0.0", timed), settled.observation, settled.status, now=settled.now,
                knobs=Knobs(lose=lose), max_passes=400)
    assert run.status.phase == Phase.SUCCEEDED
    saw_wait = False
    for p in run.passes:
        api = weight(p.observation, "api")
        for follower in ("mcp", "worker"):
            assert weight(p.observation, follower) <= max(api, 0), (p.now, follower)
        follower_sets = [t for n in ("mcp", "worker") for t in p.observation.services[n].service.task_sets]  # type: ignore[union-attr]
        if api == 0 and len(follower_sets) == 2:
            saw_wait = True  # api not at the first step yet: no canary task set of mcp or the worker
    assert saw_wait
    first_follower_set = next(i for i, p in enumerate(run.passes) for a in p.decision.actions
                              if isinstance(a, EnsureTaskSet) and a.service in ("mcp", "worker"))
    first_api_weight = next(i for i, p in enumerate(run.passes) if weight(p.observation, "api") == 20)
    assert first_follower_set > first_api_weight


def test_promotion_goes_wave_by_wave_and_ends_with_every_service_on_the_new_version() -> None:
    paused = at_pause()
    run = drive(paused.spec, paused.observation, paused.status, now=paused.now, requests=Requests(promote="p"))
    assert run.status.phase == Phase.SUCCEEDED and run.status.backend.stable_version == "2.0.0"
    for p in run.passes:
        assert weight(p.observation, "mcp") <= weight(p.observation, "api")
    for name in ("api", "mcp", "worker"):
        sets = run.observation.services[name].service.task_sets  # type: ignore[union-attr]
        assert [(t.image or "").rsplit(":", 1)[1] for t in sets] == ["2.0.0"] and sets[0].status == "PRIMARY"
    entries = {e.name: e for e in run.status.backend.services}
    assert entries["api"].stable_target_group_arn == tier_arns("api")[2]  # the groups swapped roles
    assert entries["worker"].previous_image is not None and entries["worker"].previous_image.endswith(":1.0.0")


def back_in_reverse(run: Run) -> None:
    """Over the rollback: api keeps the new version at least as long as mcp and the worker do."""
    start = next(i for i, p in enumerate(run.passes) if p.decision.status.phase in (Phase.ROLLED_BACK, Phase.FAILED))
    for p in run.passes[start:]:
        api = weight(p.observation, "api")
        assert weight(p.observation, "mcp") <= api or api > 0 and weight(p.observation, "mcp") > 0, p.now
        if api == 0:
            assert weight(p.observation, "mcp") == 0 and weight(p.observation, "worker") == 0, p.now
    for name in ("api", "mcp", "worker"):
        sets = run.observation.services[name].service.task_sets  # type: ignore[union-attr]
        assert [(t.image or "").rsplit(":", 1)[1] for t in sets] == ["1.0.0"], name


def test_abort_rolls_every_service_back_the_last_wave_first() -> None:
    paused = at_pause()
    # mcp's listener is slow to go back: api keeps its canary weight until mcp shows 0.
    knobs = slow("mcp", paused.now + timedelta(seconds=20))
    run = drive(paused.spec, paused.observation, paused.status, now=paused.now, requests=Requests(abort="a"),
                knobs=knobs, between=ticking(knobs))
    assert run.status.phase == Phase.ROLLED_BACK
    back_in_reverse(run)
    mcp_back = next(p.now for p in run.passes if weight(p.observation, "mcp") == 0)
    api_back = next(p.now for p in run.passes if weight(p.observation, "api") == 0)
    assert api_back > mcp_back >= paused.now + timedelta(seconds=19)
    assert all(not e.canary_image for e in run.status.backend.services)


def test_a_failed_analysis_rolls_every_service_back_in_reverse_order() -> None:
    analysed = {"metrics": [{"name": "errors", "prometheus": {"address": "http://prom:9090", "query": "x"},
                             "max": 0.05}], "interval": "10s"}
    settled = drive(tier_spec("1.0.0", CANARY, analysis=analysed), tier_world("1.0.0"))

    def measure(now: Any, obs: Observation, status: Any) -> list[Any]:
        return [measurement("errors", 0.5 if weight(obs, "mcp") > 0 else 0.0, now)]
    run = drive(tier_spec("2.0.0", CANARY, analysis=analysed), settled.observation, settled.status,
                now=settled.now, measure=measure)
    assert run.status.phase == Phase.ROLLED_BACK
    assert run.status.history[-1].result in ("RolledBack", "Failed")
    back_in_reverse(run)


def test_a_service_that_never_gets_steady_fails_the_tier_at_the_deadline_and_all_go_back() -> None:
    settled = drive(tier_spec("1.0.0", CANARY, progressDeadline="2m"), tier_world("1.0.0"))

    def stuck(obs: Observation, p: Pass) -> Observation:
        view = obs.services["mcp"]
        assert view.service is not None
        sets = tuple(replace(t, stability="STABILIZING") if t.image and t.image.endswith(":2.0.0") else t
                     for t in view.service.task_sets)
        mcp = replace(view, service=replace(view.service, task_sets=sets))
        return replace(obs, services={**obs.services, "mcp": mcp})
    run = drive(tier_spec("2.0.0", CANARY, progressDeadline="2m"), settled.observation, settled.status,
                now=settled.now, between=stuck)
    assert run.status.phase == Phase.FAILED
    assert any(e == Reason.PROGRESS_DEADLINE_EXCEEDED for e in run.events)
    assert "mcp" in next(p.decision.status.message for p in run.passes if "waiting" in p.decision.status.message
                         and p.decision.status.current_step == 0)
    back_in_reverse(run)


def test_a_worker_is_canaried_by_the_share_of_its_tasks_with_no_listener_action() -> None:
    run = settled_then(until=lambda p: p.decision.status.current_step == 1)
    worker_sets = run.observation.services["worker"].service.task_sets  # type: ignore[union-attr]
    scales = sorted(((t.image or "").rsplit(":", 1)[1], t.scale_percent) for t in worker_sets)
    assert scales == [("1.0.0", 80.0), ("2.0.0", 20.0)]
    assert all(isinstance(a, (EnsureTaskSet, ScaleTaskSet)) for a in run.actions
               if getattr(a, "service", None) == "worker")
    assert {e.name: e.canary_weight for e in run.status.backend.services}["worker"] == 20


def test_native_mode_on_a_service_of_a_tier_is_refused() -> None:
    settled = drive(tier_spec("1.0.0", CANARY), tier_world("1.0.0"))
    spec = tier_spec("2.0.0", CANARY)
    services = [s.model_copy(update={"ecs": s.ecs.model_copy(update={"mode": "Native"})}) if s.name == "mcp" else s
                for s in spec.backend.service_list()]
    spec = spec.model_copy(update={"backend": spec.backend.model_copy(update={"services": tuple(services)})})
    run = drive(spec, settled.observation, settled.status, now=settled.now, max_passes=3, exact=True)
    assert run.actions == []
    progressing = next(c for c in run.status.conditions if c.type == "Progressing")
    assert progressing.reason == Reason.SEVERAL_SERVICES_UNSUPPORTED and "Native" in progressing.message


def test_a_tier_on_an_ecs_controller_service_is_refused() -> None:
    settled = drive(tier_spec("1.0.0", CANARY), tier_world("1.0.0"))
    obs = settled.observation
    worker = obs.services["worker"]
    assert worker.service is not None
    ecs = replace(worker, service=replace(worker.service, deployment_controller="ECS"))
    obs = replace(obs, services={**obs.services, "worker": ecs})
    run = drive(tier_spec("2.0.0", CANARY), obs, settled.status, now=settled.now, max_passes=3, exact=True)
    assert run.actions == []
    progressing = next(c for c in run.status.conditions if c.type == "Progressing")
    assert progressing.reason == Reason.DEPLOYMENT_CONTROLLER_NOT_EXTERNAL and "worker" in progressing.message


def test_a_failure_in_the_rollback_window_puts_every_service_back_on_its_warm_previous_version() -> None:
    analysed = {"metrics": [{"name": "errors", "prometheus": {"address": "http://prom:9090", "query": "x"},
                             "max": 0.05}], "interval": "10s"}
    timed = {"type": "Canary", "canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "30s"}}]}}
    settled = drive(tier_spec("1.0.0", timed, analysis=analysed), tier_world("1.0.0"))
    promoted_at: dict[str, Any] = {}

    def measure(now: Any, obs: Observation, status: Any) -> list[Any]:
        if status.promoted_at is not None:
            promoted_at.setdefault("t", now)
        late = "t" in promoted_at and now - promoted_at["t"] > timedelta(seconds=20)
        return [measurement("errors", 0.5 if late else 0.0, now)]
    # Once promoted, mcp's listener is slow for a minute: going back, api keeps 2.0.0 until mcp shows it gone.
    mcp_listener = tier_arns("mcp")[0]
    slow_from: dict[str, Any] = {}

    def lose(a: Action) -> bool:
        return (isinstance(a, SetListenerWeights) and a.listener_arn == mcp_listener and "t" in slow_from
                and slow_from["now"] < slow_from["t"] + timedelta(minutes=1))

    def between(obs: Observation, p: Pass) -> Observation:
        slow_from["now"] = p.now
        if p.decision.status.phase == Phase.SUCCEEDED:
            slow_from.setdefault("t", p.now)
        return obs
    run = drive(tier_spec("2.0.0", timed, analysis=analysed), settled.observation, settled.status, now=settled.now,
                measure=measure, knobs=Knobs(lose=lose), between=between)
    succeeded = slow_from["t"]
    mcp_back = next(p.now for p in run.passes if p.now > succeeded and weight(p.observation, "mcp") == 0)
    api_back = next(p.now for p in run.passes if p.now > succeeded and weight(p.observation, "api") == 0)
    assert api_back > mcp_back >= succeeded + timedelta(seconds=59)
    assert run.status.phase == Phase.ROLLED_BACK and run.status.backend.stable_version == "1.0.0"
    back_in_reverse(run)
    served = [p for p in run.passes if p.decision.status.phase == Phase.ROLLED_BACK]
    assert any(weight(p.observation, "api") == 0 and weight(p.observation, "mcp") == 0 for p in served)
    entries = {e.name: e for e in run.status.backend.services}
    assert all(e.stable_image and e.stable_image.endswith(":1.0.0") for e in entries.values())


# The preview step on a tier (docs/many-services.md, section 3): every service with traffic gets its
# own rule on its own listener, forwarding the header to its own canary group, before any weight.

PREVIEW = {"type": "Canary", "canary": {"steps": [{"preview": {"duration": "1m"}}, {"setWeight": 20},
                                                  {"pause": {"duration": "30s"}}, {"setWeight": 50}]}}
HEADER = "aws-cf-cd-release-preview"


def rules(obs: Observation, name: str) -> tuple[PreviewRule, ...]:
    """The preview rules of this Release on service `name`'s listener (any of its owners)."""
    listener = obs.services[name].listener
    return tuple(r for r in listener.previews if r.owner.startswith(f"{NS}/{NAME}")) if listener else ()


def new_worker_tasks(obs: Observation) -> float:
    svc = obs.services["worker"].service
    assert svc is not None
    return sum(t.scale_percent for t in svc.task_sets if (t.image or "").endswith(":2.0.0"))


def previewed(**kw: Any) -> Run:
    settled = drive(tier_spec("1.0.0", PREVIEW), tier_world("1.0.0"))
    return drive(tier_spec("2.0.0", PREVIEW), settled.observation, settled.status, now=settled.now, **kw)


def test_a_preview_routes_the_header_to_the_new_version_of_every_service_with_traffic_before_any_weight() -> None:
    run = previewed()
    routed = [p for p in run.passes if rules(p.observation, "api") and rules(p.observation, "mcp")]
    assert routed, "the preview never routed both services"
    for p in routed:
        for name in ("api", "mcp"):
            (r,) = rules(p.observation, name)
            # Its own rule, on its own listener, to its own canary group; no production weight yet.
            assert (r.owner, r.header_name, r.header_values, r.target_group_arn) == (
                f"{NS}/{NAME}/{name}", HEADER, ("2.0.0",), tier_arns(name)[2])
            assert weight(p.observation, name) == 0
        # The worker has no listener, no rule, and runs no task of the new version during the preview.
        assert new_worker_tasks(p.observation) == 0
    # Wave by wave: mcp's rule never exists without api's.
    assert all(rules(p.observation, "api") for p in run.passes if rules(p.observation, "mcp"))
    # The hold is counted once every service is routed, and lasts its duration.
    gone = next(p.now for p in run.passes[run.passes.index(routed[0]):] if not rules(p.observation, "mcp"))
    assert gone - routed[0].now >= timedelta(minutes=1)
    # Every rule is gone before any service takes production weight: the pass that moves a weight
    # first removes the rules (removal first among its actions) or finds them gone.
    first = next(i for i, p in enumerate(run.passes) if weight(p.observation, "api") > 0)
    assert not rules(run.passes[first].observation, "api") and not rules(run.passes[first].observation, "mcp")
    kinds = [type(a) for a in run.passes[first].decision.actions]
    if RemovePreviewRoute in kinds:
        assert max(i for i, k in enumerate(kinds) if k is RemovePreviewRoute) < kinds.index(SetListenerWeights)
    # Then the canary steps and promotion, every service on the new version, no rule left.
    assert run.status.phase == Phase.SUCCEEDED
    assert all(not rules(run.observation, n) for n in ("api", "mcp"))
    assert {e.name: e.stable_image for e in run.status.backend.services} == {
        n: tier_image(n, "2.0.0") for n in ("api", "mcp", "worker")}
    # One rule per service asked for and removed: no churn while the preview holds.
    asked = [a for a in run.actions if isinstance(a, EnsurePreviewRoute)]
    assert sorted(a.owner for a in asked) == [f"{NS}/{NAME}/api", f"{NS}/{NAME}/mcp"]
    assert sorted(a.owner for a in run.actions if isinstance(a, RemovePreviewRoute)) == sorted(a.owner for a in asked)


def test_the_hold_waits_for_every_services_rule_a_lost_one_is_asked_again() -> None:
    lost: list[bool] = []

    def lose_mcp_once(a: Action) -> bool:
        if isinstance(a, EnsurePreviewRoute) and a.owner.endswith("/mcp") and not lost:
            lost.append(True)
            return True
        return False
    run = previewed(knobs=Knobs(lose=lose_mcp_once), until=lambda p: p.decision.status.current_step == 1)
    assert lost
    # While mcp had no rule the preview's hold did not start: step 1 (the hold) begins only once both show.
    both = next(p for p in run.passes if rules(p.observation, "api") and rules(p.observation, "mcp"))
    assert all(p.decision.status.current_step == 0 for p in run.passes[:run.passes.index(both)])
    assert any("preview route" in c.message and "mcp" in c.message for p in run.passes[:run.passes.index(both)]
               for c in p.decision.status.conditions)


def test_abort_during_the_preview_removes_every_rule_first_and_rolls_every_service_back() -> None:
    run = previewed(until=lambda p: bool(rules(p.observation, "mcp")))
    back = drive(run.spec, run.observation, run.status, now=run.now, requests=Requests(abort="a1"))
    assert back.status.phase == Phase.ROLLED_BACK
    first = [type(a) for a in back.passes[0].decision.actions]
    assert first[:2] == [RemovePreviewRoute, RemovePreviewRoute]
    assert [a.owner for a in back.passes[0].decision.actions[:2]] == [f"{NS}/{NAME}/mcp", f"{NS}/{NAME}/api"]
    for name in ("api", "mcp"):
        assert not rules(back.observation, name)
        assert weight(back.observation, name) == 0
    assert new_worker_tasks(back.observation) == 0


def test_a_rule_under_another_owner_of_this_release_is_removed_from_a_tiers_listener() -> None:
    """A rule left by this Release under the single-service owner (the spec became a tier mid-preview),
    or by a service since renamed, is this Release's and goes; another Release's stays."""
    run = previewed(until=lambda p: bool(rules(p.observation, "mcp")))
    obs = run.observation
    api = obs.services["api"]
    assert api.listener is not None
    stray = (PreviewRule(f"{NS}/{NAME}", 7, HEADER, ("1.9.0",), tier_arns("api")[2]),
             PreviewRule(f"{NS}/{NAME}/old-api", 8, HEADER, ("1.9.0",), tier_arns("api")[2]),
             PreviewRule(f"{NS}/other", 9, HEADER, ("x",), tier_arns("api")[2]))
    obs = replace(obs, services={**obs.services, "api": replace(api, listener=replace(
        api.listener, previews=api.listener.previews + stray))})
    d = decide(run.spec, run.status, obs, ctx(run.now + timedelta(seconds=1)))
    removed = {a.owner for a in d.actions if isinstance(a, RemovePreviewRoute)}
    assert removed == {f"{NS}/{NAME}", f"{NS}/{NAME}/old-api"}


def test_a_blue_green_preview_header_routes_every_service_with_traffic_and_promotes_the_tier() -> None:
    bg = {"type": "BlueGreen", "blueGreen": {"previewDuration": "1m", "scaleDownDelay": "30s", "previewHeader": {}}}
    settled = drive(tier_spec("1.0.0", bg), tier_world("1.0.0"))
    run = drive(tier_spec("2.0.0", bg), settled.observation, settled.status, now=settled.now)
    routed = [p for p in run.passes if rules(p.observation, "api") and rules(p.observation, "mcp")]
    assert routed, "the blue-green preview never routed both services"
    for p in routed:
        assert weight(p.observation, "api") == 0 and weight(p.observation, "mcp") == 0
        assert new_worker_tasks(p.observation) == 0
    assert run.status.phase == Phase.SUCCEEDED
    assert all(not rules(run.observation, n) for n in ("api", "mcp"))
    assert all(weight(run.observation, n) == 100 for n in ("api", "mcp"))
