"""One-off ECS tasks (RunTask) for `ecsTask` hooks: started at most once per identity, then read.

A hook's task is named by a deterministic `startedBy` (`task_identity`: a hash of the Release uid,
revision, hook point and hook name) and tagged with the same parts. Before anything is started,
the tasks with that `startedBy` are looked up (ListTasks of RUNNING and STOPPED tasks, then
DescribeTasks), so a pass interrupted between RunTask and recording its result (an operator
SIGKILLed while a migration runs) finds the task it started instead of starting a second one.
RunTask's `clientToken` (the same identity) covers a retry of the call itself.

The task runs the rollout's new image: the task definition revision is found or registered exactly
as the backend effector does for a task set (`ecs.new_revision`: same family, reused when
it already runs the image), and it runs in the service's cluster with the network configuration
and launch type of the service's current task set (or the service's own).

This module reports what it sees; whether a result fails the rollout is the planner's.

ECS keeps a STOPPED task listed for about an hour. The planner records a task's outcome in
`status.hooks` the pass it is read, so only an outcome that went unread for that long is lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from controller.api.release import Hook, ReleaseSpec, ReleaseStatus
from controller.aws.ecs import client_token, describe_service, launch_settings, new_revision
from controller.aws.errors import AwsEffectError, AwsFailure, access_denied_message, error_code, is_access_denied
from controller.aws.taskdefs import TaskDefinitionCache
from controller.planner.decision import HookResult
from controller.planner.strategy import preview_header

STARTED_BY_CHARS = 36
TAG_UID = "release-controller/release-uid"
TAG_REVISION = "release-controller/revision"
TAG_HOOK = "release-controller/hook"
TAG_RELEASE = "release-controller/release"


def task_identity(uid: str, revision: int, point: str, hook: str) -> str:
    """The `startedBy` of one hook's task: the same for the same Release uid, revision, point and hook."""
    digest = hashlib.sha256(f"{uid}\n{revision}\n{point}\n{hook}".encode()).hexdigest()
    return ("rc-" + digest)[:STARTED_BY_CHARS]


@dataclass(frozen=True)
class TaskRequest:
    """Everything RunTask needs for one hook's task."""

    cluster: str
    service: str
    backend_container: str  # the container the new image goes into (backend.ecs.containerName)
    image: str
    container: str  # the container the command runs in
    command: Sequence[str]
    started_by: str
    environment: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskOutcome:
    """What ECS says of a hook's task. `exit_code` is the hook container's, when it stopped."""

    task_id: str
    last_status: str
    exit_code: int | None = None
    stopped_reason: str = ""
    container_reason: str = ""
    started_now: bool = False

    @property
    def stopped(self) -> bool:
        return self.last_status == "STOPPED"


def find_task(ecs: Any, cluster: str, started_by: str, container: str) -> TaskOutcome | None:
    """The task started with `started_by` (the first started, should there be several), or None."""
    arns: list[str] = []
    for desired in ("RUNNING", "STOPPED"):
        arns += ecs.list_tasks(cluster=cluster, startedBy=started_by, desiredStatus=desired).get("taskArns", [])
    if not arns:
        return None
    tasks = ecs.describe_tasks(cluster=cluster, tasks=sorted(set(arns))[:100]).get("tasks", [])
    # ListTasks' startedBy filter is ECS's; checked again so a wider answer never picks another task.
    ours = [t for t in tasks if t.get("startedBy") == started_by]
    if not ours:
        return None
    first = min(ours, key=lambda t: (str(t.get("createdAt") or ""), t.get("taskArn", "")))
    return outcome(first, container)


def outcome(task: Mapping[str, Any], container: str) -> TaskOutcome:
    containers: list[Mapping[str, Any]] = task.get("containers") or []
    chosen = next((c for c in containers if c.get("name") == container), containers[0] if containers else {})
    exit_code = chosen.get("exitCode")
    return TaskOutcome(
        task_id=str(task.get("taskArn", "")).rsplit("/", 1)[-1],
        last_status=str(task.get("lastStatus") or "PROVISIONING"),
        exit_code=int(exit_code) if exit_code is not None else None,
        stopped_reason=str(task.get("stoppedReason") or ""),
        container_reason=str(chosen.get("reason") or ""),
    )


