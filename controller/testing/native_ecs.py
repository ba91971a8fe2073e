"""The local ECS's native deployments: what ECS does itself for a service on the `ECS` controller.

moto records a service's `deploymentConfiguration` (it even drops it on CreateService) and nothing
happens on UpdateService. Real ECS runs a *service deployment* for it, and with the strategies of
2025 (BLUE_GREEN, CANARY, LINEAR) it walks lifecycle stages and moves the ALB listener rules itself.
This module plays that, following AWS's stated behaviour:

- https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-how-it-works.html
  (stages RECONCILE_SERVICE, PRE_SCALE_UP, SCALE_UP, POST_SCALE_UP, TEST_TRAFFIC_SHIFT,
  POST_TEST_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME,
  CLEAN_UP; the green revision scales to 100% before any traffic; test traffic goes to green
  through the test listener rule; production shifts, then both run for the bake time, then blue
  is scaled in);
- https://docs.aws.amazon.com/AmazonECS/latest/developerguide/canary-deployment.html (canaryPercent
  of production first, canaryBakeTimeInMinutes, then the rest at once) and
  .../linear-deployment.html (stepPercent more every stepBakeTimeInMinutes, no bake after 100%);
- https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-lifecycle-hooks.html and
  API_DeploymentLifecycleHook (a `PAUSE` hook waits for ContinueServiceDeployment CONTINUE or
  ROLLBACK until `timeoutConfiguration` (default 1440 min, action ROLLBACK); PAUSE hooks may not be
  set at TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT; PRE_PRODUCTION_TRAFFIC_SHIFT fires before
  every step of a linear or canary shift, each time with a new hook id);
- https://docs.aws.amazon.com/AmazonECS/latest/developerguide/continue-service-deployment.html and
  .../stop-service-deployment.html (`StopServiceDeployment --stop-type ROLLBACK` rolls back from
  any stage; a rollback sends production and test traffic back to the source revision at once);
- API_DescribeServiceDeployments / API_ListServiceDeployments / API_DescribeServiceRevisions for
  the shapes (status PENDING, IN_PROGRESS, SUCCESSFUL, STOPPED, ROLLBACK_IN_PROGRESS,
  ROLLBACK_SUCCESSFUL ...; `lifecycleStage`; `lifecycleHookDetails`; `rollback`; the revisions'
  `resolvedConfiguration.loadBalancers` naming the target group each revision serves).

Time: ECS counts bake times and hook timeouts in minutes; the local ECS counts a minute as
`LOCAL_ECS_MINUTE_SECONDS` seconds (default 60), so a test can bake for "1 minute" in one second.

Limits, each refused with InvalidParameterException rather than faked: AWS_LAMBDA hooks (nothing
can invoke a Lambda here), Service Connect and NLB traffic shifting (a listener ARN as the
production "rule" is accepted and its default action weighted, as for an NLB). CloudWatch alarm
rollback and the circuit breaker are not played.

Every write into moto's objects here LEAVES MOTO'S PUBLIC API (it sets attributes on moto's
Service and writes listener-rule actions through moto's ELBv2 backend in-process, as ECS's own
ModifyRule calls would); `tests/dataplane/test_native_ecs.py` fails if a moto upgrade breaks one.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

MINUTE_SECONDS_ENV = "LOCAL_ECS_MINUTE_SECONDS"
TICK_SECONDS = 0.1

NATIVE_STRATEGIES = ("BLUE_GREEN", "CANARY", "LINEAR")
HOOK_STAGES = ("RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
               "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT")
NO_PAUSE_STAGES = ("TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")
ACTIVE_STATUSES = ("PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED")
DEFAULT_HOOK_TIMEOUT_MINUTES = 1440


class NativeError(Exception):
    """A request ECS refuses: `code` is the ECS error code (InvalidParameterException, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def minute_seconds() -> float:
    return float(os.environ.get(MINUTE_SECONDS_ENV, "60"))


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)  # moto keeps naive UTC datetimes


def _stale_seconds() -> float:
    """How long ECS takes to notice a change (local_ecs.stale_seconds; read here to keep the layering)."""
    return float(os.environ.get("LOCAL_ECS_STALE_SECONDS", "1.0"))


