"""The one fake AWS world for planner tests: a pure simulator that applies actions to an Observation.

It does what ECS, the ALB, CloudFront (including continuous deployment: staging copy, policy
weight, promotion, disabling) and SSM would do with each action kind, instantly (the `APPLY` table,
one handler per action kind), so a test can iterate `decide` -> apply -> `decide` with `drive` and
watch a rollout walk its steps. Knobs make the world misbehave the ways that matter: task sets that
never stabilise, actions that get lost, an ECS deployment that fails. `drive` also answers the
planner's analysis (`measure`) and API-contract gate (`contract`), which the reconciler would find
over the network, and lets a test edit the world between passes (`between`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

from controller.api.release import Measurement, ReleaseSpec, ReleaseStatus, Verdict
from controller.planner import Context, Decision, Requests, analysis_due, decide
from controller.planner.actions import (
    Action,
    AnswerNativeHook,
    DeleteTaskSet,
    ClearStagingHeader,
    DisableStaging,
    EnsurePreviewRoute,
    EnsureTaskSet,
    PromoteStaging,
    PublishFlags,
    RemovePreviewRoute,
    ScaleTaskSet,
    SetListenerWeights,
    SetOriginPath,
    SetPrimaryTaskSet,
    SetStagingHeader,
    SetStagingWeight,
    StartNativeDeployment,
    StopNativeDeployment,
    UpdateServiceImage,
)
from controller.planner import needs
from controller.planner.decision import ContractCheck, HookResult, Upstream
from controller.reconciler.gather import Sources, gather
from controller.planner.world import (
    Deployment,
    Frontend,
    Listener,
    NativeDeployment,
    Observation,
    PauseHook,
    PreviewRule,
    RevisionShare,
    Service,
    ServiceView,
    StagingDistribution,
    TaskSet,
)
from controller.testing.specs import merge, release_spec

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
NS, NAME = "production", "pratiko"
LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/web/1/2"
BLUE = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/blue/1"
GREEN = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/green/2"
DIST = "E2ABCDEF"
STAGING = "E2STAGING"  # the staging copy CloudFront continuous deployment makes


def image(version: str) -> str:
    return f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:{version}"


def version_of(img: str | None) -> str | None:
    return img.rsplit(":", 1)[1] if img else None


def make_spec(version: str = "2.0.0", strategy: dict[str, Any] | None = None, **over: Any) -> ReleaseSpec:
    """A spec on the fake world's ARNs (`controller.testing.specs.release_spec`); `over` is merged
    in key by key (e.g. `backend={"ecs": {...}}` changes only what it names)."""
    body = release_spec(version=version, image=image(version), cluster="prod", service="backend",
                        traffic=(LISTENER, BLUE, GREEN), strategy=strategy)
    return ReleaseSpec.model_validate(merge(body, over))


def world(
    version: str = "1.0.0",
    controller: str = "EXTERNAL",
    frontend_path: str | None = None,
    flags: dict[str, Any] | None = None,
    empty: bool = False,
    native_routing: bool = False,
) -> Observation:
    """A service running `version` from the blue target group (task set made outside the controller);
    `native_routing`: an ECS-controller service with ECS's own blue/green routing (and a test listener)."""
    task_sets: tuple[TaskSet, ...] = ()
    if controller == "EXTERNAL" and not empty:
        task_sets = (
            TaskSet(id="ts-0", arn="arn:ts-0", external_id=None, task_definition="backend:1", image=image(version),
                    scale_percent=100.0, status="PRIMARY", target_group_arn=BLUE, running_count=2),
        )
    service = Service(
        arn="arn:svc", cluster="prod", name="backend", deployment_controller=controller, desired_count=2,
        task_definition="backend:1" if controller == "ECS" else None,
        image=image(version) if controller == "ECS" else None,
        task_sets=task_sets, native_routing=native_routing, test_listener=native_routing,
        strategy="ROLLING" if controller == "ECS" else None,
    )
    fe = Frontend(distribution_id=DIST, origin_id="web", origin_path=frontend_path) if frontend_path else None
    return Observation(
        service=service,
        listener=Listener(arn=LISTENER, weights={BLUE: 100, GREEN: 0}),
        frontend=fe,
        flags=flags,
        backend_version_serving=None if empty else version,
    )


