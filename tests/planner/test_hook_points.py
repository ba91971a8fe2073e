"""The four hook points for both kinds of hook, on the pure planner: preRollout runs before the new
version has a task set (a failure rolls back before the canary gets any weight), prePromotion before
full traffic, postPromotion and onRollback after (a failure is reported, nothing rolls back). The
results are the ones a runner hands back (`HookResult`): a webhook's HTTP status, an ECS task still
running, exited 0, or exited non-zero (final). Also: order, timeouts, restart safety (the records in
status.hooks are the memory), and `irreversible`: a later automatic rollback pauses, Stalled, with
reason RollbackUnsafe, and only an abort with --force rolls back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from controller.api.release import ConditionType, Phase, ReleaseStatus
from controller.notify import moments
from controller.api.release import Moment
from controller.planner import Requests, decide
from controller.planner.conditions import find
from controller.planner.decision import FORCE_SUFFIX, HookResult
from controller.planner.phases.hooks import due
from controller.planner.world import Observation

from tests.planner.sim import GREEN, Knobs, Pass, Run, ctx, drive, image, make_spec, measurement, settled
from tests.planner.test_analysis_and_tiers import METRICS
from tests.planner.test_strategies import CANARY_TIMED

RUNNING = HookResult("", "", 0, False, "task RUNNING")
EXIT0 = HookResult("", "", 0, True, "exit code 0")
EXIT3 = HookResult("", "", 0, False, "exit code 3: Essential container in task exited", final=True)

WEBHOOK = {"webhook": {"url": "http://hooks.local/run", "timeout": "20s"}}
TASK = {"ecsTask": {"command": ["alembic", "upgrade", "head"]}}


@dataclass
class Script:
    """Answers per (point, hook name), the last one repeated; every call recorded with its time."""

    answers: dict[tuple[str, str], list[int | HookResult]]
    calls: list[tuple[str, str, datetime]] = field(default_factory=list)

    def __call__(self, point: str, name: str, now: datetime) -> int | HookResult:
        script = self.answers[(point, name)]
        n = sum(1 for p, h, _ in self.calls if (p, h) == (point, name))
        self.calls.append((point, name, now))
        return script[min(n, len(script) - 1)]

    def times(self, point: str, name: str) -> list[datetime]:
        return [t for p, h, t in self.calls if (p, h) == (point, name)]


def spec_with(hooks: dict[str, Any], **over: Any) -> Any:
    return make_spec("2.0.0", CANARY_TIMED, hooks=hooks, **over)


def new_task_set(p: Pass) -> bool:
    """Whether the world after this pass has any task set of the new version."""
    assert p.observation.service is not None
    return any(ts.image == image("2.0.0") for ts in p.observation.service.task_sets)


def ready(run: Run) -> Any:
    cond = find(run.status.conditions, ConditionType.READY)
    assert cond is not None
    return cond


# --------------------------------------------------------------------------- the gates


@pytest.mark.parametrize("point, kind, script, phase, said", [
    ("preRollout", WEBHOOK, [503, 503, 200], Phase.SUCCEEDED, None),
    ("preRollout", TASK, [RUNNING, RUNNING, EXIT0], Phase.SUCCEEDED, None),
    ("preRollout", TASK, [RUNNING, EXIT3], Phase.ROLLED_BACK, "exit code 3: Essential container"),
    ("preRollout", WEBHOOK, [500], Phase.ROLLED_BACK, "HTTP 500"),
    ("prePromotion", TASK, [RUNNING, EXIT0], Phase.SUCCEEDED, None),
    ("prePromotion", TASK, [EXIT3], Phase.ROLLED_BACK, "exit code 3"),
])
def test_a_gate_holds_the_rollout_until_its_hook_passed_and_a_failure_rolls_back(
    point: str, kind: dict[str, Any], script: list[int | HookResult], phase: Phase, said: str | None,
) -> None:
    base = settled("1.0.0", CANARY_TIMED)
    answers = Script({(point, "migrate"): script})
    run = drive(spec_with({point: [{"name": "migrate", **kind}]}), base.observation, base.status, now=base.now,
                hooks=answers)
    assert run.status.phase == phase, run.status.message
    calls = answers.times(point, "migrate")
    assert len(calls) == (len(script) if phase == Phase.SUCCEEDED or script[-1] is EXIT3 else len(calls))
    if point == "preRollout":
        # No task set of the new version, hence no weight, before the hook passed (or ever, when it failed).
        assert not any(new_task_set(p) for p in run.passes if phase != Phase.SUCCEEDED or p.now < calls[-1])
        assert all(p.weights.get(GREEN, 0) == 0 for p in run.passes if phase != Phase.SUCCEEDED or p.now < calls[-1])
    else:
        assert all(p.weights.get(GREEN, 0) < 100 for p in run.passes if phase != Phase.SUCCEEDED or p.now < calls[-1])
        assert any(p.weights.get(GREEN, 0) > 0 for p in run.passes)  # the canary had its steps first
    if phase == Phase.SUCCEEDED:
        assert run.status.backend.stable_version == "2.0.0" and "HookPassed" in run.events
        assert run.status.hooks and run.status.hooks[0].passed_at is not None
    else:
        assert ready(run).reason == "HookFailed" and said is not None and said in ready(run).message
        assert run.status.backend.stable_version == "1.0.0"
        assert run.observation.listener is not None and run.observation.listener.weights[GREEN] == 0
    if kind is TASK and len(calls) > 1:
        # An ECS task is looked at every 2 s (a webhook backs off instead).
        assert {(b - a).total_seconds() for a, b in zip(calls, calls[1:])} == {2.0}


def test_an_ecs_task_that_keeps_running_fails_at_its_timeout() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    answers = Script({("preRollout", "migrate"): [RUNNING]})
    run = drive(spec_with({"preRollout": [{"name": "migrate", **TASK}]}), base.observation, base.status,
                now=base.now, hooks=answers, max_passes=1000)
    assert run.status.phase == Phase.ROLLED_BACK
    assert "timed out after 10m" in ready(run).message and "task RUNNING" in ready(run).message
    started = run.status.hooks[0].started_at if run.status.hooks else base.now
    assert answers.times("preRollout", "migrate")[-1] - started == timedelta(minutes=10)
    assert not any(new_task_set(p) for p in run.passes)


def test_on_failure_pause_holds_a_failed_pre_rollout_hook_and_keeps_saying_so_once() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    answers = Script({("preRollout", "migrate"): [EXIT3]})
    spec = spec_with({"preRollout": [{"name": "migrate", **TASK, "onFailure": "Pause"}]})
    run = drive(spec, base.observation, base.status, now=base.now, hooks=answers)
    assert run.status.phase == Phase.PAUSED and "exit code 3" in run.status.message
    assert not any(new_task_set(p) for p in run.passes)
    # Passes after (a resync): still paused, the task is not run again, no second Warning.
    again = drive(spec, run.observation, run.status, now=run.now + timedelta(minutes=1), hooks=answers, exact=True,
                  max_passes=3)
    assert again.status.phase == Phase.PAUSED and len(answers.calls) == 1
    assert "HookFailed" not in again.events


def test_hooks_of_a_point_run_in_order() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    answers = Script({("preRollout", "migrate"): [RUNNING, RUNNING, EXIT0], ("preRollout", "seed"): [503, 200]})
    spec = spec_with({"preRollout": [{"name": "migrate", **TASK}, {"name": "seed", **WEBHOOK}]})
    run = drive(spec, base.observation, base.status, now=base.now, hooks=answers)
    assert run.status.phase == Phase.SUCCEEDED
    assert [h for _, h, _ in answers.calls] == ["migrate"] * 3 + ["seed"] * 2
    first_task_set = next(p.now for p in run.passes if new_task_set(p))
    assert first_task_set >= answers.times("preRollout", "seed")[-1]


# --------------------------------------------------------------------------- reporting points


@pytest.mark.parametrize("kind, script, passed", [
    (WEBHOOK, [200], True), (TASK, [RUNNING, EXIT0], True), (TASK, [EXIT3], False),
    ({"webhook": {"url": "http://hooks.local/run", "timeout": "5s"}}, [500], False),
])
def test_post_promotion_runs_after_promotion_and_a_failure_only_reports(
    kind: dict[str, Any], script: list[int | HookResult], passed: bool,
) -> None:
    base = settled("1.0.0", CANARY_TIMED)
    answers = Script({("postPromotion", "smoke"): script})
    spec = spec_with({"postPromotion": [{"name": "smoke", **kind}]})
    run = drive(spec, base.observation, base.status, now=base.now, hooks=answers)
    assert run.status.phase == Phase.SUCCEEDED and run.status.backend.stable_version == "2.0.0"
    assert ready(run).status == "True"
    promoted = run.status.promoted_at
    assert promoted is not None and all(t >= promoted for t in answers.times("postPromotion", "smoke"))
    rec = run.status.hooks[0] if run.status.hooks else None
    assert rec is not None and (rec.passed_at is not None) == passed and (rec.failed_at is not None) == (not passed)
    if passed:
        assert len(answers.calls) == len(script)
    else:
        warnings = [e for p in run.passes for e in p.decision.events if e.reason == "HookFailed"]
        assert len(warnings) == 1 and warnings[0].type == "Warning" and "nothing rolls back" in warnings[0].message
        # The HookFailed notification moment, once, though Ready stays True.
        said = [m for before, p in zip([base.status] + [q.decision.status for q in run.passes], run.passes)
                for m, _ in moments(before, p.decision, spec) if m == Moment.HOOK_FAILED]
        assert said == [Moment.HOOK_FAILED]


def test_an_adopted_release_runs_no_hooks() -> None:
    answers = Script({})
    spec = make_spec("1.0.0", CANARY_TIMED, hooks={p: [{"name": "x", **WEBHOOK}] for p in
                                                   ("preRollout", "prePromotion", "postPromotion", "onRollback")})
    run = drive(spec, settled("1.0.0").observation, hooks=answers)
    assert run.status.phase == Phase.SUCCEEDED and answers.calls == []


@pytest.mark.parametrize("kind, script", [(WEBHOOK, [200]), (TASK, [EXIT3])])
def test_on_rollback_runs_once_after_a_rollback(kind: dict[str, Any], script: list[int | HookResult]) -> None:
    base = settled("1.0.0", CANARY_TIMED)
    answers = Script({("prePromotion", "approve"): [EXIT3], ("onRollback", "page"): script})
    spec = spec_with({"prePromotion": [{"name": "approve", **TASK}], "onRollback": [{"name": "page", **kind}]})
    run = drive(spec, base.observation, base.status, now=base.now, hooks=answers)
    assert run.status.phase == Phase.ROLLED_BACK
    rolled_back = next(p.now for p in run.passes if p.decision.status.phase == Phase.ROLLED_BACK)
    times = answers.times("onRollback", "page")
    assert len(times) == 1 and times[0] > rolled_back
    warnings = [e for p in run.passes for e in p.decision.events if e.reason == "HookFailed" and "onRollback" in e.message]
    assert len(warnings) == (0 if script == [200] else 1)
    assert ready(run).reason == "HookFailed" and "prePromotion hook approve" in ready(run).message


# --------------------------------------------------------------------------- restarts


def test_a_restart_never_runs_a_passed_hook_again_and_due_is_pure() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    answers = Script({("preRollout", "migrate"): [RUNNING, EXIT0], ("preRollout", "seed"): [503, 503, 200],
                      ("prePromotion", "approve"): [200]})
    spec = spec_with({"preRollout": [{"name": "migrate", **TASK}, {"name": "seed", **WEBHOOK}],
                      "prePromotion": [{"name": "approve", **WEBHOOK}]})
    first = drive(spec, base.observation, base.status, now=base.now, hooks=answers,
                  until=lambda p: any(h.name == "seed" and h.attempts == 1 for h in p.decision.status.hooks or []))
    st, now = first.status, first.now
    # Due is a function of spec, status and clock only: asked twice, the same answer; the passed hook is never in it.
    later = now + timedelta(seconds=5)
    assert due(spec, st, later) == due(spec, st, later) == [("preRollout", spec.hooks.pre_rollout[1])]
    # The write of a pass lost (the operator died after the call): the pass repeated from the
    # status before it decides the same, and names the same hook, not the next one.
    again = [decide(spec, st, first.observation, ctx(later)) for _ in range(2)]
    assert again[0] == again[1]
    # A restarted operator goes on from the status it reads.
    rest = drive(spec, first.observation, st, now=later, hooks=answers)
    assert rest.status.phase == Phase.SUCCEEDED
    assert len(answers.times("preRollout", "migrate")) == 2  # RUNNING, then exit 0: never started again
    assert len(answers.times("preRollout", "seed")) == 3 and len(answers.times("prePromotion", "approve")) == 1


def test_hook_records_of_an_earlier_revision_are_not_memory_for_the_next() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    answers = Script({("preRollout", "migrate"): [EXIT0]})
    two = drive(spec_with({"preRollout": [{"name": "migrate", **TASK}]}), base.observation, base.status,
                now=base.now, hooks=answers)
    three = make_spec("3.0.0", CANARY_TIMED, hooks={"preRollout": [{"name": "migrate", **TASK}]})
    drive(three, two.observation, two.status, now=two.now, hooks=answers)
    assert len(answers.calls) == 2  # once per rollout


# --------------------------------------------------------------------------- irreversible


def failing_canary(now: datetime, obs: Observation, status: ReleaseStatus) -> Any:
    """Errors once the canary serves (no data before: nothing of it runs yet)."""
    serving = obs.listener is not None and obs.listener.weights.get(GREEN, 0) > 0
    return [measurement("error-rate", 0.3, now)] if serving else []


def unsafe_after(trigger: str) -> tuple[Any, Run]:
    """A preRollout migration marked irreversible passed, then `trigger` asks for an automatic rollback."""
    hooks: dict[str, Any] = {"preRollout": [{"name": "migrate", **TASK, "irreversible": True}]}
    answers: dict[tuple[str, str], list[int | HookResult]] = {("preRollout", "migrate"): [EXIT0]}
    over: dict[str, Any] = {}
    measure, knobs = None, None
    if trigger == "analysis":
        over["analysis"], measure = METRICS, failing_canary
    elif trigger == "deadline":
        over["progressDeadline"], knobs = "1m", Knobs(stabilizing=True)
    else:
        hooks["prePromotion"] = [{"name": "approve", **TASK}]
        answers[("prePromotion", "approve")] = [EXIT3]
    spec = spec_with(hooks, **over)
    base = drive(make_spec("1.0.0", CANARY_TIMED, **over), settled("1.0.0").observation)
    run = drive(spec, base.observation, base.status, now=base.now, hooks=Script(answers), measure=measure,
                knobs=knobs, max_passes=400)
    return spec, run


@pytest.mark.parametrize("trigger", ["analysis", "deadline", "later hook"])
def test_after_an_irreversible_hook_an_automatic_rollback_pauses_stalled(trigger: str) -> None:
    spec, run = unsafe_after(trigger)
    assert run.status.phase == Phase.PAUSED, run.status.message
    assert ready(run).reason == "RollbackUnsafe" and "migrate" in ready(run).message
    stalled = find(run.status.conditions, ConditionType.STALLED)
    reconciling = find(run.status.conditions, ConditionType.RECONCILING)
    assert stalled is not None and stalled.status == "True" and stalled.reason == "RollbackUnsafe"
    assert reconciling is not None and reconciling.status == "False"
    assert run.status.backend.canary_version == "2.0.0" and run.status.backend.stable_version == "1.0.0"
    unsafe = [e for p in run.passes for e in p.decision.events if e.reason == "RollbackUnsafe"]
    assert len(unsafe) == 1 and unsafe[0].type == "Warning"
    said = [m for before, p in zip([run.passes[0].decision.status] + [q.decision.status for q in run.passes], run.passes)
            for m, _ in moments(before, p.decision, spec)]
    assert Moment.STALLED in said


def test_abort_needs_force_after_an_irreversible_hook() -> None:
    spec, run = unsafe_after("analysis")
    held = run.observation.listener.weights[GREEN] if run.observation.listener else None
    plain = decide(spec, run.status, run.observation, ctx(run.now, Requests(abort="2025-01-01T13:00:00#a1")))
    assert plain.status.phase == Phase.PAUSED and plain.status.backend.canary_version == "2.0.0"
    assert plain.status.acknowledged.abort == "2025-01-01T13:00:00#a1"  # seen, and refused
    warning = next(e for e in plain.events if e.reason == "RollbackUnsafe")
    assert warning.type == "Warning" and "--force" in warning.message and "migrate" in warning.message
    assert held is not None and held > 0
    forced = drive(spec, run.observation, plain.status, now=run.now,
                   requests=Requests(abort="2025-01-01T13:00:05#b2" + FORCE_SUFFIX))
    assert forced.status.phase == Phase.ROLLED_BACK and ready(forced).reason == "Aborted"
    assert forced.observation.listener is not None and forced.observation.listener.weights[GREEN] == 0


def test_a_forced_abort_after_promotion_rolls_the_promoted_revision_back() -> None:
    def measure(now: datetime, obs: Observation, status: ReleaseStatus) -> Any:
        return [measurement("error-rate", 0.3 if status.promoted_at is not None else 0.01, now)]

    spec = make_spec("2.0.0", CANARY_TIMED, analysis=METRICS, rollback={"window": "10m"}, hooks={"prePromotion": [
        {"name": "migrate", **WEBHOOK, "irreversible": True}]})
    base = drive(make_spec("1.0.0", CANARY_TIMED, analysis=METRICS), settled("1.0.0").observation)
    run = drive(spec, base.observation, base.status, now=base.now, hooks=Script({("prePromotion", "migrate"): [200]}),
                measure=measure, max_passes=400)
    assert run.status.phase == Phase.PAUSED and ready(run).reason == "RollbackUnsafe"
    assert run.status.backend.stable_version == "2.0.0"
    forced = drive(spec, run.observation, run.status, now=run.now + timedelta(seconds=1),
                   requests=Requests(abort="t#force"), measure=measure, max_passes=400)
    assert forced.status.phase == Phase.ROLLED_BACK and forced.status.backend.stable_version == "1.0.0"
    assert ready(forced).reason == "Aborted" and "--force" in ready(forced).message
    assert forced.observation.listener is not None and forced.observation.listener.weights[GREEN] == 0


@pytest.mark.parametrize("script, phase", [([RUNNING, EXIT0], Phase.SUCCEEDED), ([EXIT3], Phase.ROLLED_BACK)])
def test_with_the_ecs_deployment_controller_pre_rollout_runs_before_the_service_changes(
    script: list[int | HookResult], phase: Phase,
) -> None:
    from controller.planner.actions import UpdateServiceImage
    from tests.planner.sim import world

    rolling = {"type": "Rolling"}
    base = drive(make_spec("1.0.0", rolling), world("1.0.0", controller="ECS"))
    answers = Script({("preRollout", "migrate"): script})
    spec = make_spec("2.0.0", rolling, hooks={"preRollout": [{"name": "migrate", **TASK}]})
    run = drive(spec, base.observation, base.status, now=base.now, hooks=answers)
    assert run.status.phase == phase
    updates = [p.now for p in run.passes if any(isinstance(a, UpdateServiceImage) for a in p.decision.actions)]
    if phase == Phase.SUCCEEDED:
        assert updates and updates[0] >= answers.times("preRollout", "migrate")[-1]
    else:
        assert updates == [] and "exit code 3" in ready(run).message


def test_a_hook_held_by_spec_paused_longer_than_its_timeout_is_asked_again_after_resume() -> None:
    base = settled("1.0.0", CANARY_TIMED)
    hooks = {"prePromotion": [{"name": "approve", **WEBHOOK}]}  # timeout 20s
    answers = Script({("prePromotion", "approve"): [503, 503, 200]})
    waiting = drive(spec_with(hooks), base.observation, base.status, now=base.now, hooks=answers,
                    until=lambda p: bool(p.decision.status.hooks) and p.decision.status.hooks[0].attempts == 1)
    paused = drive(spec_with(hooks, paused=True), waiting.observation, waiting.status, now=waiting.now, hooks=answers)
    assert paused.status.phase == Phase.PAUSED
    run = drive(spec_with(hooks), paused.observation, paused.status, now=paused.now + timedelta(minutes=5),
                hooks=answers)
    assert run.status.phase == Phase.SUCCEEDED, run.status.message  # not failed at once: 5 minutes held do not count
    assert len(answers.calls) == 3