# -- validation (the rules API_DeploymentConfiguration states) ---------------------------------


def _multiple_of_tenth(value: float) -> bool:
    return abs(value * 10 - round(value * 10)) < 1e-6


def validate(config: dict[str, Any] | None, load_balancers: list[dict[str, Any]]) -> None:
    """Refuse what ECS refuses in a deploymentConfiguration (and what the local ECS cannot play)."""
    config = config or {}
    strategy = config.get("strategy", "ROLLING")
    if strategy not in ("ROLLING", *NATIVE_STRATEGIES):
        raise NativeError("InvalidParameterException", f"Invalid deployment strategy: {strategy}")
    canary = config.get("canaryConfiguration") or {}
    if "canaryPercent" in canary and not (0.1 <= float(canary["canaryPercent"]) <= 100.0
                                          and _multiple_of_tenth(float(canary["canaryPercent"]))):
        raise NativeError("InvalidParameterException",
                          "canaryPercent must be a multiple of 0.1 from 0.1 to 100.0")
    linear = config.get("linearConfiguration") or {}
    if "stepPercent" in linear and not (3.0 <= float(linear["stepPercent"]) <= 100.0
                                        and _multiple_of_tenth(float(linear["stepPercent"]))):
        raise NativeError("InvalidParameterException", "stepPercent must be a multiple of 0.1 from 3.0 to 100.0")
    for name, value in (("bakeTimeInMinutes", config.get("bakeTimeInMinutes")),
                        ("canaryBakeTimeInMinutes", canary.get("canaryBakeTimeInMinutes")),
                        ("stepBakeTimeInMinutes", linear.get("stepBakeTimeInMinutes"))):
        if value is not None and not 0 <= int(value) <= 1440:
            raise NativeError("InvalidParameterException", f"{name} must be from 0 to 1440")
    for hook in config.get("lifecycleHooks") or []:
        target_type = hook.get("targetType", "AWS_LAMBDA")
        stages = hook.get("lifecycleStages") or []
        if not stages or any(s not in HOOK_STAGES for s in stages):
            raise NativeError("InvalidParameterException", f"lifecycleStages must be some of {', '.join(HOOK_STAGES)}")
        if target_type == "PAUSE" and any(s in NO_PAUSE_STAGES for s in stages):
            raise NativeError("InvalidParameterException",
                              "PAUSE hooks cannot be configured at TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT")
        if target_type != "PAUSE":
            # LOCAL ECS LIMIT: nothing here can invoke a Lambda function.
            raise NativeError("InvalidParameterException", "the local ECS runs PAUSE lifecycle hooks only")
        timeout = (hook.get("timeoutConfiguration") or {}).get("timeoutInMinutes")
        if timeout is not None and not 1 <= int(timeout) <= 20160:
            raise NativeError("InvalidParameterException", "timeoutInMinutes must be from 1 to 20160")
    if strategy in NATIVE_STRATEGIES and load_balancers:
        advanced = load_balancers[0].get("advancedConfiguration") or {}
        if not advanced.get("alternateTargetGroupArn") or not advanced.get("productionListenerRule"):
            raise NativeError("InvalidParameterException",
                              f"a {strategy} deployment needs loadBalancers[].advancedConfiguration with "
                              "alternateTargetGroupArn and productionListenerRule")


def production_shifts(config: dict[str, Any]) -> list[tuple[float, float]]:
    """The production traffic steps: [(percent on the new revision, bake minutes after it)].

    BLUE_GREEN -> [(100, 0)]. CANARY 10% bake 5 -> [(10, 5), (100, 0)]. LINEAR 30% bake 2 ->
    [(30, 2), (60, 2), (90, 2), (100, 0)] (no step bake after 100%, per LinearConfiguration).
    Defaults are ECS's: canary 5% / 10 min, linear 10% / 6 min.
    """
    strategy = config.get("strategy", "ROLLING")
    if strategy == "CANARY":
        canary = config.get("canaryConfiguration") or {}
        percent = float(canary.get("canaryPercent", 5.0))
        bake = float(canary.get("canaryBakeTimeInMinutes", 10))
        return [(percent, bake), (100.0, 0.0)] if percent < 100.0 else [(100.0, 0.0)]
    if strategy == "LINEAR":
        linear = config.get("linearConfiguration") or {}
        step = float(linear.get("stepPercent", 10.0))
        bake = float(linear.get("stepBakeTimeInMinutes", 6))
        out: list[tuple[float, float]] = []
        n = 1
        while n * step < 100.0 - 1e-9:
            out.append((round(n * step, 1), bake))
            n += 1
        return [*out, (100.0, 0.0)]
    return [(100.0, 0.0)]


