"""ecsTask hooks without AWS: the model's bounds and refusals, the task's identity (its startedBy),
and how a task ECS describes becomes a hook result. The runner against the local ECS is
tests/dataplane/test_one_off_tasks.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from controller.api.release import HOOK_KIND_HINT, TASK_ENV_NAME_HINT, Hook
from controller.aws.tasks import STARTED_BY_CHARS, hook_result, outcome, task_identity
from controller.manifests import CEL_CHECKS


def hook(**ecs_task: Any) -> Hook:
    return Hook.model_validate({"name": "migrate", "ecsTask": {"command": ["alembic", "upgrade", "head"], **ecs_task}})


def test_an_ecs_task_hook_has_defaults_and_bounds() -> None:
    h = hook()
    assert h.ecs_task is not None
    assert h.ecs_task.timeout == timedelta(minutes=10) and h.ecs_task.container_name is None
    assert h.ecs_task.environment == {}
    assert hook(timeout="90s", containerName="migrations", environment={"DB_SCHEMA": "app"}).ecs_task is not None
    for bad in ({"command": []}, {"command": ["x"] * 21}, {"command": ["x" * 201]},
                {"environment": {f"V{i}": "x" for i in range(11)}}, {"environment": {"V": "x" * 257}}):
        with pytest.raises(ValidationError):
            hook(**bad)


@pytest.mark.parametrize("name", ["1ST", "A-B", "A B", "", "X" * 65])
def test_environment_names_are_refused_by_the_model(name: str) -> None:
    with pytest.raises(ValidationError, match="environment names are letters"):
        hook(environment={name: "x"})
    assert TASK_ENV_NAME_HINT.startswith("environment names")


@pytest.mark.parametrize("body", [
    {"name": "migrate"},
    {"name": "migrate", "webhook": {"url": "https://example.com/x"}, "ecsTask": {"command": ["true"]}},
])
def test_a_hook_is_exactly_one_kind(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=HOOK_KIND_HINT):
        Hook.model_validate(body)
    # The offline copy of the CRD's rule says the same.
    assert not CEL_CHECKS[HOOK_KIND_HINT].holds(body)


def test_the_identity_is_stable_short_and_apart_for_each_part() -> None:
    base = task_identity("uid-1", 3, "preRollout", "migrate")
    assert base == task_identity("uid-1", 3, "preRollout", "migrate")
    assert len(base) <= STARTED_BY_CHARS and base.startswith("rc-")
    others = {task_identity("uid-2", 3, "preRollout", "migrate"), task_identity("uid-1", 4, "preRollout", "migrate"),
              task_identity("uid-1", 3, "prePromotion", "migrate"), task_identity("uid-1", 3, "preRollout", "seed")}
    assert base not in others and len(others) == 4


def task(last: str, exit_code: int | None = None, reason: str = "", container_reason: str | None = None) -> dict[str, Any]:
    api: dict[str, Any] = {"name": "api", "lastStatus": last}
    if exit_code is not None:
        api["exitCode"] = exit_code
    if container_reason:
        api["reason"] = container_reason
    return {"taskArn": "arn:aws:ecs:eu-west-1:1:task/c/abc123", "lastStatus": last, "stoppedReason": reason,
            "containers": [{"name": "otel", "lastStatus": last, "exitCode": 0}, api]}


def test_results_from_what_ecs_describes() -> None:
    def result(t: dict[str, Any]) -> tuple[bool, bool, str]:
        r = hook_result("preRollout", "migrate", 3, outcome(t, "api"))
        return r.passed, r.final, r.message

    assert result(task("PENDING")) == (False, False, "task abc123 PENDING")
    assert result(task("STOPPED", 0, "Essential container in task exited")) == (
        True, False, "task abc123 exited with exit code 0")
    # The hook's container decides, not the sidecar that exited 0.
    assert result(task("STOPPED", 3, "Essential container in task exited")) == (
        False, True, "exit code 3: Essential container in task exited (task abc123)")
    passed, final, message = result(task("STOPPED", None, "CannotPullContainerError: not found",
                                         "CannotPullContainerError: not found"))
    assert (passed, final) == (False, True) and message.startswith("no exit code: CannotPullContainerError")


def test_a_preview_hook_task_is_told_the_preview_header() -> None:
    from controller.api.release import ReleaseSpec, ReleaseStatus
    from controller.aws.tasks import preview_environment
    from tests.planner.sim import make_spec

    spec: ReleaseSpec = make_spec("2.0.0", {"type": "Canary", "canary": {"steps": [
        {"preview": {"duration": "1m"}}, {"setWeight": 20}]}})
    status = ReleaseStatus.model_validate({"strategy": "Canary"})
    assert preview_environment(spec, status, "preview") == {
        "RELEASE_PREVIEW_HEADER": "aws-cf-cd-release-preview", "RELEASE_PREVIEW_VALUE": "2.0.0"}
    assert preview_environment(spec, status, "preRollout") == {}
    assert preview_environment(make_spec("2.0.0"), status, "preview") == {}
