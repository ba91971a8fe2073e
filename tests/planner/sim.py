"""A tiny, pure world simulator for planner tests: applies actions to an Observation.

It does what ECS, the ALB, CloudFront and SSM would do with each action, instantly, so a test can
iterate `decide` -> apply -> `decide` and watch a rollout walk its steps. Knobs make the world
misbehave the ways that matter: task sets that never stabilise, actions that get lost, an ECS
deployment that fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Sequence

from controller.api.release import Measurement, ReleaseSpec, ReleaseStatus, Verdict
from controller.planner import Context, Decision, Requests, analysis_due, decide
from controller.planner.actions import (
    Action,
    DeleteTaskSet,
    EnsureTaskSet,
    PublishFlags,
    ScaleTaskSet,
    SetListenerWeights,
    SetOriginPath,
    SetPrimaryTaskSet,
    UpdateServiceImage,
)
from controller.planner.world import Deployment, Frontend, Listener, Observation, Service, TaskSet

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
NS, NAME = "production", "pratiko"
LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/web/1/2"
BLUE = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/blue/1"
GREEN = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/green/2"
DIST = "E2ABCDEF"


def image(version: str) -> str:
    return f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:{version}"


def version_of(img: str | None) -> str | None:
    return img.rsplit(":", 1)[1] if img else None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def make_spec(version: str = "2.0.0", strategy: dict[str, Any] | None = None, **over: Any) -> ReleaseSpec:
    body: dict[str, Any] = {
        "environment": "production",
        "backend": {
            "version": version,
            "image": image(version),
            "ecs": {"cluster": "prod", "service": "backend", "containerName": "api"},
            "traffic": {"listenerArn": LISTENER, "stableTargetGroupArn": BLUE, "canaryTargetGroupArn": GREEN},
        },
        "strategy": strategy or {"type": "Fast"},
    }
    return ReleaseSpec.model_validate(_merge(body, over))


def world(
    version: str = "1.0.0",
    controller: str = "EXTERNAL",
    frontend_path: str | None = None,
    flags: dict[str, Any] | None = None,
    empty: bool = False,
) -> Observation:
    """A service running `version` from the blue target group (task set made outside the controller)."""
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
        task_sets=task_sets,
    )
    fe = Frontend(distribution_id=DIST, origin_id="web", origin_path=frontend_path) if frontend_path else None
    return Observation(
        service=service,
        listener=Listener(arn=LISTENER, weights={BLUE: 100, GREEN: 0}),
        frontend=fe,
        flags=flags,
        backend_version_serving=None if empty else version,
    )


@dataclass
class Knobs:
    stabilizing: bool = False  # new task sets never reach STEADY_STATE
    lose: Callable[[Action], bool] = lambda a: False  # actions that silently do not land
    ecs_rollout_state: str = "COMPLETED"  # what an ECS-controller deployment ends in


def apply(obs: Observation, actions: Iterable[Action], knobs: Knobs | None = None) -> Observation:
    """The world after `actions`, as AWS would show it on the next read."""
    knobs = knobs or Knobs()
    svc = obs.service
    assert svc is not None
    task_sets = list(svc.task_sets)
    listener = obs.listener
    frontend = obs.frontend
    flags = obs.flags
    svc_image, deployments = svc.image, svc.deployments

    def index(external_id: str, task_set_id: str | None) -> int:
        for i, ts in enumerate(task_sets):
            if (task_set_id and ts.id == task_set_id) or (external_id and ts.external_id == external_id):
                return i
        raise AssertionError(f"no task set {external_id or task_set_id}")

    for a in actions:
        if knobs.lose(a):
            continue
        if isinstance(a, EnsureTaskSet):
            if not any(ts.external_id == a.external_id for ts in task_sets):
                new_id = f"ts-{a.external_id.rsplit('.', 1)[-1]}"
                task_sets.append(TaskSet(
                    id=new_id, arn=f"arn:{new_id}", external_id=a.external_id, task_definition=f"backend:{a.image}",
                    image=a.image, scale_percent=a.scale_percent,
                    status="PRIMARY" if not task_sets else "ACTIVE", target_group_arn=a.target_group_arn,
                    stability="STABILIZING" if knobs.stabilizing else "STEADY_STATE",
                ))
        elif isinstance(a, ScaleTaskSet):
            i = index(a.external_id, a.task_set_id)
            task_sets[i] = replace(task_sets[i], scale_percent=a.scale_percent)
        elif isinstance(a, SetPrimaryTaskSet):
            i = index(a.external_id, a.task_set_id)
            task_sets = [replace(ts, status="PRIMARY" if j == i else "ACTIVE") for j, ts in enumerate(task_sets)]
        elif isinstance(a, DeleteTaskSet):
            task_sets = [ts for ts in task_sets if ts.id != a.task_set_id]
        elif isinstance(a, SetListenerWeights):
            assert listener is not None
            listener = replace(listener, weights=dict(a.weights))
        elif isinstance(a, UpdateServiceImage):
            svc_image = a.image
            deployments = (Deployment(id="ecs-svc/1", status="PRIMARY", task_definition="backend:2", image=a.image,
                                      rollout_state=knobs.ecs_rollout_state, running_count=2, desired_count=2),)
        elif isinstance(a, SetOriginPath):
            frontend = Frontend(distribution_id=a.distribution_id, origin_id=a.origin_id, origin_path=a.origin_path)
        elif isinstance(a, PublishFlags):
            flags = dict(a.flags)
        else:
            raise AssertionError(f"unexpected action {a}")
    new_svc = replace(svc, task_sets=tuple(task_sets), image=svc_image, deployments=deployments)
    primary = new_svc.primary
    serving = version_of(primary.image) if primary else version_of(svc_image) if svc.deployment_controller == "ECS" else None
    return replace(obs, service=new_svc, listener=listener, frontend=frontend, flags=flags,
                   backend_version_serving=serving)


def measurement(metric: str, value: float, now: datetime, limit: float = 0.05) -> Measurement:
    failed = value > limit
    return Measurement(
        metric=metric, value=value, verdict=Verdict.FAILED if failed else Verdict.PASSED,
        message=f"{metric} {value} > max {limit}" if failed else f"{metric} {value} <= max {limit}", time=now,
    )


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
    knobs: Knobs | None = None,
    max_passes: int = 300,
    until: Callable[[Pass], bool] | None = None,
    tick: float | None = None,
) -> Run:
    """Iterate decide -> apply, advancing the clock by each decision's requeue_after, until the
    planner asks for no further pass (or `until` says stop). `tick` caps each clock step."""
    run = Run(spec=spec, status=status or ReleaseStatus(), observation=obs, now=now)
    for _ in range(max_passes):
        measurements: Sequence[Measurement] = ()
        if measure is not None and analysis_due(spec, run.status, run.now):
            measurements = measure(run.now, run.observation, run.status)
        ctx = Context(namespace=NS, name=NAME, generation=1, now=run.now, requests=requests,
                      measurements=tuple(measurements))
        d = decide(spec, run.status, run.observation, ctx)
        run.observation = apply(run.observation, d.actions, knobs)
        run.status = d.status
        p = Pass(now=run.now, decision=d, observation=run.observation)
        run.passes.append(p)
        if until is not None and until(p):
            break
        if d.requeue_after is None:
            break
        step = d.requeue_after if tick is None else min(d.requeue_after, tick)
        run.now = run.now + timedelta(seconds=step)
    else:
        raise AssertionError(f"no rest after {max_passes} passes; last status {run.status.phase} {run.status.message}")
    return run


def ctx(now: datetime = T0, requests: Requests = Requests(), measurements: Sequence[Measurement] = ()) -> Context:
    return Context(namespace=NS, name=NAME, generation=1, now=now, requests=requests, measurements=tuple(measurements))


def settled(spec_version: str = "1.0.0", strategy: dict[str, Any] | None = None, **kw: Any) -> Run:
    """A Release adopted at `spec_version` on a world running it: the usual starting point."""
    return drive(make_spec(spec_version, strategy), world(spec_version, **kw))