def rule_weights(percent_new: float) -> tuple[int, int]:
    """ALB weights (old, new) for a percentage on the new revision; ALB weights are integers 0-999.

    10 -> (90, 10); 2.5 -> (975, 25); 100 -> (0, 100); 0 -> (100, 0).
    """
    if _multiple_of_tenth(percent_new) and abs(percent_new - round(percent_new)) < 1e-6:
        return 100 - int(round(percent_new)), int(round(percent_new))
    new = int(round(percent_new * 10))
    return 1000 - new, new


# -- the model ------------------------------------------------------------------------------------


@dataclass
class Revision:
    """A service revision: the task definition and the target group it is served from."""

    arn: str
    service_arn: str
    cluster_arn: str
    task_definition: str
    load_balancers: list[dict[str, Any]]
    target_group: str | None
    production_rule: str | None
    created_at: datetime
    deployment_id: str  # the `deployments[].id` (and tasks' startedBy) of its tasks
    requested: int = 0
    running: int = 0
    pending: int = 0
    healthy: int = 0
    reported: bool = False

    def summary(self) -> dict[str, Any]:
        return {"arn": self.arn, "requestedTaskCount": self.requested, "runningTaskCount": self.running,
                "pendingTaskCount": self.pending}

    def describe(self) -> dict[str, Any]:
        lbs = [{k: v for k, v in lb.items() if k != "advancedConfiguration"} for lb in self.load_balancers]
        resolved = []
        if self.target_group:
            resolved.append({"targetGroupArn": self.target_group,
                             **({"productionListenerRule": self.production_rule} if self.production_rule else {})})
        return {"serviceRevisionArn": self.arn, "serviceArn": self.service_arn, "clusterArn": self.cluster_arn,
                "taskDefinition": self.task_definition, "loadBalancers": self.load_balancers and lbs,
                "launchType": "FARGATE", "createdAt": self.created_at,
                "resolvedConfiguration": {"loadBalancers": resolved}}


@dataclass
class Hook:
    hook_id: str
    stage: str
    timeout_action: str
    expires_at: datetime
    status: str = "AWAITING_ACTION"

    def describe(self) -> dict[str, Any]:
        return {"hookId": self.hook_id, "targetType": "PAUSE", "status": self.status,
                "expiresAt": self.expires_at, "timeoutAction": self.timeout_action}


Wait = Callable[[], bool]