# A tier of several services (issue many-services): api; mcp after api; a worker after api, no traffic.
TIER = (("api", (), True), ("mcp", ("api",), True), ("worker", ("api",), False))


def tier_image(name: str, version: str) -> str:
    return f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-{name}:{version}"


def tier_arns(name: str) -> tuple[str, str, str]:
    """(listener, blue, green) of service `name`: a listener of its own, as the tier requires."""
    lb = "arn:aws:elasticloadbalancing:eu-west-1:1"
    return f"{lb}:listener/app/web/1/{name}", f"{lb}:targetgroup/{name}-blue/1", f"{lb}:targetgroup/{name}-green/2"


def tier_spec(version: str = "2.0.0", strategy: dict[str, Any] | None = None,
              services: Sequence[tuple[str, Sequence[str], bool]] = TIER, **over: Any) -> ReleaseSpec:
    """A spec releasing `services` (name, after, with traffic) as one tier at `version`."""
    listed = []
    for name, after, traffic in services:
        s: dict[str, Any] = {"name": name, "image": tier_image(name, version),
                             "ecs": {"cluster": "prod", "service": name, "containerName": name}}
        if after:
            s["after"] = list(after)
        if traffic:
            listener, blue, green = tier_arns(name)
            s["traffic"] = {"listenerArn": listener, "stableTargetGroupArn": blue, "canaryTargetGroupArn": green}
        listed.append(s)
    body = release_spec(version=version, image=image(version), cluster="prod", service="backend", strategy=strategy)
    body["backend"] = {"version": version, "services": listed}
    return ReleaseSpec.model_validate(merge(body, over))


def tier_world(version: str = "1.0.0", services: Sequence[tuple[str, Sequence[str], bool]] = TIER) -> Observation:
    """Each service running `version` from its blue target group (a task set made outside the controller)."""
    views: dict[str, ServiceView] = {}
    for name, _after, traffic in services:
        listener, blue, green = tier_arns(name)
        ts = TaskSet(id=f"ts-0-{name}", arn=f"arn:ts-0-{name}", external_id=None, task_definition=f"{name}:1",
                     image=tier_image(name, version), scale_percent=100.0, status="PRIMARY",
                     target_group_arn=blue if traffic else None, running_count=2)
        svc = Service(arn=f"arn:svc/{name}", cluster="prod", name=name, deployment_controller="EXTERNAL",
                      desired_count=2, task_sets=(ts,))
        views[name] = ServiceView(svc, Listener(arn=listener, weights={blue: 100, green: 0}) if traffic else None)
    head = next(iter(views.values()))
    return Observation(service=head.service, listener=head.listener, services=views, backend_version_serving=version)


@dataclass
class Knobs:
    """The ways the world misbehaves that matter to the planner."""

    stabilizing: bool = False  # new task sets never reach STEADY_STATE
    lose: Callable[[Action], bool] = lambda a: False  # actions that silently do not land
    ecs_rollout_state: str = "COMPLETED"  # what an ECS-controller deployment ends in
    native_end: str = "SUCCESSFUL"  # what a native service deployment ends in after its last gate


@dataclass
class _World:
    """The parts of an Observation that actions change, mutable while one batch is applied."""

    task_sets: list[TaskSet]
    listener: Listener | None
    frontend: Frontend | None
    flags: Mapping[str, Any] | None
    service_image: str | None
    deployments: tuple[Deployment, ...]
    knobs: Knobs
    native: NativeDeployment | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the native deployment's plan, gate and source image

    def index(self, external_id: str, task_set_id: str | None) -> int:
        for i, ts in enumerate(self.task_sets):
            if (task_set_id and ts.id == task_set_id) or (external_id and ts.external_id == external_id):
                return i
        raise AssertionError(f"no task set {external_id or task_set_id}")


# What ECS, the ALB, CloudFront and SSM do with each action kind, instantly.

