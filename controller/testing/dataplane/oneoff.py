"""The local ECS agent's one-off tasks: what `RunTask` starts, run as local processes.

ECS runs a one-off task (a database migration, a batch job) as its task definition's containers
with the command and environment of `overrides.containerOverrides`, and records its exit code when
it stops. Here the data plane (`supervisor.DataPlane`) plays that agent for its cluster:

- every poll it lists the cluster's tasks and picks up new ones that belong to no service (moto's
  `group` is not `service:...`) and are still PROVISIONING, which the local ECS makes every task
  `RunTask` records (`controller.testing.local_ecs`);
- it claims each through the local ECS's report route; only the first agent to ask gets a task,
  so two data planes on one cluster never run a task twice;
- the claimed task's command runs as a real local subprocess (no shell unless the command is one,
  e.g. `sh -c 'exit 3'`), in its own empty directory under the data plane's workdir, with the
  container's environment from the task definition and the override, and PATH, HOME and LANG;
- it is reported PENDING, RUNNING, then STOPPED with "Essential container in task exited" and the
  process's exit code (128 + N for a signal, as Docker reports it); an image missing from the
  emulator's ECR is STOPPED with CannotPullContainerError and no exit code, a command that cannot
  be started with CannotStartContainerError;
- a task still running after `timeout` seconds is killed (the machine's safety; ECS has no such
  bound), and so is every task still running when the data plane stops, which then reports it
  STOPPED (its host is gone) rather than leave it RUNNING for ever.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EXITED = "Essential container in task exited"
HOST_STOPPED = "Host of the task stopped: the local ECS agent (data plane) stopped"


@dataclass
class OneOffTask:
    arn: str
    task_id: str
    container: str
    image: str | None
    command: list[str]
    environment: dict[str, str]
    claimed: bool = False
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    last_status: str = "PENDING"
    exit_code: int | None = None
    stopped_reason: str = ""
    stop_code: str | None = None
    container_reason: str | None = None
    final_reported: bool = False
    directory: Path | None = None

    def stop(self, reason: str, stop_code: str, exit_code: int | None = None,
             container_reason: str | None = None) -> None:
        self.last_status, self.stopped_reason, self.stop_code = "STOPPED", reason, stop_code
        self.exit_code, self.container_reason = exit_code, container_reason


@dataclass(frozen=True)
class OneOffInfo:
    """What a caller may see of a one-off task this agent ran."""

    arn: str
    command: tuple[str, ...]
    last_status: str
    exit_code: int | None
    pid: int | None
    directory: Path | None


def exit_code_of(returncode: int) -> int:
    """Docker's exit code for a process's return code: a signal N is 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode


@dataclass
class OneOffTasks:
    ecs: Any
    cluster: str
    workdir: Path
    agent_id: str
    pull_error: Callable[[str | None], str | None]
    timeout: float = 900.0
    tasks: dict[str, OneOffTask] = field(default_factory=dict)
    ignored: set[str] = field(default_factory=set)  # task ARNs that are not ours to run
    _definitions: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- reading the cluster (network: outside the data plane's lock) ----------------------------

    def discover(self) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
        """New tasks waiting for an agent: (DescribeTasks entry, its task definition)."""
        arns: list[str] = []
        token: str | None = None
        while True:
            page = self.ecs.list_tasks(cluster=self.cluster, desiredStatus="RUNNING",
                                       **({"nextToken": token} if token else {}))
            arns += page.get("taskArns", [])
            token = page.get("nextToken")
            if not token:
                break
        with self._lock:
            new = [a for a in arns if a not in self.tasks and a not in self.ignored]
        found: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
        for i in range(0, len(new), 100):
            for t in self.ecs.describe_tasks(cluster=self.cluster, tasks=new[i:i + 100]).get("tasks", []):
                if str(t.get("group") or "").startswith("service:") or t.get("lastStatus") != "PROVISIONING":
                    with self._lock:
                        self.ignored.add(t["taskArn"])  # a service's task, or another agent's
                    continue
                found.append((t, self._definition(t["taskDefinitionArn"])))
        return found

    def _definition(self, arn: str) -> Mapping[str, Any]:
        if arn not in self._definitions:  # revisions never change
            self._definitions[arn] = self.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        return self._definitions[arn]

    # -- the agent's work (under the data plane's lock) --------------------------------------------

    def adopt(self, found: list[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> None:
        """Record new tasks, to be claimed by the next report."""
        with self._lock:
            for task, td in found:
                if task["taskArn"] not in self.tasks:
                    self.tasks[task["taskArn"]] = _resolve(task, td)

    def step(self) -> None:
        """Start claimed tasks, notice the ones that exited, kill the ones over time."""
        now = time.monotonic()
        with self._lock:
            for task in self.tasks.values():
                if not task.claimed or task.last_status == "STOPPED":
                    continue
                if task.process is None:
                    self._start(task, now)
                    continue
                code = task.process.poll()
                if code is None and now - task.started > self.timeout:
                    log.warning("one-off task %s still runs after %.0fs: killed", task.task_id, self.timeout)
                    _kill(task.process)
                    task.container_reason = f"killed by the local ECS agent after {self.timeout:g}s"
                    code = task.process.returncode
                if code is not None:
                    log.info("one-off task %s exited with %s", task.task_id, code)
                    task.stop(EXITED, "EssentialContainerExited", exit_code_of(code), task.container_reason)

    def _start(self, task: OneOffTask, now: float) -> None:
        pull_error = self.pull_error(task.image)
        if pull_error is not None:
            reason = f"CannotPullContainerError: {pull_error}"
            task.stop(reason, "TaskFailedToStart", None, reason)
            return
        if not task.command:
            reason = "CannotStartContainerError: the local ECS runs a task's command, and this task has none"
            task.stop(reason, "TaskFailedToStart", None, reason)
            return
        task.directory = self.workdir / "tasks" / task.task_id
        task.directory.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(task.directory), "LANG": "C.UTF-8",
               **task.environment}
        try:
            with open(task.directory / "output.log", "ab") as out:
                task.process = subprocess.Popen(task.command, cwd=task.directory, env=env, stdout=out,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True)
        except OSError as exc:
            reason = f"CannotStartContainerError: {exc.strerror or exc}: {task.command[0]}"
            task.stop(reason, "TaskFailedToStart", None, reason)
            return
        task.started = now
        task.last_status = "RUNNING"
        log.info("one-off task %s runs %s (pid %d)", task.task_id, task.command, task.process.pid)

    def report(self) -> list[dict[str, Any]]:
        """Entries for the local ECS's report route: a new task claims it; a stopped one until told."""
        with self._lock:
            return [{"arn": t.arn, "agent": self.agent_id, "container": t.container, "last_status": t.last_status,
                     "desired_status": "STOPPED" if t.last_status == "STOPPED" else "RUNNING",
                     "exit_code": t.exit_code, "stopped_reason": t.stopped_reason, "stop_code": t.stop_code,
                     "container_reason": t.container_reason}
                    for t in self.tasks.values() if not t.final_reported]

    def answer(self, claimed: Mapping[str, bool], sent: list[dict[str, Any]]) -> None:
        """The local ECS's answer to a report: tasks claimed by another agent are dropped."""
        stopped = {e["arn"] for e in sent if e["last_status"] == "STOPPED"}
        with self._lock:
            for arn, ours in claimed.items():
                task = self.tasks.get(arn)
                if task is None:
                    continue
                if not ours:
                    if task.process is not None and task.process.poll() is None:
                        _kill(task.process)
                    del self.tasks[arn]
                    self.ignored.add(arn)
                    continue
                task.claimed = True
                if arn in stopped:
                    task.final_reported = True

    def stop(self) -> bool:
        """Kill every task still running, now STOPPED with its host; True if there was one."""
        killed = False
        with self._lock:
            for task in self.tasks.values():
                if task.process is not None and task.process.poll() is None:
                    _kill(task.process)
                    task.stop(HOST_STOPPED, "TerminationNotice", exit_code_of(task.process.returncode),
                              "the local ECS agent stopped")
                    killed = True
        return killed

    def info(self) -> list[OneOffInfo]:
        with self._lock:
            return [OneOffInfo(t.arn, tuple(t.command), t.last_status, t.exit_code,
                               t.process.pid if t.process else None, t.directory)
                    for t in self.tasks.values() if t.claimed]


def _resolve(task: Mapping[str, Any], td: Mapping[str, Any]) -> OneOffTask:
    """The container, command and environment a task runs: the override's, over the definition's."""
    definitions: list[Mapping[str, Any]] = td.get("containerDefinitions", [])
    overrides: list[Mapping[str, Any]] = (task.get("overrides") or {}).get("containerOverrides") or []
    override = next((o for o in overrides if o.get("command")), overrides[0] if overrides else {})
    name = override.get("name") or next(
        (d.get("name") for d in definitions if d.get("essential", True)), definitions[0].get("name") if definitions else "")
    definition = next((d for d in definitions if d.get("name") == name), {})
    env = {e["name"]: e.get("value", "") for e in definition.get("environment") or []}
    env.update({e["name"]: e.get("value", "") for e in override.get("environment") or []})
    return OneOffTask(arn=task["taskArn"], task_id=task["taskArn"].rsplit("/", 1)[-1], container=str(name or ""),
                      image=definition.get("image"), command=list(override.get("command") or definition.get("command") or []),
                      environment=env)


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