@dataclass
class ServiceDeployment:
    arn: str
    service: Any  # moto's Service
    source: Revision | None
    target: Revision
    config: dict[str, Any]
    created_at: datetime
    status: str = "PENDING"
    status_reason: str | None = None
    stage: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stopped_at: datetime | None = None
    updated_at: datetime | None = None
    hooks: list[Hook] = field(default_factory=list)
    stage_hooks: list[Hook] = field(default_factory=list)  # those of the current stage (this step's)
    rollback: dict[str, Any] | None = None
    rollback_requested: str | None = None  # the reason, until the rollback starts
    production_weight: float = 0.0  # percent of production traffic on the target revision
    test_weight: float = 0.0
    _steps: Generator[Wait, None, None] | None = None
    _waiting: Wait | None = None

    @property
    def strategy(self) -> str:
        return str(self.config.get("strategy", "ROLLING"))

    def brief(self) -> dict[str, Any]:
        out = {"serviceDeploymentArn": self.arn, "serviceArn": self.service.arn, "clusterArn": self.service.cluster_arn,
               "createdAt": self.created_at, "startedAt": self.started_at, "finishedAt": self.finished_at,
               "targetServiceRevisionArn": self.target.arn, "status": self.status, "statusReason": self.status_reason}
        return {k: v for k, v in out.items() if v is not None}

    def describe(self) -> dict[str, Any]:
        weight_new = self.production_weight
        target = {**self.target.summary(), "requestedProductionTrafficWeight": weight_new,
                  "requestedTestTrafficWeight": self.test_weight}
        sources = []
        if self.source is not None:
            sources.append({**self.source.summary(), "requestedProductionTrafficWeight": 100.0 - weight_new,
                            "requestedTestTrafficWeight": 100.0 - self.test_weight})
        current = self.stage_hooks
        out = {"serviceDeploymentArn": self.arn, "serviceArn": self.service.arn, "clusterArn": self.service.cluster_arn,
               "createdAt": self.created_at, "startedAt": self.started_at, "finishedAt": self.finished_at,
               "stoppedAt": self.stopped_at, "updatedAt": self.updated_at, "sourceServiceRevisions": sources,
               "targetServiceRevision": target, "status": self.status, "statusReason": self.status_reason,
               "lifecycleStage": self.stage, "deploymentConfiguration": self.config,
               "lifecycleHookDetails": [h.describe() for h in current] or None, "rollback": self.rollback}
        return {k: v for k, v in out.items() if v is not None}


