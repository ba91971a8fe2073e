"""One read of the AWS a Release points at, batched across Releases: `Observer`.

What a pass reads, and what it costs in API calls (steady state, task definitions cached):

    read                                      one Release alone   many Releases (`observe_many`)
    ecs:DescribeServices                      1                   1 per cluster per 10 services
    elasticloadbalancing:DescribeListeners    1                   1 per 20 listeners
    cloudfront:GetDistribution                1                   cloudfront:ListDistributions,
                                                                  1 per 100 distributions
    ssm:GetParameters                         1                   1 per 10 Releases
    total                                     4                   e.g. 12 Releases in one cluster: 6;
                                                                  200 in one cluster: 20+10+2+20 = 52

Reads made only when needed: for a spec with a preview step (or a blue-green previewHeader),
elasticloadbalancing:DescribeRules and DescribeTags of its listener (the preview rule is found by its
tag, `aws.preview.preview_rules`); ecs:DescribeTaskDefinition once per task definition ARN for the life
of the process (task definitions are immutable), elasticloadbalancing:DescribeTargetGroups when a
spec's target group is not in the listener's forward action (a group the listener forwards to
exists: ALB refuses to delete it), ecs:DescribeServiceDeployments (1 per 20) and DescribeServiceRevisions
(once per revision, target and sources) for native deployments, and cloudfront:GetDistribution +
GetContinuousDeploymentPolicy (+ ListDistributions) for a frontend canary with a policy attached.

The operator's resync reads every settled Release in one batch (`observe_many`, called by
`Reconciler.resync`); a Release whose world changed then gets a pass on its snapshot
(`observe(key, spec, fresh=False)`), so steady state costs well under one call per Release per
resync. A pass woken by a change reads afresh for its Release only.

Not-found cases become `ObservationError`s with the contract's reasons; the rest of the world is
still reported. This module must not change AWS.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import semver

from controller.api.release import ReleaseSpec
from controller.aws import lean
from controller.aws.clients import AwsClients
from controller.aws.errors import AwsEffectError, AwsFailure, is_not_found, observation_error
from controller.aws.frontends import read_flags, read_frontends
from controller.aws.native_reads import NATIVE_STRATEGIES, native_deployment, service_deployments
from controller.aws.preview import preview_rules
from controller.aws.shapes import (
    chunks,
    ecr_reference,
    forward_weights,
    is_failed_task,
    parse_service,
    seconds,
    service_name,
    serving_version,
    stopped_task,
)
from controller.aws.targets import Key, Targets
from controller.aws.taskdefs import TaskDefinitionCache
from controller.planner.world import (
    Frontend,
    Listener,
    Observation,
    ObservationError,
    Service,
    ServiceView,
    StoppedTask,
)

__all__ = ["Observer", "TaskDefinitionCache", "Targets", "observe"]


SERVICES_PER_CALL = 10  # DescribeServices' limit
LISTENERS_PER_CALL = 20


@dataclass
class Observer:
    """Reads the world for Releases; thread-safe (the operator calls it from worker threads)."""

    clients: AwsClients
    cache: TaskDefinitionCache = field(default_factory=TaskDefinitionCache)
    snapshot_max_age: float = 120.0  # seconds a batched read's snapshot may serve a pass
    clock: Callable[[], float] = time.monotonic
    _snapshots: dict[Key, tuple[float, Observation]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _images_seen: set[str] = field(default_factory=set, repr=False)  # ECR images found: they stay
    _revisions: dict[str, str | None] = field(default_factory=dict, repr=False)  # service revision -> task def

    @property
    def _reads(self) -> AwsClients:
        """Clients for the four batched reads: lean models when built with them (controller/aws/lean.py)."""
        return self.clients.reads or self.clients

    # ------------------------------------------------------------------ the API the reconciler uses

    def observe(self, key: Key, spec: ReleaseSpec, fresh: bool = True) -> Observation:
        """The world of one Release. `fresh=False` takes the snapshot of the last batched read, if
        one is young enough (and uses it up); otherwise this Release's world is read now."""
        # Either way the snapshot is used up: after a fresh read it is older than what this pass saw.
        with self._lock:
            taken = self._snapshots.pop(key, None)
        if not fresh and taken is not None and self.clock() - taken[0] <= self.snapshot_max_age:
            return taken[1]
        return self._read(Targets.each(key, spec))[key]

    def observe_many(self, items: Iterable[tuple[Key, ReleaseSpec]]) -> dict[Key, Observation]:
        """The worlds of many Releases in batched calls; each is kept as that Release's snapshot."""
        targets = [t for key, spec in items for t in Targets.each(key, spec)]
        with lean.reusing_parses(self._reads.parses):  # the round's questions are the same each time (lean.py)
            seen = self._read(targets)
        now = self.clock()
        with self._lock:
            for key, obs in seen.items():
                self._snapshots[key] = (now, obs)
        return seen

    def forget(self, key: Key) -> None:
        with self._lock:
            self._snapshots.pop(key, None)

    # ------------------------------------------------------------------ reading

    def _read(self, targets: Sequence[Targets]) -> dict[Key, Observation]:
        services = self._services(targets)
        listeners, target_group_errors = self._listeners(targets)
        frontends = read_frontends(self.clients, targets)
        flags = read_flags(self.clients, targets)
        natives = service_deployments(self.clients, services.values())
        out: dict[tuple[Key, str], Observation] = {}
        for t in targets:
            errors: list[ObservationError] = []
            service = services.get((t.cluster, service_name(t.service)))
            if isinstance(service, ObservationError):
                errors.append(service)
                service = None
            listener: Listener | None = None
            if t.listener_arn:
                got_listener = listeners.get(t.listener_arn)
                if isinstance(got_listener, ObservationError):
                    errors.append(got_listener)
                else:
                    listener = got_listener
                if (t.key, t.member) in target_group_errors:
                    errors.append(target_group_errors[(t.key, t.member)])
            frontend: Frontend | None = None
            if t.distribution_id:
                got_frontend = frontends.get(t.key)
                if isinstance(got_frontend, ObservationError):
                    errors.append(got_frontend)
                else:
                    frontend = got_frontend
                if frontend is not None and frontend.origin_path is None:
                    errors.append(ObservationError(
                        "OriginNotFound",
                        f"distribution {t.distribution_id} has no origin with id {t.origin_id!r}",
                    ))
            published = flags.get(t.flags_parameter or "")
            if isinstance(published, ObservationError):
                errors.append(published)
                published = None
            svc = parse_service(service, t.container_name, self.cache.get) if service is not None else None
            if svc is not None and service is not None and svc.strategy in NATIVE_STRATEGIES:
                got_native = native_deployment(self.clients, self.cache, self._revisions,
                                               service.get("currentServiceDeployment"), t.container_name, natives)
                if isinstance(got_native, ObservationError):
                    errors.append(got_native)
                else:
                    svc = replace(svc, native=got_native)
            if svc is not None:
                svc = self._in_motion(svc, t.cluster)
                missing = self._missing_image(t, svc)
                if missing is not None:
                    errors.append(missing)
            out[(t.key, t.member)] = Observation(
                service=svc,
                listener=listener,
                frontend=frontend,
                flags=published,
                errors=tuple(errors),
                backend_version_serving=serving_version(svc, listener),
            )
        return _by_release(targets, out)

    def _in_motion(self, svc: Service, cluster: str) -> Service:
        """Target health and failed tasks of the task sets that are not PRIMARY (a canary, a
        leftover), which weight may move to; a settled service costs no extra call."""
        if not any(ts.status != "PRIMARY" for ts in svc.task_sets):
            return svc
        health: dict[str, int | None] = {}
        task_sets = []
        for ts in svc.task_sets:
            if ts.status == "PRIMARY":
                task_sets.append(ts)
                continue
            extra: dict[str, Any] = {}
            if ts.target_group_arn:
                if ts.target_group_arn not in health:
                    health[ts.target_group_arn] = self._healthy_targets(ts.target_group_arn)
                extra["healthy_targets"] = health[ts.target_group_arn]
            extra["stopped_tasks"] = self._failed_tasks(cluster, ts.id)
            task_sets.append(replace(ts, **extra))
        return replace(svc, task_sets=tuple(task_sets))

    def _healthy_targets(self, target_group_arn: str) -> int | None:
        try:
            resp = self.clients.elbv2.describe_target_health(TargetGroupArn=target_group_arn)
        except AwsFailure:
            return None  # unread: the other figures still hold the task set back if it is not ready
        return sum(1 for d in resp.get("TargetHealthDescriptions", [])
                   if (d.get("TargetHealth") or {}).get("State") == "healthy")

    def _failed_tasks(self, cluster: str, task_set_id: str) -> tuple[StoppedTask, ...]:
        ecs = self.clients.ecs
        try:
            arns = ecs.list_tasks(cluster=cluster, startedBy=task_set_id, desiredStatus="STOPPED").get("taskArns", [])
            if not arns:
                return ()
            tasks = ecs.describe_tasks(cluster=cluster, tasks=arns[:100]).get("tasks", [])
        except AwsFailure:
            return ()
        failed = sorted((t for t in tasks if is_failed_task(t)), key=lambda t: seconds(t.get("stoppedAt")) or 0.0)
        return tuple(stopped_task(t) for t in failed)

    def _missing_image(self, t: Targets, svc: Service) -> ObservationError | None:
        """An ECR image the spec asks for that is neither running nor in its repository.

        Checked before anything is created, so a typo in a tag is refused instead of becoming a
        task set whose tasks never pull. Only ECR images: another registry (Docker Hub, GHCR, a
        private one) cannot be asked with the controller's AWS credentials, so those are let through
        and a bad one shows as stopped tasks (CannotPullContainerError), rolled back like a crash.
        """
        image = t.image
        if not image or self.clients.ecr is None or image in self._images_seen:
            return None
        if image == svc.image or any(ts.image == image for ts in svc.task_sets):
            return None
        ref = ecr_reference(image)
        if ref is None:
            return None
        repository, image_id = ref
        try:
            self.clients.ecr.describe_images(repositoryName=repository, imageIds=[image_id])
        except AwsFailure as exc:
            if is_not_found(exc, "ImageNotFoundException") or is_not_found(exc, "RepositoryNotFoundException"):
                return ObservationError("ImageNotFound", f"image {image} is not in ECR repository {repository}")
            return observation_error(exc, f"ECR repository {repository}")
        with self._lock:
            self._images_seen.add(image)
        return None

    def _services(self, targets: Sequence[Targets]) -> dict[tuple[str, str], Mapping[str, Any] | ObservationError]:
        by_cluster: dict[str, list[str]] = defaultdict(list)
        for t in targets:
            name = service_name(t.service)
            if name not in by_cluster[t.cluster]:
                by_cluster[t.cluster].append(name)
        ecs = self._reads.ecs
        found: dict[tuple[str, str], Mapping[str, Any] | ObservationError] = {}
        for cluster, names in by_cluster.items():
            for chunk in chunks(names, SERVICES_PER_CALL):
                try:
                    resp = ecs.describe_services(cluster=cluster, services=chunk)
                except AwsFailure as exc:
                    err = observation_error(exc, f"ECS cluster {cluster}")
                    if is_not_found(exc, "ClusterNotFoundException"):
                        err = ObservationError("ClusterNotFound", f"ECS cluster {cluster} does not exist")
                    found.update({(cluster, n): err for n in chunk})
                    continue
                for raw in resp.get("services", []):
                    if raw.get("status") == "INACTIVE":
                        continue  # a deleted service lingers as INACTIVE: it does not exist for us
                    found[(cluster, raw["serviceName"])] = raw
                for name in chunk:
                    if (cluster, name) not in found:
                        found[(cluster, name)] = ObservationError(
                            "ServiceNotFound", f"ECS service {name} does not exist in cluster {cluster}"
                        )
        self._describe_task_definitions(found.values())
        return found

    def _describe_task_definitions(self, services: Iterable[Mapping[str, Any] | ObservationError]) -> None:
        arns: set[str] = set()
        for raw in services:
            if isinstance(raw, ObservationError):
                continue
            arns.update(ts["taskDefinition"] for ts in raw.get("taskSets", []) if ts.get("taskDefinition"))
            arns.update(d["taskDefinition"] for d in raw.get("deployments", []) if d.get("taskDefinition"))
            if raw.get("taskDefinition"):
                arns.add(raw["taskDefinition"])
        for arn in sorted(arns):
            if self.cache.get(arn) is None:
                try:
                    self.cache.fetch(self.clients.ecs, arn)
                except AwsFailure:
                    pass  # the image stays unknown (None); the planner treats it as not ours

    def _listeners(
        self, targets: Sequence[Targets]
    ) -> tuple[dict[str, Listener | ObservationError], dict[tuple[Key, str], ObservationError]]:
        """Listeners by ARN, and a TargetGroupNotFound error per Release whose spec names one."""
        arns = list(dict.fromkeys(t.listener_arn for t in targets if t.listener_arn))
        found: dict[str, Listener | ObservationError] = {}
        for chunk in chunks(arns, LISTENERS_PER_CALL):
            found.update(self._describe_listeners(chunk))
        for arn in dict.fromkeys(t.listener_arn for t in targets if t.listener_arn and t.previews):
            listener = found.get(arn or "")
            if isinstance(listener, Listener):
                found[listener.arn] = self._with_previews(listener)
        # A spec target group missing from the forward action: does it exist at all?
        missing: dict[tuple[Key, str], list[str]] = {}
        for t in targets:
            listener = found.get(t.listener_arn or "")
            if isinstance(listener, Listener):
                absent = [tg for tg in t.target_group_arns if tg not in listener.weights]
                if absent:
                    missing[(t.key, t.member)] = absent
        tg_errors: dict[tuple[Key, str], ObservationError] = {}
        if missing:
            unknown = self._unknown_target_groups(sorted({tg for tgs in missing.values() for tg in tgs}))
            for key, tgs in missing.items():
                gone = [tg for tg in tgs if tg in unknown]
                if gone:
                    tg_errors[key] = unknown[gone[0]]
        return found, tg_errors

    def _describe_listeners(self, arns: list[str]) -> dict[str, Listener | ObservationError]:
        try:
            resp = self._reads.elbv2.describe_listeners(ListenerArns=arns)
        except AwsFailure as exc:
            if is_not_found(exc, "ListenerNotFound") and len(arns) > 1:
                # One missing listener fails the whole call: ask one by one to say which.
                out: dict[str, Listener | ObservationError] = {}
                for arn in arns:
                    out.update(self._describe_listeners([arn]))
                return out
            if is_not_found(exc, "ListenerNotFound"):
                return {arns[0]: ObservationError("ListenerNotFound", f"ALB listener {arns[0]} does not exist")}
            return {arn: observation_error(exc, f"ALB listener {arn}") for arn in arns}
        return {raw["ListenerArn"]: Listener(raw["ListenerArn"], forward_weights(raw)) for raw in resp["Listeners"]}

    def _with_previews(self, listener: Listener) -> Listener | ObservationError:
        """The listener with its preview rules (`aws.preview.preview_rules`): for a spec with a preview only."""
        try:
            rules = preview_rules(self._reads.elbv2, listener.arn)
        except AwsEffectError as exc:
            return ObservationError(exc.reason, exc.message, retryable=exc.retryable)
        return replace(listener, previews=rules, previews_read=True)

    def _unknown_target_groups(self, arns: list[str]) -> dict[str, ObservationError]:
        try:
            self.clients.elbv2.describe_target_groups(TargetGroupArns=arns)
            return {}
        except AwsFailure as exc:
            if is_not_found(exc, "TargetGroupNotFound"):
                if len(arns) > 1:
                    out: dict[str, ObservationError] = {}
                    for arn in arns:
                        out.update(self._unknown_target_groups([arn]))
                    return out
                return {arns[0]: ObservationError("TargetGroupNotFound", f"target group {arns[0]} does not exist")}
            return {arn: observation_error(exc, f"target group {arn}") for arn in arns}