def run_request(ecs: Any, cache: TaskDefinitionCache, r: TaskRequest) -> dict[str, Any]:
    """RunTask arguments for `r`: the new image's revision in the service's cluster and network."""
    service = describe_service(ecs, r.cluster, r.service)
    td_arn = new_revision(ecs, cache, service, r.service, r.backend_container, r.image)
    names = {c.get("name") for c in cache.fetch(ecs, td_arn).get("containerDefinitions", [])}
    if r.container not in names:
        raise AwsEffectError(
            "ContainerNotFound", f"task definition {td_arn} has no container named {r.container!r}", retryable=False
        )
    override: dict[str, Any] = {"name": r.container, "command": list(r.command)}
    if r.environment:
        override["environment"] = [{"name": k, "value": v} for k, v in sorted(r.environment.items())]
    request: dict[str, Any] = {
        "cluster": r.cluster,
        "taskDefinition": td_arn,
        "count": 1,
        "startedBy": r.started_by,
        "clientToken": client_token(r.started_by),
        "overrides": {"containerOverrides": [override]},
        **launch_settings(service),
    }
    if r.tags:
        request["tags"] = [{"key": k, "value": v} for k, v in sorted(r.tags.items())]
    return request


def ensure_task(ecs: Any, cache: TaskDefinitionCache, r: TaskRequest) -> TaskOutcome:
    """The hook's task as ECS has it, started now only if none with its `startedBy` exists."""
    found = find_task(ecs, r.cluster, r.started_by, r.container)
    if found is not None:
        return found
    resp = ecs.run_task(**run_request(ecs, cache, r))
    tasks = resp.get("tasks") or []
    if not tasks:
        failures = resp.get("failures") or [{}]
        reason = failures[0].get("reason") or "no task and no failure given"
        raise AwsEffectError("RunTaskFailed", f"RunTask started no task: {reason}", retryable=True)
    started = outcome(tasks[0], r.container)
    return TaskOutcome(started.task_id, started.last_status, started.exit_code, started.stopped_reason,
                       started.container_reason, started_now=True)


def failure_text(exc: BaseException) -> str:
    """An AWS failure as a hook message: the error code (or our own reason), never the request."""
    if isinstance(exc, AwsEffectError):
        return f"{exc.reason}: {exc.message}"
    if isinstance(exc, ClientError) and is_access_denied(exc):
        return "AccessDenied: " + access_denied_message(exc, "the hook's task")
    if isinstance(exc, AwsFailure):
        return error_code(exc) or type(exc).__name__
    return type(exc).__name__


@dataclass
class EcsTaskHooks:
    """The `ecsTask` hook runner (`controller.hooks.HookCalls` hands it those hooks).

    Its result: a task still provisioning, pending or running has not passed (`final` False, asked
    again); stopped with exit code 0 passes; stopped with any other exit code, or none (it never
    started), has failed for good (`final`), with the exit code and ECS's stopped reason. An AWS
    error (throttling, AccessDenied) has not passed and is not final: the call is made again.
    """

    ecs: Any
    cache: TaskDefinitionCache = field(default_factory=TaskDefinitionCache)

    def __call__(self, namespace: str, name: str, uid: str, spec: ReleaseSpec, status: ReleaseStatus, point: str,
                 hook: Hook) -> HookResult:
        task = hook.ecs_task
        assert task is not None
        target = spec.backend.ecs
        request = TaskRequest(
            cluster=target.cluster, service=target.service, backend_container=target.container_name,
            image=spec.backend.image, container=task.container_name or target.container_name,
            command=tuple(task.command), environment={**dict(task.environment), **preview_environment(spec, status, point)},
            started_by=task_identity(uid, status.revision, point, hook.name),
            tags={TAG_RELEASE: f"{namespace}/{name}", TAG_UID: uid, TAG_REVISION: str(status.revision),
                  TAG_HOOK: f"{point}/{hook.name}"},
        )
        try:
            found = ensure_task(self.ecs, self.cache, request)
        except (AwsEffectError, *AwsFailure) as exc:
            return HookResult(point, hook.name, status.revision, False, failure_text(exc))
        return hook_result(point, hook.name, status.revision, found)


def preview_environment(spec: ReleaseSpec, status: ReleaseStatus, point: str) -> dict[str, str]:
    """A preview hook's task is told the header that reaches the new version (a smoke test sends it)."""
    header = preview_header(spec, status.strategy) if point == "preview" else None
    return {"RELEASE_PREVIEW_HEADER": header[0], "RELEASE_PREVIEW_VALUE": header[1]} if header else {}


def hook_result(point: str, name: str, revision: int, task: TaskOutcome) -> HookResult:
    if not task.stopped:
        started = "started, " if task.started_now else ""
        return HookResult(point, name, revision, False, f"task {task.task_id} {started}{task.last_status}")
    if task.exit_code == 0:
        return HookResult(point, name, revision, True, f"task {task.task_id} exited with exit code 0")
    reason = "; ".join(r for r in (task.stopped_reason, task.container_reason) if r) or "no stopped reason"
    said = f"exit code {task.exit_code}" if task.exit_code is not None else "no exit code"
    return HookResult(point, name, revision, False, f"{said}: {reason} (task {task.task_id})", final=True)