class Registry:
    """Every service's revisions and deployments, advanced by `tick()` under the local ECS's lock."""

    def __init__(self) -> None:
        self.revisions: dict[str, Revision] = {}
        self.deployments: dict[str, ServiceDeployment] = {}
        self.by_service: dict[str, list[str]] = {}  # service ARN -> deployment ARNs, oldest first
        self.current: dict[str, list[Revision]] = {}  # service ARN -> revisions with tasks
        self.elbv2: Callable[[str], Any] | None = None  # region -> moto's ELBv2 backend

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    # -- revisions -----------------------------------------------------------------------------

    def _new_revision(self, service: Any, task_definition: str, target_group: str | None) -> Revision:
        region, account = service.region_name, service._account_id
        rid = uuid.uuid4().int % 10**19
        lbs = [dict(lb) for lb in (service.load_balancers or [])]
        rule = None
        if lbs:
            advanced = lbs[0].get("advancedConfiguration") or {}
            rule = advanced.get("productionListenerRule")
        revision = Revision(
            arn=f"arn:aws:ecs:{region}:{account}:service-revision/{service.cluster_name}/{service.name}/{rid}",
            service_arn=service.arn, cluster_arn=service.cluster_arn, task_definition=task_definition,
            load_balancers=lbs, target_group=target_group, production_rule=rule, created_at=_now(),
            deployment_id=f"ecs-svc/{uuid.uuid4().int % 10**19}", requested=int(service.desired_count))
        self.revisions[revision.arn] = revision
        return revision

    def production_revision(self, service: Any) -> Revision | None:
        """The revision serving production: the first of the current ones (created if none)."""
        current = self.current.get(service.arn)
        if current:
            return current[0]
        if not service.task_definition:
            return None
        lbs = service.load_balancers or []
        revision = self._new_revision(service, service.task_definition, lbs[0].get("targetGroupArn") if lbs else None)
        # With no agent the local ECS plays an ideal one: what runs is what was asked for.
        revision.running = int(service.running_count) if getattr(service, "_local_agent", False) else revision.requested
        self.current[service.arn] = [revision]
        return revision

    def describe_revisions(self, arns: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        found = [self.revisions[a].describe() for a in arns if a in self.revisions]
        failures = [{"arn": a, "reason": "MISSING"} for a in arns if a not in self.revisions]
        return found, failures

    # -- starting -------------------------------------------------------------------------------

    def on_create(self, service: Any, config: dict[str, Any] | None) -> None:
        """CreateService: the first revision, deployed by a deployment that succeeds as it starts."""
        validate(config, service.load_balancers or [])
        service.deployment_configuration = config or {}
        if (service.deployment_controller or {}).get("type", "ECS") != "ECS":
            return
        revision = self.production_revision(service)
        if revision is None:
            return
        now = _now()
        deployment = ServiceDeployment(self._deployment_arn(service), service, None, revision, dict(config or {}), now,
                                       status="SUCCESSFUL", started_at=now, finished_at=now, updated_at=now)
        if revision.target_group:
            deployment.production_weight = 100.0
        self._add(deployment)
        self._mirror(service)

    def on_update(self, service: Any, old_task_definition: str | None, force: bool) -> None:
        """UpdateService: a new task definition (or forceNewDeployment) starts a service deployment."""
        if (service.deployment_controller or {}).get("type", "ECS") != "ECS":
            return
        config = dict(getattr(service, "deployment_configuration", None) or {})
        if service.task_definition == old_task_definition and not force:
            self._mirror(service)
            return
        now = _now()
        running = [self.deployments[a] for a in self.by_service.get(service.arn, [])
                   if self.deployments[a].status in ACTIVE_STATUSES]
        for old in running:
            # A deployment started while another runs replaces it (API_ServiceDeployment: STOPPED);
            # production goes back to the revision the new one starts from while it reconciles.
            if old.source is not None and (old.production_weight > 0 or old.test_weight > 0):
                self._shift(old, production=0.0, test=0.0)
            old.status, old.status_reason = "STOPPED", "Superseded by a new service deployment"
            old.stopped_at = old.finished_at = old.updated_at = now
            old._steps = old._waiting = None
            for hook in old.hooks:
                if hook.status == "AWAITING_ACTION":
                    hook.status = "FAILED"
        source = self.production_revision(service) if old_task_definition else None
        if running and running[0].source is not None:
            source = running[0].source
        strategy = config.get("strategy", "ROLLING")
        target_group = source.target_group if source else None
        if strategy in NATIVE_STRATEGIES and service.load_balancers:
            lb = service.load_balancers[0]
            alternate = (lb.get("advancedConfiguration") or {}).get("alternateTargetGroupArn")
            primary = lb.get("targetGroupArn")
            target_group = alternate if source is None or source.target_group == primary else primary
        elif service.load_balancers:
            target_group = service.load_balancers[0].get("targetGroupArn")
        target = self._new_revision(service, service.task_definition, target_group)
        target.requested = 0
        deployment = ServiceDeployment(self._deployment_arn(service), service, source, target, config, now,
                                       updated_at=now)
        deployment.production_weight = 0.0
        self._add(deployment)
        keep = [source] if source is not None else []
        self.current[service.arn] = [*keep, target]
        deployment._steps = (self._native_steps(deployment, reconcile=bool(running)) if strategy in NATIVE_STRATEGIES
                             else self._rolling_steps(deployment))
        self._mirror(service)

    def _deployment_arn(self, service: Any) -> str:
        return (f"arn:aws:ecs:{service.region_name}:{service._account_id}:service-deployment/"
                f"{service.cluster_name}/{service.name}/{uuid.uuid4().hex[:22]}")

    def _add(self, deployment: ServiceDeployment) -> None:
        self.deployments[deployment.arn] = deployment
        self.by_service.setdefault(deployment.service.arn, []).append(deployment.arn)

    # -- the steps ------------------------------------------------------------------------------

    def _dwell(self, seconds: float) -> Wait:
        until = _now() + timedelta(seconds=seconds)
        return lambda: _now() >= until

    def _scaled_up(self, d: ServiceDeployment, revision: Revision) -> Wait:
        started = _now()
        stale = _stale_seconds()

        def ready() -> bool:
            if (_now() - started).total_seconds() < stale:
                return False  # ECS takes a moment to start anything
            if not getattr(d.service, "_local_agent", False):
                revision.running, revision.pending, revision.healthy = revision.requested, 0, revision.requested
                return True
            # With an agent: the revision's tasks run and their targets pass the health check.
            return revision.healthy >= revision.requested and revision.running >= revision.requested

        return ready

    def _hooks(self, d: ServiceDeployment, stage: str) -> Generator[Wait, None, None]:
        """Run the PAUSE hooks configured for `stage`: each waits for its answer or its timeout."""
        d.stage = stage
        d.updated_at = _now()
        pending: list[Hook] = []
        d.stage_hooks = pending
        for spec in d.config.get("lifecycleHooks") or []:
            if stage not in (spec.get("lifecycleStages") or []):
                continue
            timeout = spec.get("timeoutConfiguration") or {}
            minutes = float(timeout.get("timeoutInMinutes", DEFAULT_HOOK_TIMEOUT_MINUTES))
            hook = Hook(uuid.uuid4().hex, stage, str(timeout.get("action", "ROLLBACK")),
                        _now() + timedelta(seconds=minutes * minute_seconds()))
            d.hooks.append(hook)
            pending.append(hook)

        def answered() -> bool:
            now = _now()
            for hook in pending:
                if hook.status == "AWAITING_ACTION" and now >= hook.expires_at:
                    hook.status = "TIMED_OUT"
                    if hook.timeout_action == "ROLLBACK":
                        d.rollback_requested = f"Lifecycle hook {hook.hook_id} at {stage} timed out"
            return all(h.status in ("SUCCEEDED", "TIMED_OUT") for h in pending)

        if pending:
            yield answered

    def _shift(self, d: ServiceDeployment, *, production: float | None = None, test: float | None = None) -> None:
        if production is not None:
            d.production_weight = production
            self._weigh(d, d.target.production_rule, production)
        if test is not None:
            d.test_weight = test
            lb = (d.service.load_balancers or [{}])[0]
            self._weigh(d, (lb.get("advancedConfiguration") or {}).get("testListenerRule"), test)
        d.updated_at = _now()

    def _weigh(self, d: ServiceDeployment, rule_arn: str | None, percent_new: float) -> None:
        """Write the forward weights of a listener rule (or an NLB listener) between the revisions."""
        if not rule_arn or self.elbv2 is None or d.target.target_group is None:
            return
        old_tg = d.source.target_group if d.source is not None else None
        old_w, new_w = rule_weights(percent_new)
        groups = [{"TargetGroupArn": d.target.target_group, "Weight": new_w}]
        if old_tg and old_tg != d.target.target_group:
            groups.insert(0, {"TargetGroupArn": old_tg, "Weight": old_w})
        actions = [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]
        elbv2 = self.elbv2(d.service.region_name)
        # LEAVES MOTO'S PUBLIC API: ECS's own ModifyRule / ModifyListener, called in-process.
        if ":listener-rule/" in rule_arn:
            elbv2.modify_rule(rule_arn, [], actions)
        else:
            elbv2.modify_listener(rule_arn, actions=actions)

    def _native_steps(self, d: ServiceDeployment, reconcile: bool) -> Generator[Wait, None, None]:
        minute = minute_seconds()
        d.status, d.started_at = "IN_PROGRESS", _now()
        if reconcile:
            yield from self._hooks(d, "RECONCILE_SERVICE")
        yield from self._hooks(d, "PRE_SCALE_UP")
        d.stage, d.stage_hooks = "SCALE_UP", []
        d.target.requested = int(d.service.desired_count)
        self._mirror(d.service)
        yield self._scaled_up(d, d.target)
        yield from self._hooks(d, "POST_SCALE_UP")
        lb = (d.service.load_balancers or [{}])[0]
        if (lb.get("advancedConfiguration") or {}).get("testListenerRule"):
            d.stage, d.stage_hooks = "TEST_TRAFFIC_SHIFT", []
            self._shift(d, test=100.0)
            yield self._dwell(0)
        yield from self._hooks(d, "POST_TEST_TRAFFIC_SHIFT")
        for percent, bake in production_shifts(d.config):
            yield from self._hooks(d, "PRE_PRODUCTION_TRAFFIC_SHIFT")
            d.stage, d.stage_hooks = "PRODUCTION_TRAFFIC_SHIFT", []
            self._shift(d, production=percent)
            if bake > 0:
                yield self._dwell(bake * minute)
        yield from self._hooks(d, "POST_PRODUCTION_TRAFFIC_SHIFT")
        d.stage, d.stage_hooks = "BAKE_TIME", []
        d.updated_at = _now()
        yield self._dwell(float(d.config.get("bakeTimeInMinutes") or 0) * minute)
        d.stage, d.stage_hooks = "CLEAN_UP", []
        self._finish(d)

    def _rolling_steps(self, d: ServiceDeployment) -> Generator[Wait, None, None]:
        """A ROLLING deployment: moto's own rolling behaviour stands; it succeeds when the service is steady."""
        d.status, d.started_at = "IN_PROGRESS", _now()
        d.target.requested = int(d.service.desired_count)
        started = _now()
        stale = _stale_seconds()

        def steady() -> bool:
            if (_now() - started).total_seconds() < stale:
                return False
            if not getattr(d.service, "_local_agent", False):
                return True
            primary: dict[str, Any] = next(
                (e for e in d.service.deployments or [] if e.get("status") == "PRIMARY"), {})
            return bool(primary.get("rolloutState") == "COMPLETED" and primary.get("updatedAt", started) > started)

        yield steady
        d.target.running = int(d.service.running_count)
        d.production_weight = 100.0
        self._finish(d)

    def _finish(self, d: ServiceDeployment) -> None:
        now = _now()
        if d.source is not None and d.source is not d.target:
            d.source.requested = 0
        self.current[d.service.arn] = [d.target]
        d.status, d.status_reason = "SUCCESSFUL", None
        d.finished_at = d.updated_at = now
        self._mirror(d.service)
        if not getattr(d.service, "_local_agent", False):
            for entry in d.service.deployments or []:
                entry["rolloutState"] = "COMPLETED"

    def _rollback_steps(self, d: ServiceDeployment, reason: str) -> Generator[Wait, None, None]:
        now = _now()
        d.status, d.status_reason = "ROLLBACK_IN_PROGRESS", reason
        d.rollback = {"reason": reason, "startedAt": now,
                      **({"serviceRevisionArn": d.source.arn} if d.source else {})}
        for hook in d.hooks:
            if hook.status == "AWAITING_ACTION":
                hook.status = "FAILED"
        # Traffic goes back first, at once; then the target revision's tasks stop.
        self._shift(d, production=0.0, test=0.0)
        if d.source is not None:
            d.service.task_definition = d.source.task_definition
        d.target.requested = 0
        self._mirror(d.service)
        yield self._dwell(_stale_seconds())
        if d.source is not None:
            self.current[d.service.arn] = [d.source]
        d.status = "ROLLBACK_SUCCESSFUL"
        d.finished_at = d.updated_at = _now()
        self._mirror(d.service)

    # -- answers --------------------------------------------------------------------------------

    def get(self, arn: str) -> ServiceDeployment:
        if arn not in self.deployments:
            raise NativeError("ServiceDeploymentNotFoundException", f"Service deployment {arn} not found")
        return self.deployments[arn]

    def continue_deployment(self, arn: str, hook_id: str, action: str) -> None:
        d = self.get(arn)
        hook = next((h for h in d.hooks if h.hook_id == hook_id), None)
        if hook is None:
            raise NativeError("InvalidParameterException", f"Lifecycle hook {hook_id} not found in {arn}")
        if hook.status != "AWAITING_ACTION" or d.status not in ACTIVE_STATUSES:
            raise NativeError("InvalidParameterException", f"Lifecycle hook {hook_id} is not awaiting action")
        if action == "ROLLBACK":
            hook.status = "FAILED"
            d.rollback_requested = f"Lifecycle hook {hook_id} at {hook.stage} answered ROLLBACK"
        else:
            hook.status = "SUCCEEDED"
        self.tick()

    def stop_deployment(self, arn: str, stop_type: str) -> None:
        d = self.get(arn)
        if d.status not in ACTIVE_STATUSES or d.status.startswith("ROLLBACK"):
            raise NativeError("ConflictException", f"Service deployment {arn} is {d.status}")
        if stop_type == "ABORT":
            d.status, d.status_reason = "STOPPED", "Stopped by StopServiceDeployment (ABORT)"
            d.stopped_at = d.finished_at = d.updated_at = _now()
            d._steps = d._waiting = None
        else:
            d.rollback_requested = "Rolled back by StopServiceDeployment (ROLLBACK)"
        self.tick()

    def list_for(self, service_arn: str, statuses: list[str] | None) -> list[dict[str, Any]]:
        found = [self.deployments[a] for a in reversed(self.by_service.get(service_arn, []))]
        return [d.brief() for d in found if not statuses or d.status in statuses]

    # -- time -----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Advance every running deployment as far as its waits allow."""
        for d in list(self.deployments.values()):
            try:
                for _ in range(100):
                    if not self._advance(d):
                        break
            except Exception as exc:  # noqa: BLE001 - e.g. its listener rule was deleted (a moto reset)
                d._steps = d._waiting = None
                d.status, d.status_reason = "ROLLBACK_FAILED" if d.status.startswith("ROLLBACK") else "STOPPED", str(exc)
                d.finished_at = d.updated_at = _now()

    def _advance(self, d: ServiceDeployment) -> bool:
        if d.rollback_requested is not None and d.status in ("PENDING", "IN_PROGRESS", "STOP_REQUESTED"):
            reason, d.rollback_requested = d.rollback_requested, None
            d._steps, d._waiting = self._rollback_steps(d, reason), None
        if d._steps is None:
            return False
        if d._waiting is not None:
            if not d._waiting():
                return False
            d._waiting = None
            if d.rollback_requested is not None:
                return True
        try:
            d._waiting = next(d._steps)
        except StopIteration:
            d._steps = None
        return True

    # -- what DescribeServices shows ----------------------------------------------------------------

    def _mirror(self, service: Any) -> None:
        """The service's `deployments`, `currentServiceRevisions` and `currentServiceDeployment`."""
        arns = self.by_service.get(service.arn, [])
        if arns:
            service.current_service_deployment = arns[-1]
        current = self.current.get(service.arn, [])
        service.current_service_revisions = [r.summary() for r in current]
        if (getattr(service, "deployment_configuration", None) or {}).get("strategy") not in NATIVE_STRATEGIES:
            return  # ROLLING: moto's `deployments` (and the agent's figures in them) stand
        now = _now()
        entries = []
        previous = {d.get("id"): d for d in (service.deployments or [])}
        for i, revision in enumerate(reversed(current)):
            old = previous.get(revision.deployment_id, {})
            entries.append({
                **old, "id": revision.deployment_id, "status": "PRIMARY" if i == 0 else "ACTIVE",
                "taskDefinition": revision.task_definition, "desiredCount": revision.requested,
                "runningCount": revision.running, "pendingCount": revision.pending,
                "createdAt": old.get("createdAt", revision.created_at), "updatedAt": now,
                "launchType": service.launch_type, "rolloutState": old.get("rolloutState", "IN_PROGRESS"),
            })
        if entries:
            service.deployments = entries

    def apply_revision_report(self, service: Any, entries: list[dict[str, Any]]) -> None:
        """The agent's figures per revision: {arn, running, pending, healthy}."""
        reported = {e["arn"] for e in entries}
        for revision in self.current.get(service.arn, []):
            if revision.arn not in reported:  # its tasks are gone
                revision.running = revision.pending = revision.healthy = 0
        for e in entries:
            found = self.revisions.get(e["arn"])
            if found is not None:
                found.running, found.pending = int(e["running"]), int(e["pending"])
                found.healthy, found.reported = int(e.get("healthy", 0)), True
        steady = all(r.running == r.requested and r.pending == 0 for r in self.current.get(service.arn, []))
        for entry in service.deployments or []:
            entry["rolloutState"] = "COMPLETED" if steady else "IN_PROGRESS"
        self._mirror(service)
        service.running_count = sum(r.running for r in self.current.get(service.arn, []))
        service.pending_count = sum(r.pending for r in self.current.get(service.arn, []))


REGISTRY = Registry()


def start_ticker(lock: Any) -> threading.Thread:
    """Advance deployments in the background (bake times and hook timeouts pass with no caller)."""

    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(TICK_SECONDS):
            with lock:
                try:
                    REGISTRY.tick()
                except Exception:  # noqa: BLE001 - the ticker must survive one bad deployment
                    import logging

                    logging.getLogger(__name__).exception("native deployment tick failed")

    thread = threading.Thread(target=loop, name="local-ecs-native", daemon=True)
    thread.start()
    return thread