def _by_release(targets: Sequence[Targets], seen: Mapping[tuple[Key, str], Observation]) -> dict[Key, Observation]:
    """One Observation per Release: its one service's; or, for a tier of several, its first
    service's with every service's view in `services` and every service's errors, and as the version
    the backend serves the least its services serve (a frontend may count on no more than that)."""
    members: dict[Key, list[str]] = {}
    for t in targets:
        members.setdefault(t.key, []).append(t.member)
    out: dict[Key, Observation] = {}
    for key, names in members.items():
        if names == [""]:
            out[key] = seen[(key, "")]
            continue
        head = seen[(key, names[0])]
        views = {n: ServiceView(seen[(key, n)].service, seen[(key, n)].listener) for n in names}
        errors = tuple(e for n in names for e in seen[(key, n)].errors)
        out[key] = replace(head, services=views, errors=errors, backend_version_serving=least_version(
            seen[(key, n)].backend_version_serving for n in names))
    return out


def least_version(versions: Iterable[str | None]) -> str | None:
    """The lowest of semantic `versions`; None when any is unknown or not a semantic version.

    >>> least_version(["2.0.0", "1.10.0", "2.0.0"]), least_version(["2.0.0", None])
    ('1.10.0', None)
    """
    parsed = []
    for v in versions:
        if v is None or not semver.Version.is_valid(v):
            return None
        parsed.append(semver.Version.parse(v))
    return str(min(parsed)) if parsed else None


def observe(key: Key, spec: ReleaseSpec, clients: AwsClients, cache: TaskDefinitionCache | None = None) -> Observation:
    """One Release's world, read now (a convenience over `Observer`)."""
    return Observer(clients, cache or TaskDefinitionCache()).observe(key, spec)


