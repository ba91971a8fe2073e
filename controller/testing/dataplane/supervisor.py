"""The data plane's supervisor: keeps one workload process per ECS task set that moto records.

`DataPlane` polls moto (DescribeServices and DescribeListeners, every `poll_interval` seconds) and
converges the local processes to it, the way ECS converges tasks to a task set:

- a task set with scale > 0 gets one workload serving the version of its image tag
  (`repo/pratiko-backend:1.4.0` -> `1.4.0`, the image of the container the task set's load
  balancer entry names); a task set that is gone or scaled to 0 loses it;
- an ECS-controller service (no task sets) gets one workload for its task definition's image; on
  a new task definition the old workload serves until the new one is ready, as in a rolling update;
- each workload is registered with Prometheus by file-based service discovery,
  `<targets_dir>/<task set>.json`, written atomically, as soon as it is started, like a task that
  service discovery knows from RUNNING on, before a load balancer sends it traffic. Prometheus
  passes discovered targets on to its scrapers at most every 5 s, so registering only once the
  workload serves would leave its first seconds of traffic unmeasured; a removed workload is
  unregistered and taken out of routing at once, and stopped after `deregistration_delay`
  (in-flight requests finish);
- a workload that crashes is restarted, with back-off;
- the balancer's routing table (the listener's rules from DescribeRules, its default action's
  weights, ready workloads per target group) is replaced after every poll, so a weight or rule
  change reaches traffic within one poll interval. Only this service's workloads are targets: a
  rule forwarding to another service's target group answers 503 here;
- with `test_listener_arn`, a second balancer (`test_balancer_url`, its own request log) follows
  the load balancer's test listener the same way, over the same workloads: the listener an ECS
  blue/green's test listener rule sits on, which sends test traffic to the green revision before
  production moves (AWS: "Amazon ECS blue/green deployments", test traffic shift).

As the local ECS's agent it then reports, every poll, what runs: one task per computed desired
task (ceil(desiredCount * scale)), all served by the task set's one process; PENDING until the
process listens, RUNNING after; each task's target initial until `/health` answers 200 (and, for a
task added by a scale-up, the version's `start_seconds` have passed), healthy, then unhealthy
after two failed checks, when ECS stops it ("Task failed ELB health checks") and starts another.
An exited process stops its tasks ("Essential container in task exited", its exit code); an ECR
image missing from the emulator's ECR never starts ("CannotPullContainerError"); both are retried
with back-off (1, 2, 4 ... 30 s). A task set's runningCount / pendingCount / stabilityStatus follow.
It also runs the cluster's one-off tasks (`RunTask`: a migration, a batch job) as local processes
and reports their exit codes (`oneoff`).
It writes only through the local ECS's report route, never the controller's state.
A DataPlane runs once (start, stop). Used as a context manager
it leaves no process behind; each workload also exits by itself when this process dies.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import subprocess
import urllib.error
import urllib.request
import sys
import uuid
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

import controller
from controller.aws.shapes import ecr_reference
from controller.testing.dataplane.balancer import Balancer, Router, Target
from controller.testing.dataplane.oneoff import OneOffInfo, OneOffTasks
from controller.testing.dataplane.rules import Rule, forward_weights, rules_from
from controller.testing.dataplane.workload import behaviour_for
from controller.testing.local_ecs import ONE_OFF_KEY, REPORT_PATH
from controller.testing.ports import free_port
from controller.testing.prometheus import register_target, unregister_target

log = logging.getLogger(__name__)

# How long a replaced workload of an ECS-controller service may keep serving while its replacement
# starts; a workload starts in well under a second, so this only bounds a replacement that crashes.
DRAIN_TIMEOUT = 15.0


def version_from_image(image: str | None) -> str:
    """The version an image runs, from its tag.

    `123.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:1.4.0` -> `1.4.0`; `v1.4.0` -> `1.4.0`;
    `localhost:5000/app` (no tag) -> `latest`; `app@sha256:abcd...` -> `sha256:abcd...`.
    """
    if not image:
        return "unknown"
    if "@" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "latest"
    tag = last.rsplit(":", 1)[1]
    return tag[1:] if re.fullmatch(r"v\d+(\.\d+)*.*", tag) else tag


def weights_from_listener(listener: Mapping[str, Any]) -> dict[str, int]:
    """Target group ARN -> weight of the listener's default forward action.

    A forward action with one `TargetGroupArn` and no ForwardConfig sends it everything.
    """
    return forward_weights(listener.get("DefaultActions", []))


@dataclass(frozen=True)
class DesiredWorkload:
    """One workload the world asks for: a task set with scale > 0, or an ECS-controller service."""

    key: str  # the task set id (or `service:<task definition>`), stable while the task set lives
    version: str
    image: str | None
    target_group: str | None
    task_set: str
    # What ECS computes from the service's desiredCount and the task set's scale: how many tasks
    # the one workload process stands for. Not part of the identity: a scale change keeps the process.
    count: int = field(default=1, compare=False)
    task_definition: str = field(default="", compare=False)
    container_port: int | None = field(default=None, compare=False)
    task_set_id: str | None = field(default=None, compare=False)
    revision_arn: str | None = field(default=None, compare=False)  # a native deployment's service revision


NATIVE_STRATEGIES = ("BLUE_GREEN", "CANARY", "LINEAR")


def desired_workloads(service: Mapping[str, Any], image_of: Callable[[str, str | None], str | None],
                      revision_of: Callable[[str], Mapping[str, Any] | None] | None = None) -> list[DesiredWorkload]:
    """The workloads a DescribeServices entry asks for; `image_of(task_definition, container)`.

    A service that ECS deploys natively (strategy BLUE_GREEN, CANARY or LINEAR) runs one workload
    per current service revision with requested tasks, in the target group the revision resolves
    to (`revision_of(arn)`: DescribeServiceRevisions' entry), as blue and green run side by side.
    """
    if service.get("status", "ACTIVE") != "ACTIVE":
        return []
    out: list[DesiredWorkload] = []
    controller_type = (service.get("deploymentController") or {}).get("type", "ECS")
    strategy = (service.get("deploymentConfiguration") or {}).get("strategy")
    if controller_type == "ECS" and strategy in NATIVE_STRATEGIES and revision_of is not None:
        for current in service.get("currentServiceRevisions") or []:
            count = int(current.get("requestedTaskCount") or 0)
            revision = revision_of(current["arn"]) if count > 0 else None
            if revision is None:
                continue
            lbs = revision.get("loadBalancers") or [{}]
            resolved = ((revision.get("resolvedConfiguration") or {}).get("loadBalancers") or [{}])[0]
            image = image_of(revision["taskDefinition"], lbs[0].get("containerName"))
            short = current["arn"].rsplit("/", 1)[-1]
            out.append(DesiredWorkload(
                key=f"revision:{short}", version=version_from_image(image), image=image,
                target_group=resolved.get("targetGroupArn") or lbs[0].get("targetGroupArn"), task_set=short,
                count=count, task_definition=revision["taskDefinition"], container_port=lbs[0].get("containerPort"),
                revision_arn=current["arn"]))
        return out
    if controller_type == "EXTERNAL" or service.get("taskSets"):
        for ts in service.get("taskSets", []):
            if float((ts.get("scale") or {}).get("value", 0.0)) <= 0.0:
                continue
            lbs = ts.get("loadBalancers") or [{}]
            image = image_of(ts["taskDefinition"], lbs[0].get("containerName"))
            scale = float((ts.get("scale") or {}).get("value", 0.0))
            out.append(
                DesiredWorkload(
                    key=ts["id"],
                    version=version_from_image(image),
                    image=image,
                    target_group=lbs[0].get("targetGroupArn"),
                    task_set=ts["id"],
                    count=computed_desired_count(int(service.get("desiredCount", 0)), scale),
                    task_definition=ts["taskDefinition"],
                    container_port=lbs[0].get("containerPort"),
                    task_set_id=ts["id"],
                )
            )
        return out
    task_definition = service.get("taskDefinition")
    if task_definition and int(service.get("desiredCount", 0)) > 0:
        lbs = service.get("loadBalancers") or [{}]
        image = image_of(task_definition, lbs[0].get("containerName"))
        out.append(
            DesiredWorkload(
                key=f"service:{task_definition.rsplit('/', 1)[-1]}",
                version=version_from_image(image),
                image=image,
                target_group=lbs[0].get("targetGroupArn"),
                task_set=service.get("serviceName", "service"),
                count=int(service.get("desiredCount", 0)),
                task_definition=task_definition,
                container_port=lbs[0].get("containerPort"),
            )
        )
    return out


def computed_desired_count(desired_count: int, scale_percent: float) -> int:
    """ECS's computedDesiredCount of a task set: the service's desired count times its scale, up."""
    if scale_percent <= 0 or desired_count <= 0:
        return 0
    return max(1, math.ceil(desired_count * scale_percent / 100.0 - 1e-9))



def _file_key(key: str) -> str:
    """A file name for a task set id (`ecs-svc/123` holds a slash)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", key)


@dataclass
class RunningWorkload:
    spec: DesiredWorkload
    port: int
    process: subprocess.Popen[bytes] | None  # None: the image could not be pulled
    log_path: Path
    ready: bool = False  # passes its target group's health check (or listens, without one): gets traffic
    restarts: int = 0
    last_start: float = field(default_factory=time.monotonic)
    pull_error: str | None = None
    listening: bool = False  # the container runs: its tasks are RUNNING
    health: str = "initial"  # its target's health: initial | healthy | unhealthy
    failing_checks: int = 0
    slots: int = 0  # how many tasks of its task set it has reported
    slot_started: dict[int, float] = field(default_factory=dict)  # task slot -> when that task started
    start_seconds: float = 0.0  # the version's start time: each task passes its health check after it
    exit_reported: bool = False

    def task_key(self, slot: int) -> str:
        return f"{self.spec.key}#{self.restarts}#{slot}"


@dataclass(frozen=True)
class WorkloadInfo:
    """What a caller may see of a running workload."""

    key: str
    version: str
    port: int
    pid: int | None
    target_group: str | None
    ready: bool

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class DataPlane:
    """Workloads, Prometheus registration and the balancer, following one ECS service in moto."""

    def __init__(
        self,
        endpoint: str | None,
        region: str,
        cluster: str,
        service: str,
        listener_arn: str | None,
        workdir: Path,
        prometheus_targets_dir: Path | None = None,
        behaviour_file: Path | None = None,
        *,
        balancer_port: int = 0,
        request_log: Path | None = None,
        poll_interval: float = 0.25,
        deregistration_delay: float = 3.0,
        ecs_client: Any = None,
        elbv2_client: Any = None,
        ecr_client: Any = None,
        agent: bool | None = None,
        one_off_timeout: float = 900.0,
        test_listener_arn: str | None = None,
    ) -> None:
        self.region = region
        self.cluster = cluster
        self.service = service
        self.listener_arn = listener_arn
        self.workdir = Path(workdir)
        self.targets_dir = Path(prometheus_targets_dir) if prometheus_targets_dir else None
        self.behaviour_file = Path(behaviour_file) if behaviour_file else None
        self.poll_interval = poll_interval
        # Like an ALB target group's deregistration delay (300 s by default on AWS): a removed
        # workload gets no new request but finishes the ones it holds, so a scale-down never shows
        # as 502s. 3 s: a request routed just before the removal may take over a second to be
        # served on a loaded machine (0.5 s let one through as a 502 in a CI run).
        self.deregistration_delay = deregistration_delay
        self.request_log = request_log or self.workdir / "balancer.jsonl"
        self.ecs = ecs_client or _client("ecs", endpoint, region)
        self.elbv2 = elbv2_client or _client("elbv2", endpoint, region)
        self.ecr = ecr_client or _client("ecr", endpoint, region)
        # The local ECS agent: report what runs to the local ECS (controller.testing.local_ecs).
        # On by default against a local endpoint; switched off for good if it answers 404 (plain moto).
        self.endpoint = endpoint
        self.agent = bool(endpoint) if agent is None else agent
        self._reports: dict[str, dict[str, Any]] = {}  # task key -> its last state not yet reported final
        self._task_sets: dict[str, str] = {}  # every task set id moto lists -> its task definition
        self._pulled: set[str] = set()
        self.router = Router()
        self.balancer = Balancer(self.router, log_path=self.request_log, port=balancer_port)
        self.test_listener_arn = test_listener_arn
        self.test_request_log = self.workdir / "balancer-test.jsonl"
        self.test_router = Router()
        self.test_balancer = Balancer(self.test_router, log_path=self.test_request_log) if test_listener_arn else None
        self._test_weights: dict[str, int] = {}
        self._test_rules: list[Rule] = []
        self._images: dict[tuple[str, str | None], str | None] = {}
        self._revisions: dict[str, Mapping[str, Any]] = {}  # service revisions are immutable
        self._running: dict[str, RunningWorkload] = {}
        self._draining: list[tuple[RunningWorkload, float]] = []  # replaced, serving until (deadline)
        self._retiring: list[tuple[RunningWorkload, float]] = []  # not routed, stopped at (time)
        self._weights: dict[str, int] = {}
        self._rules: list[Rule] = []  # the listener's rules other than the default
        self._lock = threading.RLock()  # guards _running against sync_once vs. stop/inspection
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.polls = 0
        self.one_off = OneOffTasks(self.ecs, cluster, self.workdir, f"dataplane-{uuid.uuid4().hex[:12]}",
                                   self._pull_error, one_off_timeout)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def balancer_url(self) -> str:
        return self.balancer.url

    @property
    def test_balancer_url(self) -> str:
        """The test listener's front door (only with `test_listener_arn`)."""
        if self.test_balancer is None:
            raise ValueError("this data plane follows no test listener")
        return self.test_balancer.url

    def start(self) -> "DataPlane":
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "workloads").mkdir(exist_ok=True)
        if self.targets_dir is not None:
            self.targets_dir.mkdir(parents=True, exist_ok=True)
        self.balancer.start()
        if self.test_balancer is not None:
            self.test_balancer.start()
        self._stop.clear()
        try:
            self.sync_once()
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._loop, name="dataplane-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._lock:
            running = [*self._running.values(), *(w for w, _ in self._draining), *(w for w, _ in self._retiring)]
            self._running.clear()
            self._draining.clear()
            self._retiring.clear()
        self._stop_processes(running)
        if self.one_off.stop() and self.agent:
            # Their host is gone: ECS says so, rather than listing them RUNNING for ever.
            self._send_report({"region": self.region, "cluster": self.cluster, "service": self.service,
                               "one_off": self.one_off.report()})
        self.router.update({}, {})
        self.balancer.stop()
        if self.test_balancer is not None:
            self.test_router.update({}, {})
            self.test_balancer.stop()

    def __enter__(self) -> "DataPlane":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- inspection -------------------------------------------------------------------------

    def workloads(self) -> list[WorkloadInfo]:
        with self._lock:
            return [
                WorkloadInfo(w.spec.key, w.spec.version, w.port, w.process.pid if w.process else None,
                             w.spec.target_group, w.ready)
                for w in self._running.values()
            ]

    def one_off_tasks(self) -> list[OneOffInfo]:
        """The one-off tasks this agent claimed and ran (or runs)."""
        return self.one_off.info()

    @property
    def weights(self) -> dict[str, int]:
        return self.router.weights

    @property
    def test_weights(self) -> dict[str, int]:
        """The test listener's default action weights (empty without a test listener)."""
        return self.test_router.weights

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The listener rules (other than the default) the balancer routes by, in evaluation order."""
        return self.router.rules

    def wait_for(self, check: Callable[["DataPlane"], bool], timeout: float = 20.0, what: str = "data plane") -> None:
        """Block until `check(self)` holds, or raise TimeoutError naming `what`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(self):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{what} not reached after {timeout:.0f}s: workloads={self.workloads()} weights={self.weights} last_error={self.last_error}")

    def wait_serving(self, versions: set[str], timeout: float = 20.0) -> None:
        """Block until exactly `versions` have ready workloads."""
        self.wait_for(lambda dp: {w.version for w in dp.workloads() if w.ready} == versions
                      and all(w.ready for w in dp.workloads()), timeout, f"versions {sorted(versions)} serving")

    # -- the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.sync_once()
            except Exception as exc:  # noqa: BLE001 - the loop must survive anything one poll throws
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("data plane poll failed")

    def sync_once(self) -> None:
        """One poll: read moto, converge processes, refresh Prometheus targets and the router."""
        desired, weights, rules = self._observe()
        test_weights, test_rules = self._observe_listener(self.test_listener_arn) if self.test_listener_arn else (None, None)
        found = self._observe_one_off()
        with self._lock:
            if self._stop.is_set() and self._thread is not None:
                return
            if desired is not None:
                self._converge(desired)
            self.one_off.adopt(found)
            self.one_off.step()
            self._check_health()
            self._finish_draining()
            if weights is not None:
                self._weights = weights
            if rules is not None:
                self._rules = rules
            if test_weights is not None and test_rules is not None:
                self._test_weights, self._test_rules = test_weights, test_rules
            self._publish()
            report = self._report() if self.agent and desired is not None else None
            self.polls += 1
        if report is not None:
            self._send_report(report)

    def _observe(self) -> tuple[dict[str, DesiredWorkload] | None, dict[str, int] | None, list[Rule] | None]:
        """What moto asks for; None for a part that could not be read (keep the last state)."""
        desired: dict[str, DesiredWorkload] | None = None
        weights: dict[str, int] | None = None
        rules: list[Rule] | None = None
        try:
            resp = self.ecs.describe_services(cluster=self.cluster, services=[self.service])
            services = [s for s in resp.get("services", []) if s.get("status") == "ACTIVE"]
            desired = {}
            self._task_sets = {ts["id"]: ts.get("taskDefinition", "") for svc in services
                               for ts in svc.get("taskSets", [])}
            for svc in services:
                for d in desired_workloads(svc, self._image, self._revision):
                    desired[d.key] = d
            self.last_error = None
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ClusterNotFoundException", "ServiceNotFoundException"):
                desired = {}  # the service is gone: so are its tasks
            else:
                self.last_error = f"DescribeServices: {exc}"
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            self.last_error = f"DescribeServices: {exc}"  # moto unreachable: keep serving what runs
        if self.listener_arn:
            weights, rules = self._observe_listener(self.listener_arn)
        elif desired is not None:
            # No listener to follow: every target group that has a workload gets an equal share.
            weights = {d.target_group or d.key: 1 for d in desired.values()}
            rules = []
        return desired, weights, rules

    def _observe_one_off(self) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
        if not self.agent:
            return []
        try:
            return self.one_off.discover()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, OSError) as exc:
            self.last_error = f"one-off tasks: {exc}"
            return []

    def _image(self, task_definition: str, container: str | None) -> str | None:
        # Task definition revisions are immutable, so one DescribeTaskDefinition each is enough.
        key = (task_definition, container)
        if key not in self._images:
            td = self.ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
            containers = td.get("containerDefinitions", [])
            chosen = next((c for c in containers if c.get("name") == container), containers[0] if containers else {})
            self._images[key] = chosen.get("image")
        return self._images[key]

    def _revision(self, arn: str) -> Mapping[str, Any] | None:
        if arn not in self._revisions:
            found = self.ecs.describe_service_revisions(serviceRevisionArns=[arn]).get("serviceRevisions") or []
            if not found:
                return None
            self._revisions[arn] = found[0]
        return self._revisions[arn]

    def _converge(self, desired: Mapping[str, DesiredWorkload]) -> None:
        gone = [w for key, w in self._running.items() if key not in desired or desired[key] != w.spec]
        now = time.monotonic()
        for key, w in self._running.items():
            if key in desired and desired[key] == w.spec:
                w.spec = desired[key]  # the same workload; only its task count may have moved
        for w in gone:
            del self._running[w.spec.key]
            self._stop_tasks(w, 0, "Scaling activity initiated by (deployment)", "ServiceSchedulerInitiated")
            replaced_in_group = w.spec.key not in desired and any(
                d.target_group == w.spec.target_group for d in desired.values())
            if w.ready and w.spec.target_group and replaced_in_group:
                # A rolling deployment of an ECS-controller service: like ECS, keep the old task
                # serving until its replacement in the same target group is ready.
                self._draining.append((w, now + DRAIN_TIMEOUT))
            else:
                self._retire(w, now)
        for key, spec in desired.items():
            if key not in self._running:
                self._running[key] = self._spawn(spec)

    def _retire(self, w: RunningWorkload, now: float) -> None:
        """Take `w` out of routing and Prometheus now; stop it once in-flight requests are done."""
        if w.spec.key not in self._running:
            self._unregister(w.spec.key)
        self._retiring.append((w, now + self.deregistration_delay))

    def _finish_draining(self) -> None:
        now = time.monotonic()
        ready_groups = {w.spec.target_group for w in self._running.values() if w.ready}
        still: list[tuple[RunningWorkload, float]] = []
        for w, deadline in self._draining:
            if w.spec.target_group in ready_groups or now >= deadline:
                self._retire(w, now)
            else:
                still.append((w, deadline))
        self._draining = still
        due = [w for w, t in self._retiring if now >= t]
        if due:
            self._retiring = [(w, t) for w, t in self._retiring if now < t]
            self._stop_processes(due)

    def _check_health(self) -> None:
        now = time.monotonic()
        for key, w in list(self._running.items()):
            exited = w.process is None or w.process.poll() is not None
            if exited:
                # A stopped task: ECS replaces it, so do we, but not in a tight loop.
                if not w.exit_reported:
                    w.exit_reported = True
                    if w.process is None:
                        self._stop_tasks(w, 0, f"CannotPullContainerError: {w.pull_error}", "TaskFailedToStart",
                                         container_reason=f"CannotPullContainerError: {w.pull_error}")
                    else:
                        code = w.process.returncode
                        log.warning("workload %s (%s) exited with %s", key, w.spec.version, code)
                        self._stop_tasks(w, 0, "Essential container in task exited", "EssentialContainerExited",
                                         exit_code=code)
                    if w.ready:
                        w.ready = False
                    self._unregister(key)
                if now - w.last_start >= min(30.0, 1.0 * 2 ** min(w.restarts, 5)):
                    restarted = self._spawn(w.spec, restarts=w.restarts + 1)
                    self._running[key] = restarted
                continue
            if not w.listening:
                w.listening = _listening(w.port)
                if not w.listening:
                    continue
            if w.spec.target_group is None:
                w.health = "healthy"
                w.ready = True
                continue
            # The target group's health check (healthy threshold 1, unhealthy threshold 2).
            if _health_ok(w.port):
                w.health, w.failing_checks, w.ready = "healthy", 0, True
                continue
            w.failing_checks += 1
            if w.health == "healthy" and w.failing_checks >= 2:
                w.health, w.ready = "unhealthy", False
                # ECS stops a task its load balancer calls unhealthy, and starts another.
                assert w.process is not None
                w.process.terminate()
                try:
                    w.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    w.process.kill()
                    w.process.wait(timeout=5)
                w.exit_reported = True
                self._stop_tasks(w, 0, f"Task failed ELB health checks in (target-group {w.spec.target_group})",
                                 "ServiceSchedulerInitiated", exit_code=w.process.returncode)
                self._unregister(key)
                w.last_start = now

    def _stop_tasks(self, w: RunningWorkload, keep: int, reason: str, stop_code: str, *,
                    exit_code: int | None = None, container_reason: str | None = None) -> None:
        """Report `w`'s tasks from slot `keep` on as STOPPED (ECS keeps them listed with the reason)."""
        for slot in range(keep, w.slots):
            self._reports[w.task_key(slot)] = self._task_doc(
                w, "STOPPED", "STOPPED", None, stopped_reason=reason, stop_code=stop_code,
                exit_code=exit_code, container_reason=container_reason)
        w.slots = min(w.slots, keep)

    def _task_doc(self, w: RunningWorkload, last_status: str, desired_status: str, health: str | None,
                  **stopped: Any) -> dict[str, Any]:
        return {"task_definition": w.spec.task_definition, "started_by": w.spec.task_set_id or "",
                "last_status": last_status, "desired_status": desired_status, "target_group": w.spec.target_group,
                "port": w.spec.container_port, "health": health, **stopped}

    def _report(self) -> dict[str, Any]:
        """What runs, as ECS would record it: tasks, their target health, the task sets' counts."""
        tasks: dict[str, dict[str, Any]] = dict(self._reports)
        counts: dict[str, tuple[int, int, int, bool]] = {}
        healthy: dict[str, int] = {}
        for w in self._running.values():
            if w.process is None or w.process.poll() is not None or w.exit_reported:
                counts[w.spec.key] = (w.spec.count, 0, 0, False)
                continue
            if w.slots > w.spec.count:
                self._stop_tasks(w, w.spec.count, "Scaling activity initiated by (deployment)",
                                 "ServiceSchedulerInitiated")
                tasks.update(self._reports)
            w.slots = w.spec.count
            status = "RUNNING" if w.listening else "PENDING"
            now = time.monotonic()
            healthy_slots = 0
            for slot in range(w.slots):
                # One process serves every task of the task set; a task added by a scale-up still
                # takes the version's start time to pass its own health check.
                started = w.slot_started.setdefault(slot, now)
                slot_healthy = w.ready and now - started >= w.start_seconds
                healthy_slots += slot_healthy
                health = None
                if w.listening and w.spec.target_group:
                    health = "healthy" if slot_healthy else ("unhealthy" if w.health == "unhealthy" else "initial")
                tasks[w.task_key(slot)] = self._task_doc(w, status, "RUNNING", health)
            for slot in [s for s in w.slot_started if s >= w.slots]:
                del w.slot_started[slot]
            running = w.slots if w.listening else 0
            healthy[w.spec.key] = healthy_slots
            steady = running == w.spec.count and healthy_slots == w.spec.count
            counts[w.spec.key] = (w.spec.count, running, w.spec.count - running, steady)
        task_sets = []
        for ts_id in self._task_sets:
            computed, running, pending, steady = counts.get(ts_id, (0, 0, 0, True))
            task_sets.append({"id": ts_id, "computed_desired": computed, "running": running, "pending": pending,
                              "stability": "STEADY_STATE" if steady else "STABILIZING"})
        service_counts = None
        if not self._task_sets:
            services = [c for k, c in counts.items() if k.startswith(("service:", "revision:"))]
            service_counts = {"running": sum(c[1] for c in services), "pending": sum(c[2] for c in services),
                              "steady": all(c[3] for c in services)}
        # A native deployment's revisions: what ECS waits on before it shifts traffic.
        revisions = [{"arn": w.spec.revision_arn, "running": counts[k][1], "pending": counts[k][2],
                      "healthy": healthy.get(k, 0)}
                     for k, w in self._running.items() if w.spec.revision_arn and k in counts]
        return {"region": self.region, "cluster": self.cluster, "service": self.service, "task_sets": task_sets,
                "service_counts": service_counts, "tasks": [{"key": k, **v} for k, v in tasks.items()],
                "one_off": self.one_off.report(), **({"revisions": revisions} if revisions else {})}

    def _send_report(self, report: dict[str, Any]) -> None:
        assert self.endpoint is not None
        request = urllib.request.Request(f"{self.endpoint.rstrip('/')}{REPORT_PATH}", data=json.dumps(report).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                answer = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                log.warning("the AWS endpoint is not the local ECS: tasks are not reported")
                self.agent = False
            else:
                self.last_error = f"local ECS report: {exc.code} {exc.read()[:500]!r}"
            return
        except OSError as exc:
            self.last_error = f"local ECS report: {exc}"
            return
        sent = {t["key"] for t in report.get("tasks", []) if t["last_status"] == "STOPPED"}
        with self._lock:
            for key in sent:
                self._reports.pop(key, None)
            self.one_off.answer(answer.get(ONE_OFF_KEY, {}), report.get("one_off", []))

    def _observe_listener(self, listener_arn: str) -> tuple[dict[str, int] | None, list[Rule] | None]:
        """A listener's default weights and other rules; (None, None) when they could not be read."""
        try:
            # DescribeRules holds the default rule too (IsDefault), with the listener's default
            # actions: one paginated read gives the whole routing table.
            described = [r for page in self.elbv2.get_paginator("describe_rules").paginate(
                ListenerArn=listener_arn) for r in page["Rules"]]
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ListenerNotFound":
                return {}, []
            self.last_error = f"DescribeRules: {exc}"
            return None, None
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            self.last_error = f"DescribeRules: {exc}"
            return None, None
        default: dict[str, Any] = next(
            (r for r in described if r.get("IsDefault") or r.get("Priority") == "default"), {})
        return forward_weights(default.get("Actions") or []), [r for r in rules_from(described) if r.priority is not None]

    def _publish(self) -> None:
        targets: dict[str, list[Target]] = {}
        for w in [*self._running.values(), *(d for d, _ in self._draining)]:
            if w.ready:
                tg = w.spec.target_group or w.spec.key
                targets.setdefault(tg, []).append(Target("127.0.0.1", w.port, w.spec.version, w.spec.task_set))
        for pool in targets.values():
            pool.sort(key=lambda t: t.task_set)
        self.router.update(self._weights, targets, self._rules)
        if self.test_balancer is not None:
            self.test_router.update(self._test_weights, targets, self._test_rules)

    # -- processes and Prometheus registration ---------------------------------------------------

    def _start_seconds(self, version: str) -> float:
        if self.behaviour_file is None:
            return 0.0
        try:
            return behaviour_for(json.loads(self.behaviour_file.read_text()), version).start_seconds
        except (OSError, ValueError):
            return 0.0

    def _pull_error(self, image: str | None) -> str | None:
        """Why `image` cannot be pulled from the local ECR, or None (any other registry: it can)."""
        ref = ecr_reference(image)
        if ref is None or image in self._pulled:
            return None
        repository, image_id = ref
        try:
            self.ecr.describe_images(repositoryName=repository, imageIds=[image_id])
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("RepositoryNotFoundException", "ImageNotFoundException"):
                return (f"pull image manifest has been retried 1 time(s): failed to resolve ref {image}: "
                        f"{image}: not found")
            return f"pull access denied for {image}: {code}"
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            return f"failed to reach the registry for {image}: {exc}"
        self._pulled.add(image or "")
        return None

    def _spawn(self, spec: DesiredWorkload, restarts: int = 0) -> RunningWorkload:
        port = free_port()
        log_path = self.workdir / "workloads" / f"{_file_key(spec.key)}.log"
        pull_error = self._pull_error(spec.image)
        if pull_error is not None:
            log.warning("task set %s: CannotPullContainerError: %s", spec.key, pull_error)
            failed = RunningWorkload(spec, port, None, log_path, restarts=restarts, pull_error=pull_error)
            failed.slots = spec.count
            return failed
        cmd = [sys.executable, "-m", "controller.testing.dataplane.workload", "--version", spec.version, "--port", str(port),
               "--parent-pid", str(os.getpid())]
        if self.behaviour_file is not None:
            cmd += ["--behaviour-file", str(self.behaviour_file)]
        # The workload imports this package by name; make that work when it is not installed.
        root = str(Path(controller.__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        with open(log_path, "ab") as out:
            process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, start_new_session=True)
        log.info("started workload %s version %s on port %d (pid %d)", spec.key, spec.version, port, process.pid)
        running = RunningWorkload(spec, port, process, log_path, restarts=restarts,
                                  start_seconds=self._start_seconds(spec.version))
        # Registered with Prometheus while its task is PENDING, as service discovery knows a task
        # before its load balancer admits it: the first request it serves is already scraped.
        self._register(running)
        return running

    def _stop_processes(self, workloads: list[RunningWorkload]) -> None:
        for w in workloads:
            if w.process is not None and w.process.poll() is None:
                w.process.terminate()
        for w in workloads:
            if w.process is None:
                continue
            try:
                w.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                w.process.kill()
                w.process.wait(timeout=5)
            if w.spec.key not in self._running:  # a replacement under the same key keeps its file
                self._unregister(w.spec.key)
            log.info("stopped workload %s version %s", w.spec.key, w.spec.version)

    def _register(self, w: RunningWorkload) -> None:
        if self.targets_dir is None:
            return
        labels = {"version": w.spec.version, "task_set": w.spec.task_set, "service": self.service}
        if w.spec.target_group:
            labels["target_group"] = w.spec.target_group
        # Written aside and renamed by register_target: Prometheus may read the file at any moment.
        register_target(self.targets_dir, _file_key(w.spec.key), f"127.0.0.1:{w.port}", labels)

    def _unregister(self, key: str) -> None:
        if self.targets_dir is not None:
            unregister_target(self.targets_dir, _file_key(key))


def _health_ok(port: int) -> bool:
    """The target group's health check: GET /healthz answers 200 (the quick check; an http metric may
    probe the deeper /health)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=0.5) as resp:
            return bool(resp.status == 200)
    except (OSError, ValueError):
        return False


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.1):
            return True
    except OSError:
        return False


def _client(name: str, endpoint: str | None, region: str) -> Any:
    session = boto3.session.Session(region_name=region)
    creds: dict[str, str] = {}
    if endpoint and session.get_credentials() is None:
        # A local emulator accepts any credentials; do not fail a test machine that has none.
        creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    config = botocore.config.Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    make_client: Any = session.client  # the service name is a runtime value (boto3-stubs' overloads)
    return make_client(name, endpoint_url=endpoint, region_name=region, config=config, **creds)