def _ensure_task_set(w: _World, a: EnsureTaskSet) -> None:
    if not any(ts.external_id == a.external_id for ts in w.task_sets):
        new_id = f"ts-{a.external_id.rsplit('.', 1)[-1]}"
        w.task_sets.append(TaskSet(
            id=new_id, arn=f"arn:{new_id}", external_id=a.external_id, task_definition=f"backend:{a.image}",
            image=a.image, scale_percent=a.scale_percent,
            status="PRIMARY" if not w.task_sets else "ACTIVE", target_group_arn=a.target_group_arn,
            stability="STABILIZING" if w.knobs.stabilizing else "STEADY_STATE",
        ))


def _scale_task_set(w: _World, a: ScaleTaskSet) -> None:
    i = w.index(a.external_id, a.task_set_id)
    w.task_sets[i] = replace(w.task_sets[i], scale_percent=a.scale_percent)


def _set_primary_task_set(w: _World, a: SetPrimaryTaskSet) -> None:
    i = w.index(a.external_id, a.task_set_id)
    w.task_sets = [replace(ts, status="PRIMARY" if j == i else "ACTIVE") for j, ts in enumerate(w.task_sets)]


def _delete_task_set(w: _World, a: DeleteTaskSet) -> None:
    w.task_sets = [ts for ts in w.task_sets if ts.id != a.task_set_id]


def _set_listener_weights(w: _World, a: SetListenerWeights) -> None:
    assert w.listener is not None
    w.listener = replace(w.listener, weights=dict(a.weights))


def _ensure_preview_route(w: _World, a: EnsurePreviewRoute) -> None:
    """As `aws.preview.ensure_preview_route`: the owner's one rule, after every other rule."""
    assert w.listener is not None and w.listener.arn == a.listener_arn
    others = [r for r in w.listener.previews if r.owner != a.owner]
    mine = [r for r in w.listener.previews if r.owner == a.owner]
    priority = mine[0].priority if mine else max((r.priority for r in others), default=0) + 1
    rule = PreviewRule(a.owner, priority, a.header_name, a.header_values, a.target_group_arn)
    w.listener = replace(w.listener, previews=(*others, rule), previews_read=True)


def _remove_preview_route(w: _World, a: RemovePreviewRoute) -> None:
    assert w.listener is not None and w.listener.arn == a.listener_arn
    w.listener = replace(w.listener, previews=tuple(r for r in w.listener.previews if r.owner != a.owner),
                         previews_read=True)


def _update_service_image(w: _World, a: UpdateServiceImage) -> None:
    w.service_image = a.image
    w.deployments = (Deployment(id="ecs-svc/1", status="PRIMARY", task_definition="backend:2", image=a.image,
                                rollout_state=w.knobs.ecs_rollout_state, running_count=2, desired_count=2),)


def _native_at(w: _World, index: int) -> None:
    """ECS waits at gate `index` of the native plan, with a new hook id (or ends after the last)."""
    assert w.native is not None
    gates = w.extra["native_plan"].gates
    w.extra["native_gate"] = index
    if index < len(gates):
        gate = gates[index]
        w.native = _weighed(replace(w.native, status="IN_PROGRESS", stage=gate.stage,
                                    hooks=(PauseHook(f"{w.native.arn}/hook-{index}", "AWAITING_ACTION"),)),
                            gate.production_weight)
    elif w.knobs.native_end == "SUCCESSFUL":
        w.native = _weighed(replace(w.native, status="SUCCESSFUL", stage="CLEAN_UP", hooks=()), 100.0)
    else:
        _native_rolled_back(w)


def _weighed(d: NativeDeployment, production: float) -> NativeDeployment:
    """ECS's production weights: `production` percent on the target, the rest on the source."""
    return replace(d, production_weight=production,
                   sources=tuple(replace(s, production_weight=100.0 - production) for s in d.sources))


def _native_rolled_back(w: _World) -> None:
    assert w.native is not None
    w.native = _weighed(replace(w.native, status="ROLLBACK_SUCCESSFUL", hooks=()), 0.0)
    w.service_image = w.extra.get("native_source")


def _start_native(w: _World, a: StartNativeDeployment) -> None:
    if w.native is not None and w.native.target_image == a.image:
        return  # the effector starts no second deployment
    n = int(w.extra.get("native_count", 0)) + 1
    w.extra.update(native_plan=a.plan, native_source=w.service_image, native_count=n)
    w.service_image = a.image
    w.native = NativeDeployment(arn=f"arn:service-deployment/{n}", status="IN_PROGRESS", stage="PRE_SCALE_UP",
                                target_task_definition=f"backend:{a.image}", target_image=a.image,
                                sources=(RevisionShare(w.extra["native_source"], 100.0),))
    _native_at(w, 0)


