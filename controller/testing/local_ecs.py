"""The local ECS: moto's server over HTTP, plus the part of ECS that moto does not play.

`python -m controller.testing.local_ecs -H 127.0.0.1 -p PORT` serves exactly what
`python -m moto.server` serves, with these differences, each where real ECS differs from moto:

- a task set does not get moto's instant fake tasks: its tasks are what the local ECS agent (the
  data plane, `controller.testing.dataplane.supervisor`) reports it really runs;
- `runningCount`, `pendingCount`, `computedDesiredCount`, `stabilityStatus` and
  `stabilityStatusAt` of a task set come from those reports; after `CreateTaskSet` or
  `UpdateTaskSet` (which now moves `updatedAt`) the old figures are reported for
  `LOCAL_ECS_STALE_SECONDS` (default 1 s), as ECS takes a moment to notice a change;
- tasks (`ListTasks`, `DescribeTasks`) carry the states, `stoppedReason`, `stopCode` and container
  `exitCode` the agent reports; `ListTasks --service-name` filters (moto ignores the filter);
- `DescribeTargetHealth` answers initial / healthy / unhealthy / draining from the agent's health
  checks of the task's workload, for targets registered as ECS registers a task's IP;
- a one-off task (`RunTask`) is not RUNNING at once with nothing behind it: it starts PROVISIONING,
  with one container per container definition and no exit code, until an agent claims it (the
  first to ask gets it), runs its command and reports PENDING, RUNNING and STOPPED with the
  container's exit code and `stoppedReason`.

The same process also answers CloudFront continuous deployment (CopyDistribution, the
ContinuousDeploymentPolicy calls, UpdateDistributionWithStagingConfig), which moto lacks:
`controller.testing.local_cloudfront`.

The agent writes through one extra route, `POST /_local-ecs/v1/report` (JSON, see `apply_report`),
which no AWS client calls. Every place this leaves moto's public API (patching its backend classes,
writing its model objects) is marked `LEAVES MOTO'S PUBLIC API`; moto is pinned in pyproject.toml,
and `tests/dataplane` fails if a moto upgrade breaks one of them.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import threading
import time
from datetime import datetime, timezone
from typing import Any

from controller.testing import local_cloudfront, native_ecs

STALE_SECONDS_ENV = "LOCAL_ECS_STALE_SECONDS"
REPORT_PATH = "/_local-ecs/v1/report"
ONE_OFF_KEY = "_one_off"  # in the report's answer: {task ARN: claimed}; no task key starts with "_"
ACCOUNT_ID = "123456789012"  # moto's default account

_installed = False
_lock = threading.RLock()


def stale_seconds() -> float:
    return float(os.environ.get(STALE_SECONDS_ENV, "1.0"))


def _now() -> datetime:
    # moto keeps naive UTC datetimes (moto.core.utils.utcnow)
    return datetime.now(timezone.utc).replace(tzinfo=None)


def install() -> None:
    """Patch moto's ECS and ELBv2 backends once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    from moto.ecs import models as ecs_models
    from moto.elbv2 import models as elbv2_models

    local_cloudfront.install()  # CloudFront continuous deployment, which moto lacks

    backend = ecs_models.EC2ContainerServiceBackend
    original_create = backend.create_task_set
    original_update = backend.update_task_set
    original_list_tasks = backend.list_tasks

    # LEAVES MOTO'S PUBLIC API: moto's CreateTaskSet runs `desired * scale` fake tasks, RUNNING at
    # once. Here a task set starts with no task; the agent reports the ones it really starts.
    def create_task_set(self: Any, *args: Any, **kwargs: Any) -> Any:
        scale = kwargs.pop("scale", None)
        task_set: Any = original_create(self, *args, **kwargs)
        task_set.scale = scale or {"value": 100.0, "unit": "PERCENT"}
        task_set.running_count = 0
        task_set.pending_count = 0
        task_set.computed_desired_count = 0
        # Before ECS has looked at it a new task set reads STEADY_STATE, reported when it was
        # created: "steady" about nothing. A controller must not take that for capacity.
        task_set.stabilityStatusAt = task_set.updatedAt = task_set.createdAt
        task_set._local_reported_at = task_set.createdAt
        return task_set

    # LEAVES MOTO'S PUBLIC API: moto's UpdateTaskSet does not move `updatedAt`.
    def update_task_set(self: Any, cluster: str, service: str, task_set: str, scale: dict[str, Any]) -> Any:
        task_set_obj = original_update(self, cluster, service, task_set, scale)
        task_set_obj.updatedAt = _now()
        return task_set_obj

    # LEAVES MOTO'S PUBLIC API: moto's ListTasks ignores serviceName.
    def list_tasks(self: Any, cluster_str: Any = None, container_instance: Any = None, family: Any = None,
                   started_by: Any = None, service_name: str | None = None, desiredStatus: Any = None) -> Any:  # noqa: N803 - moto's name
        tasks = original_list_tasks(self, cluster_str, container_instance, family, started_by, service_name,
                                    desiredStatus)
        if service_name:
            tasks = [t for t in tasks if t.group == f"service:{service_name.rsplit('/', 1)[-1]}"]
        return tasks

    original_describe_services = backend.describe_services

    # LEAVES MOTO'S PUBLIC API: with no agent reporting for a service (no data plane runs), the
    # local ECS plays an ideal one itself, once the stale moment after a change is over: every
    # computed task RUNNING and healthy in its target group, STEADY_STATE reported then.
    def describe_services(self: Any, cluster_str: str, service_names_or_arns: list[str]) -> Any:
        with _lock:
            native_ecs.REGISTRY.tick()
        result = original_describe_services(self, cluster_str, service_names_or_arns)
        services = result[0] if isinstance(result, tuple) else result
        for service in services:
            if not getattr(service, "_local_agent", False) and service.task_sets:
                try:
                    _ideal_agent(self, service)
                except Exception:  # noqa: BLE001 - moto's own answer stands if the stand-in fails
                    pass
        return result

    original_run_task = backend.run_task

    # LEAVES MOTO'S PUBLIC API: moto's RunTask records tasks RUNNING at once (exit code 0, only the
    # first container) and nothing runs them. Here they wait, PROVISIONING, for an agent to run them.
    def run_task(self: Any, *args: Any, **kwargs: Any) -> Any:
        tasks = original_run_task(self, *args, **kwargs)
        for task in tasks:
            _make_one_off(self, task)
        return tasks

    original_describe_tasks = backend.describe_tasks

    # Not a change of moto's answer: DescribeTasks answers from copies taken under the lock the
    # agent's reports are written under. moto's server answers each request on its own thread and
    # serialises the task after the backend call, so without them a task could be read STOPPED
    # before its containers' exit codes were written.
    def describe_tasks(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            return [_snapshot(task) for task in original_describe_tasks(self, *args, **kwargs)]

    _install_native(backend)
    backend.describe_tasks = describe_tasks  # type: ignore[method-assign]
    backend.run_task = run_task  # type: ignore[method-assign]
    backend.describe_services = describe_services  # type: ignore[method-assign]
    backend.create_task_set = create_task_set  # type: ignore[method-assign]
    backend.update_task_set = update_task_set  # type: ignore[method-assign]
    backend.list_tasks = list_tasks  # type: ignore[method-assign]

    original_health_for = elbv2_models.FakeTargetGroup.health_for

    # LEAVES MOTO'S PUBLIC API: moto calls every registered IP target healthy.
    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        local = getattr(self, "_local_health", {}).get(target["Id"])
        if local is None:
            return original_health_for(self, target, ec2_backend)
        state, reason, description = local
        port = self.targets.get(target["Id"], {}).get("Port", self.port)
        return elbv2_models.FakeHealthStatus(target["Id"], port, self.health_check_port, state, reason, description)

    elbv2_models.FakeTargetGroup.health_for = health_for  # type: ignore[method-assign]


def _snapshot(task: Any) -> Any:
    """A copy of a task and its containers, as they are now."""
    taken = copy.copy(task)
    taken.containers = [copy.copy(c) for c in task.containers]
    return taken


def _install_native(backend: Any) -> None:
    """Native service deployments (controller.testing.native_ecs) behind moto's ECS API."""
    from moto.ecs.exceptions import ECSException
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.core.responses import ActionResult
    from moto.elbv2.models import elbv2_backends

    registry = native_ecs.REGISTRY
    registry.elbv2 = lambda region: elbv2_backends[ACCOUNT_ID][region]
    responses: Any = EC2ContainerServiceResponse

    def refusing(call: Any) -> Any:
        try:
            with _lock:
                return call()
        except native_ecs.NativeError as exc:
            raise ECSException(exc.code, exc.message) from None

    original_create_service = responses.create_service

    # LEAVES MOTO'S PUBLIC API: moto's CreateService drops `deploymentConfiguration` (and so every
    # strategy); here it is kept, checked, and the first service revision and deployment recorded.
    def create_service(self: Any) -> Any:
        config = self._get_param("deploymentConfiguration")
        refusing(lambda: native_ecs.validate(config, self._get_param("loadBalancers") or []))
        result = original_create_service(self)
        service = result.result["service"]
        with _lock:
            for key in [k for k, v in registry.deployments.items() if v.service.arn == service.arn]:
                del registry.deployments[key]  # a service of the same name before a reset
            registry.by_service.pop(service.arn, None)
            registry.current.pop(service.arn, None)
        refusing(lambda: registry.on_create(service, config))
        return result

    original_update_service = backend.update_service

    # LEAVES MOTO'S PUBLIC API: moto's UpdateService only stores the fields; ECS starts a service
    # deployment, which the local ECS then walks (native_ecs.Registry).
    def update_service(self: Any, service_properties: dict[str, Any]) -> Any:
        props = dict(service_properties)
        service = self._get_service(props.get("cluster", "default"), props["service"].split("/")[-1])
        config = props.get("deployment_configuration")
        if config is None:
            config = getattr(service, "deployment_configuration", None)
        refusing(lambda: native_ecs.validate(config, props.get("load_balancers") or service.load_balancers or []))
        old_task_definition = service.task_definition
        force = bool(props.get("force_new_deployment"))
        updated = original_update_service(self, service_properties)
        refusing(lambda: registry.on_update(updated, old_task_definition, force))
        return updated

    # LEAVES MOTO'S PUBLIC API from here: moto has none of these ECS actions.
    def continue_service_deployment(self: Any) -> Any:
        arn = self._get_param("serviceDeploymentArn")
        refusing(lambda: registry.continue_deployment(arn, self._get_param("hookId"),
                                                      self._get_param("action") or "CONTINUE"))
        return ActionResult({"serviceDeploymentArn": arn})

    def stop_service_deployment(self: Any) -> Any:
        arn = self._get_param("serviceDeploymentArn")
        refusing(lambda: registry.stop_deployment(arn, self._get_param("stopType") or "ROLLBACK"))
        return ActionResult({"serviceDeploymentArn": arn})

    def describe_service_deployments(self: Any) -> Any:
        arns = self._get_param("serviceDeploymentArns") or []

        def describe() -> dict[str, Any]:
            if len(arns) > 20:  # API_DescribeServiceDeployments: "a maximum of 20 ARNs"
                raise native_ecs.NativeError("InvalidParameterException", "At most 20 service deployment ARNs")
            registry.tick()
            found = [registry.deployments[a].describe() for a in arns if a in registry.deployments]
            return {"serviceDeployments": found,
                    "failures": [{"arn": a, "reason": "MISSING"} for a in arns if a not in registry.deployments]}

        return ActionResult(refusing(describe))

    def list_service_deployments(self: Any) -> Any:
        cluster = self._get_param("cluster", "default")
        name = self._get_param("service").split("/")[-1]
        statuses = self._get_param("status")
        service = self.ecs_backend._get_service(cluster, name)

        def listed() -> dict[str, Any]:
            registry.tick()
            return {"serviceDeployments": registry.list_for(service.arn, statuses)}

        return ActionResult(refusing(listed))

    def describe_service_revisions(self: Any) -> Any:
        found, failures = refusing(lambda: registry.describe_revisions(self._get_param("serviceRevisionArns") or []))
        return ActionResult({"serviceRevisions": found, "failures": failures})

    responses.create_service = create_service
    responses.continue_service_deployment = continue_service_deployment
    responses.stop_service_deployment = stop_service_deployment
    responses.describe_service_deployments = describe_service_deployments
    responses.list_service_deployments = list_service_deployments
    responses.describe_service_revisions = describe_service_revisions
    backend.update_service = update_service
    native_ecs.start_ticker(_lock)


def _local_task_class() -> Any:
    from moto.ecs.models import Task

    class LocalTask(Task):
        """A task whose state the agent sets: moto's managed-state progression is switched off."""

        # moto's model metaclass files each model under the service its module names.
        __module__ = "moto.ecs.models"

        @property
        def status(self) -> str | None:
            return self._local_status

        @status.setter
        def status(self, value: str) -> None:
            self._local_status = value

        def advance(self) -> None:
            pass

    return LocalTask


_LocalTask: Any = None


def _local_task() -> Any:
    global _LocalTask
    with _lock:
        if _LocalTask is None:
            _LocalTask = _local_task_class()
        return _LocalTask


def _make_one_off(ecs: Any, task: Any) -> None:
    """Turn moto's just-run task into one an agent runs (LEAVES MOTO'S PUBLIC API: its model objects)."""
    from moto.ecs.models import Container

    make_container: Any = Container  # moto's model class (abstract to mypy: CloudFormation methods)
    td = ecs.describe_task_definition(task.task_definition_arn)
    containers = []
    for definition in td.container_definitions:
        container = make_container(td)
        container.name = definition.get("name")
        container.image = definition.get("image")
        container.command = definition.get("command")
        container.environment = definition.get("environment")
        container.last_status = "PENDING"
        container.exitCode = None
        containers.append(container)
    with _lock:
        task.__class__ = _local_task()
        task.status = "PROVISIONING"
        task.created_at = _now()
        task.containers = containers or task.containers
        task._local_one_off = True
        task._local_agent_id = None


def _apply_one_off(ecs: Any, cluster: Any, entries: list[dict[str, Any]], now: datetime) -> dict[str, bool]:
    """Write the agent's one-off task states; {task ARN: claimed by this agent}.

    entry = {"arn", "agent", "container", "last_status", "desired_status", "exit_code",
             "stopped_reason", "stop_code", "container_reason"}. The first agent to report a task
    owns it; another agent's report of it is refused (False), so a task runs once.
    """
    tasks = ecs.tasks.get(cluster.name, {})
    claimed: dict[str, bool] = {}
    for e in entries:
        task = tasks.get(e["arn"])
        if task is None or not getattr(task, "_local_one_off", False):
            claimed[e["arn"]] = False
            continue
        if task._local_agent_id not in (None, e["agent"]):
            claimed[e["arn"]] = False
            continue
        task._local_agent_id = e["agent"]
        claimed[e["arn"]] = True
        previous = task.status
        if previous == "STOPPED":
            continue  # stopped is final
        task.status = e["last_status"]
        task.desired_status = e["desired_status"]
        if task.status in ("PENDING", "RUNNING", "STOPPED") and previous == "PROVISIONING":
            task.pull_started_at = now
        if task.status in ("RUNNING", "STOPPED") and previous != "RUNNING":
            task.started_at = now
        for container in task.containers:
            container.last_status = task.status
        if task.status == "STOPPED":
            task.stopped_at = now
            task.stopped_reason = e.get("stopped_reason") or ""
            task.stop_code = e.get("stop_code")
            for container in task.containers:
                if container.name == e.get("container"):
                    container.exitCode = e.get("exit_code")
                    container.reason = e.get("container_reason")
    return claimed

# The health reasons ELB gives for each state (DescribeTargetHealth's Reason / Description).
_HEALTH_REASONS = {
    "initial": ("Elb.InitialHealthChecking", "Initial health checks in progress"),
    "healthy": (None, None),
    "unhealthy": ("Target.ResponseCodeMismatch", "Health checks failed with these codes: [503]"),
    "draining": ("Target.DeregistrationInProgress", "Target deregistration is in progress"),
}


def apply_report(report: dict[str, Any]) -> dict[str, Any]:
    """Write one agent report into moto's models; returns {task key: {arn, ip}} (and, for one-off
    tasks, ONE_OFF_KEY: {task ARN: claimed}).

    report = {"region", "cluster", "service",
              "task_sets": [{"id", "computed_desired", "running", "pending", "stability"}],
              "service_counts": {"running", "pending"} | None,       # an ECS-controller service
              "tasks": [{"key", "task_definition", "started_by", "last_status", "desired_status",
                         "target_group", "port", "health", "stopped_reason", "stop_code",
                         "exit_code", "container_reason"}],
              "one_off": [...]}                                        # see _apply_one_off
    """
    from moto.ecs.models import ecs_backends
    from moto.elbv2.models import elbv2_backends

    local_task = _local_task()
    with _lock:
        region = report["region"]
        ecs = ecs_backends[ACCOUNT_ID][region]
        elbv2 = elbv2_backends[ACCOUNT_ID][region]
        cluster = ecs._get_cluster(report["cluster"])
        service: Any = ecs._get_service(report["cluster"], report["service"])
        if not report.get("_ideal") and not getattr(service, "_local_agent", False):
            # A real agent takes over from the stand-in: its tasks stop, their targets go.
            service._local_agent = True
            for key, task in list(getattr(service, "_local_tasks", {}).items()):
                if key.startswith("ideal:"):
                    _stop_ideal(elbv2, task)
        now = _now()
        stale = stale_seconds()
        # LEAVES MOTO'S PUBLIC API from here on: moto's model objects are written directly.
        by_id: dict[str, Any] = {ts.id: ts for ts in service.task_sets}
        for entry in report.get("task_sets", []):
            ts = by_id.get(entry["id"])
            if ts is None:
                continue
            if (now - ts.updatedAt).total_seconds() < stale:
                continue  # ECS has not noticed the change yet: the old figures stand
            changed_since_report = ts.updatedAt >= getattr(ts, "_local_reported_at", ts.createdAt)
            ts.running_count = int(entry["running"])
            ts.pending_count = int(entry["pending"])
            ts.computed_desired_count = int(entry["computed_desired"])
            if entry["stability"] != ts.stabilityStatus or changed_since_report:
                ts.stabilityStatus = entry["stability"]
                ts.stabilityStatusAt = now
            ts._local_reported_at = now
        counts = report.get("service_counts")
        if counts is not None:
            service.running_count = int(counts["running"])
            service.pending_count = int(counts["pending"])
            for d in service.deployments:
                if d.get("status") == "PRIMARY":
                    d["runningCount"] = service.running_count
                    d["pendingCount"] = service.pending_count
                    d["rolloutState"] = "COMPLETED" if counts.get("steady") else "IN_PROGRESS"
                    d["updatedAt"] = now

        if report.get("revisions") is not None:
            native_ecs.REGISTRY.apply_revision_report(service, report["revisions"])

        tasks = ecs.tasks.setdefault(cluster.name, {})
        known: dict[str, Any] = getattr(service, "_local_tasks", {})
        service._local_tasks = known
        out: dict[str, Any] = {}
        for t in report.get("tasks", []):
            task = known.get(t["key"])
            if task is None:
                td = ecs.describe_task_definition(t["task_definition"])
                network = service.network_configuration or None
                ts_obj = by_id.get(t.get("started_by", ""))
                if ts_obj is not None and ts_obj.network_configuration:
                    network = ts_obj.network_configuration
                task = local_task(cluster, td, None, None, ecs, f"service:{service.name}", launch_type="FARGATE",
                                  started_by=t.get("started_by", ""), networking_configuration=network)
                task.status = "PROVISIONING"
                task.created_at = now
                known[t["key"]] = task
                tasks[task.task_arn] = task
            previous = task.status
            task.status = t["last_status"]
            task.desired_status = t["desired_status"]
            container = task.containers[0]
            if task.status == "RUNNING" and previous != "RUNNING":
                task.started_at = now
                container.last_status = "RUNNING"
            if task.status == "PENDING" and previous == "PROVISIONING":
                task.pull_started_at = now
            if task.status == "STOPPED" and previous != "STOPPED":
                task.stopped_at = now
                task.stopped_reason = t.get("stopped_reason") or ""
                task.stop_code = t.get("stop_code")
                container.last_status = "STOPPED"
                container.exitCode = t.get("exit_code")
                container.reason = t.get("container_reason")
            ip = _task_ip(task)
            tg: Any = elbv2.target_groups.get(t["target_group"]) if t.get("target_group") else None
            if tg is not None and ip:
                health: dict[str, Any] = getattr(tg, "_local_health", {})
                tg._local_health = health
                state = t.get("health")
                if state in ("initial", "healthy", "unhealthy", "draining"):
                    tg.targets[ip] = {"Id": ip, "Port": t.get("port") or tg.port}
                    reason, description = _HEALTH_REASONS[state]
                    health[ip] = (state, reason, description)
                elif ip in tg.targets:
                    tg.targets.pop(ip)
                    health.pop(ip, None)
                    tg.deregistered_targets[ip] = {"Id": ip}
            out[t["key"]] = {"arn": task.task_arn, "ip": ip}
        # A task the agent no longer reports is forgotten by the agent; ECS keeps it listed. (A
        # report of one-off tasks only, the agent's last, says nothing of the service's tasks.)
        for key in [k for k in known if "tasks" in report and k not in {t["key"] for t in report["tasks"]}]:
            del known[key]
        if report.get("one_off"):
            out[ONE_OFF_KEY] = _apply_one_off(ecs, cluster, report["one_off"], now)
        return out


def _stop_ideal(elbv2: Any, task: Any) -> None:
    task.status = "STOPPED"
    task.desired_status = "STOPPED"
    task.stopped_reason = "Scaling activity initiated by (deployment)"
    task.stop_code = "ServiceSchedulerInitiated"
    ip = _task_ip(task)
    for tg in elbv2.target_groups.values():
        if ip and ip in tg.targets:
            tg.targets.pop(ip)
            getattr(tg, "_local_health", {}).pop(ip, None)
            tg.deregistered_targets[ip] = {"Id": ip}


def _ideal_agent(ecs: Any, service: Any) -> None:
    """Report, for an agentless service, that every computed task runs and is healthy."""
    now = _now()
    stale = stale_seconds()
    tasks: list[dict[str, Any]] = []
    entries = []
    for ts in service.task_sets:
        if (now - ts.updatedAt).total_seconds() < stale:
            return  # the old figures stand for every task set until ECS notices
        scale = float((ts.scale or {}).get("value", 0.0))
        computed = 0 if scale <= 0 or service.desired_count <= 0 else max(
            1, math.ceil(service.desired_count * scale / 100.0 - 1e-9))
        entries.append({"id": ts.id, "computed_desired": computed, "running": computed, "pending": 0,
                        "stability": "STEADY_STATE"})
        lb = (ts.load_balancers or [{}])[0]
        slots = getattr(ts, "_local_ideal_slots", 0)
        for i in range(max(slots, computed)):
            running = i < computed
            tasks.append({"key": f"ideal:{ts.id}:{i}", "task_definition": ts.task_definition, "started_by": ts.id,
                          "last_status": "RUNNING" if running else "STOPPED",
                          "desired_status": "RUNNING" if running else "STOPPED",
                          "target_group": lb.get("targetGroupArn"), "port": lb.get("containerPort"),
                          "health": "healthy" if running else None,
                          "stopped_reason": None if running else "Scaling activity initiated by (deployment)",
                          "stop_code": None if running else "ServiceSchedulerInitiated"})
        ts._local_ideal_slots = computed
    from moto.elbv2.models import elbv2_backends

    live = {ts.id for ts in service.task_sets}
    with _lock:
        for key, task in list(getattr(service, "_local_tasks", {}).items()):
            if key.startswith("ideal:") and key.split(":")[1] not in live and task.status != "STOPPED":
                _stop_ideal(elbv2_backends[ACCOUNT_ID][service.region_name], task)  # its task set is gone
    # Only when something changed since the last report, so stabilityStatusAt stays put.
    fresh = [ts for ts in service.task_sets if ts.updatedAt >= getattr(ts, "_local_reported_at", ts.createdAt)]
    if not fresh:
        return
    region = service.region_name
    # The known ideal tasks are kept across calls: drop those of task sets that are gone.
    apply_report({"region": region, "cluster": service.cluster_name, "service": service.name,
                  "task_sets": entries, "service_counts": None, "tasks": tasks, "_ideal": True})


def _task_ip(task: Any) -> str | None:
    for attachment in task.attachments:
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                return str(detail["value"])
    return None


class ReportMiddleware:
    """WSGI: `POST /_local-ecs/v1/report` is the agent's; everything else is moto's."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != REPORT_PATH:
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            report = json.loads(environ["wsgi.input"].read(length))
            body, status = json.dumps(apply_report(report)).encode(), "200 OK"
        except Exception as exc:  # noqa: BLE001 - the agent gets the error, moto keeps serving
            import traceback
            body, status = json.dumps({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}).encode(), "400 Bad Request"
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _lighten_dispatch() -> None:
    """Two costs of moto's server that change no answer, measured with py-spy under the test suite
    (about 15% of this process's CPU): its dispatcher lists moto's package directory, a listdir and a
    stat per service, on every request to learn the service names (they do not change while it
    runs); and werkzeug logs a line per request (errors are still logged)."""
    import logging

    from moto import backends

    names = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: names
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    from moto.moto_server.threaded_moto_server import MotoRequestHandler  # type: ignore[attr-defined]
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(prog="python -m controller.testing.local_ecs")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    install()
    _lighten_dispatch()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]
    run_simple(args.host, args.port, ReportMiddleware(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    _started = time.monotonic()
    main()