def _answer_native_hook(w: _World, a: AnswerNativeHook) -> None:
    d = w.native
    if d is None or d.arn != a.deployment_arn or d.awaiting is None or d.awaiting.hook_id != a.hook_id:
        return  # answered already, or not this deployment's: the effector answers once
    if a.action == "ROLLBACK":
        _native_rolled_back(w)
    else:
        _native_at(w, int(w.extra["native_gate"]) + 1)


def _stop_native(w: _World, a: StopNativeDeployment) -> None:
    if w.native is not None and w.native.arn == a.deployment_arn and w.native.active:
        _native_rolled_back(w)


def _set_origin_path(w: _World, a: SetOriginPath) -> None:
    # A fresh Frontend, as the world always did: the staging copy is not carried over.
    w.frontend = Frontend(distribution_id=a.distribution_id, origin_id=a.origin_id, origin_path=a.origin_path)


def _publish_flags(w: _World, a: PublishFlags) -> None:
    w.flags = dict(a.flags)


def _set_staging_weight(w: _World, a: SetStagingWeight) -> None:
    assert w.frontend is not None
    assert 0 <= a.weight_percent <= 15
    staging = StagingDistribution(STAGING, a.origin_path, "policy-1", True, a.weight_percent)
    w.frontend = replace(w.frontend, staging=staging)


def _set_staging_header(w: _World, a: SetStagingHeader) -> None:
    assert w.frontend is not None
    assert a.header_name.startswith("aws-cf-cd-")  # CloudFront refuses any other SingleHeader name
    policy = w.frontend.staging.policy_id if w.frontend.staging is not None else "policy-1"
    w.frontend = replace(w.frontend, staging=StagingDistribution(
        STAGING, a.origin_path, policy, True, 0, "SingleHeader", a.header_name, a.header_value))


def _clear_staging_header(w: _World, a: ClearStagingHeader) -> None:
    assert w.frontend is not None
    staging = w.frontend.staging
    if staging is not None and staging.traffic_type == "SingleHeader":
        w.frontend = replace(w.frontend, staging=replace(
            staging, policy_enabled=False, weight_percent=0, traffic_type="SingleWeight", header_name=None,
            header_value=None))


def _promote_staging(w: _World, a: PromoteStaging) -> None:
    assert w.frontend is not None
    if w.frontend.staging is not None:
        w.frontend = replace(w.frontend, origin_path=w.frontend.staging.origin_path)


def _disable_staging(w: _World, a: DisableStaging) -> None:
    assert w.frontend is not None
    if w.frontend.staging is not None:
        w.frontend = replace(w.frontend, staging=replace(w.frontend.staging, policy_enabled=False))


APPLY: dict[type, Callable[[_World, Any], None]] = {
    EnsureTaskSet: _ensure_task_set,
    ScaleTaskSet: _scale_task_set,
    SetPrimaryTaskSet: _set_primary_task_set,
    DeleteTaskSet: _delete_task_set,
    SetListenerWeights: _set_listener_weights,
    EnsurePreviewRoute: _ensure_preview_route,
    RemovePreviewRoute: _remove_preview_route,
    UpdateServiceImage: _update_service_image,
    StartNativeDeployment: _start_native,
    AnswerNativeHook: _answer_native_hook,
    StopNativeDeployment: _stop_native,
    SetOriginPath: _set_origin_path,
    PublishFlags: _publish_flags,
    SetStagingWeight: _set_staging_weight,
    SetStagingHeader: _set_staging_header,
    ClearStagingHeader: _clear_staging_header,
    PromoteStaging: _promote_staging,
    DisableStaging: _disable_staging,
}


def _of(a: Action, view: ServiceView) -> bool:
    """Whether action `a` names the ECS service or the listener of `view`."""
    svc, listener = view.service, view.listener
    if hasattr(a, "cluster") and hasattr(a, "service"):
        return svc is not None and (a.cluster, a.service) == (svc.cluster, svc.name)
    if hasattr(a, "listener_arn"):
        return listener is not None and a.listener_arn == listener.arn
    return False


def apply(obs: Observation, actions: Iterable[Action], knobs: Knobs | None = None) -> Observation:
    """The world after `actions`, as AWS would show it on the next read. A world of several services
    (`Observation.services`) applies each service's actions to it (by cluster and service, or by
    listener), the rest (the frontend, the flags) once."""
    actions = list(actions)
    if obs.services:
        views: dict[str, ServiceView] = {}
        for n, v in obs.services.items():
            sub = apply(replace(obs, service=v.service, listener=v.listener, services={}),
                        [a for a in actions if _of(a, v)], knobs)
            views[n] = ServiceView(sub.service, sub.listener)
        rest = [a for a in actions if not any(_of(a, v) for v in obs.services.values())]
        head = next(iter(views.values()))
        top = apply(replace(obs, service=head.service, listener=head.listener, services={}), rest, knobs)
        return replace(top, services=views, service=head.service, listener=head.listener)
    knobs = knobs or Knobs()
    svc = obs.service
    assert svc is not None
    w = _World(list(svc.task_sets), obs.listener, obs.frontend, obs.flags, svc.image, svc.deployments, knobs,
               svc.native, dict(obs.extra))
    for a in actions:
        if knobs.lose(a):
            continue
        handler = APPLY.get(type(a))
        if handler is None:
            raise AssertionError(f"unexpected action {a}")
        handler(w, a)
    new_svc = replace(svc, task_sets=tuple(w.task_sets), image=w.service_image, deployments=w.deployments,
                      native=w.native)
    primary = new_svc.primary
    serving = version_of(primary.image) if primary else version_of(w.service_image) if svc.deployment_controller == "ECS" else None
    if w.native is not None:  # as the observer reads it (aws/shapes.serving_version)
        serving = version_of(w.native.settled_image())
    return replace(obs, service=new_svc, listener=w.listener, frontend=w.frontend, flags=w.flags,
                   backend_version_serving=serving, extra=w.extra)


def measurement(metric: str, value: float, now: datetime, limit: float = 0.05) -> Measurement:
    failed = value > limit
    return Measurement(
        metric=metric, value=value, verdict=Verdict.FAILED if failed else Verdict.PASSED,
        message=f"{metric} {value} > max {limit}" if failed else f"{metric} {value} <= max {limit}", time=now,
    )


# A contract answer for the version the planner asks about: problems by backend version.
Contracts = Callable[[str], ContractCheck]


def contracts(problems: Mapping[str, Sequence[str]] | None = None, error: str | None = None) -> Contracts:
    def check(version: str) -> ContractCheck:
        return ContractCheck(version, tuple((problems or {}).get(version, ())), error)
    return check


Measure = Callable[[datetime, Observation, ReleaseStatus], Sequence[Measurement]]


@dataclass
class Pass:
    now: datetime
    decision: Decision
    observation: Observation  # after the actions

    @property
    def weights(self) -> dict[str, int]:
        assert self.observation.listener is not None
        return dict(self.observation.listener.weights)


@dataclass
class Run:
    spec: ReleaseSpec
    status: ReleaseStatus
    observation: Observation
    now: datetime
    passes: list[Pass] = field(default_factory=list)

    @property
    def actions(self) -> list[Action]:
        return [a for p in self.passes for a in p.decision.actions]

    @property
    def events(self) -> list[str]:
        return [e.reason for p in self.passes for e in p.decision.events]

    def weight_trace(self, tg: str = GREEN) -> list[int]:
        """Distinct consecutive weights of a target group over the run."""
        out: list[int] = []
        for p in self.passes:
            w = p.weights.get(tg, 0)
            if not out or out[-1] != w:
                out.append(w)
        return out


def drive(
    spec: ReleaseSpec,
    obs: Observation,
    status: ReleaseStatus | None = None,
    now: datetime = T0,
    requests: Requests = Requests(),
    measure: Measure | None = None,
    contract: Contracts | None = None,
    knobs: Knobs | None = None,
    max_passes: int = 300,
    until: Callable[[Pass], bool] | None = None,
    between: Callable[[Observation, Pass], Observation] | None = None,
    tick: float | None = None,
    exact: bool = False,
    upstream: Callable[[datetime], Sequence[Upstream]] | None = None,
    hooks: Callable[[str, str, datetime], int | HookResult] | None = None,
) -> Run:
    """Iterate decide -> apply, advancing the clock by each decision's requeue_after, until the
    planner asks for no further pass (or `until` says stop).

    `measure` answers analysis when it is due; `contract` answers the API-contract gate for the
    version the planner asks about (the reconciler finds it over the network); `knobs` make the world
    misbehave; `between` edits the world between passes (a person changing AWS by hand); `tick` caps
    each clock step; `exact`: run `max_passes` passes, at rest or not; `upstream` answers the
    Releases `spec.promotion.requires` names, as the reconciler reads them, at a given time; `hooks`
    answers a hook call (point, name, time) with an HTTP status (a webhook) or a `HookResult` (any
    kind: an ECS task's), when `planner.needs` asks. What is due is gathered by the reconciler's
    own step (`controller.reconciler.gather`), so the planner is driven as the operator drives it."""
    run = Run(spec=spec, status=status or ReleaseStatus(), observation=obs, now=now)
    # The reconciler's own gathering step (controller/reconciler/gather.py), over the answers given.
    sources = Sources(
        measurer=(lambda spec, status, now, namespace="": tuple(measure(now, run.observation, status))) if measure else None,
        contracts=(lambda namespace, spec, version: contract(version)) if contract else None,
        upstream=(lambda namespace, name: _upstream_object(upstream(run.now), namespace, name)) if upstream else None,
        hooks=(lambda namespace, name, uid, spec, status, point, hook: _hook_result(
            point, hook.name, status.revision, hooks(point, hook.name, run.now))) if hooks else None,
    )
    for _ in range(max_passes):
        got = gather(needs(spec, run.status, run.observation, run.now), sources, NS, NAME, "uid", spec, run.status,
                     run.now)
        context = Context(namespace=NS, name=NAME, generation=1, now=run.now, requests=requests,
                          measurements=got.measurements, contract=got.contract, upstream=got.upstream,
                          hooks=got.hooks)
        d = decide(spec, run.status, run.observation, context)
        run.observation = apply(run.observation, d.actions, knobs)
        run.status = d.status
        p = Pass(now=run.now, decision=d, observation=run.observation)
        run.passes.append(p)
        if until is not None and until(p):
            break
        if between is not None:
            run.observation = between(run.observation, p)
        if d.requeue_after is None:
            break
        step = d.requeue_after if tick is None else min(d.requeue_after, tick)
        run.now = run.now + timedelta(seconds=step)
    else:
        if exact:
            return run
        raise AssertionError(f"no rest after {max_passes} passes; last status {run.status.phase} {run.status.message}")
    return run


class _Unreadable(Exception):
    """An upstream Release the test says could not be read: its `error`, as the API server's answer."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.status = error


def _upstream_object(given: Sequence[Upstream], namespace: str, name: str) -> Mapping[str, Any] | None:
    """An upstream Release as the API server would answer for it (the test gives it parsed)."""
    found = next((u for u in given if (u.namespace, u.name) == (namespace, name)), None)
    if found is not None and found.error is not None:
        raise _Unreadable(found.error)
    if found is None or found.status is None:
        return None
    return {"status": found.status.to_wire()}


def _hook_result(point: str, name: str, revision: int, answer: int | HookResult) -> HookResult:
    if isinstance(answer, HookResult):
        return HookResult(point, name, revision, answer.passed, answer.message, answer.final)
    return HookResult(point, name, revision, 200 <= answer < 300, f"HTTP {answer}")


def ctx(now: datetime = T0, requests: Requests = Requests(), measurements: Sequence[Measurement] = ()) -> Context:
    return Context(namespace=NS, name=NAME, generation=1, now=now, requests=requests, measurements=tuple(measurements))


def settled(spec_version: str = "1.0.0", strategy: dict[str, Any] | None = None, **kw: Any) -> Run:
    """A Release adopted at `spec_version` on a world running it: the usual starting point."""
    return drive(make_spec(spec_version, strategy), world(spec_version, **kw))
