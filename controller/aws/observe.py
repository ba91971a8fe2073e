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
exists: ALB refuses to delete it), and cloudfront:GetDistribution + GetContinuousDeploymentPolicy
(+ ListDistributions to find the staging copy) for a frontend canary that has a policy attached.

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
import re
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from controller.api.release import ReleaseSpec
from controller.aws import cloudfront as cf_effects  # the effector owns the staging lookups
from controller.aws import lean
from controller.aws.clients import AwsClients
from controller.aws.errors import AwsEffectError, AwsFailure, is_not_found, observation_error
from controller.aws.preview import preview_rules
from controller.aws.shapes import (
    container_image,
    forward_weights,
    origin_path_of,
    parse_deployment,
    parse_flags,
    serving_version,
)
from controller.planner.strategy import has_preview
from controller.planner.tiers import flags_parameter
from controller.planner.world import (
    Deployment,
    Frontend,
    Listener,
    NativeDeployment,
    Observation,
    ObservationError,
    Service,
    StagingDistribution,
    StoppedTask,
    TaskSet,
)

Key = tuple[str, str]

NATIVE_STRATEGIES = frozenset({"BLUE_GREEN", "CANARY", "LINEAR"})  # ECS deploys these itself, with stages

SERVICES_PER_CALL = 10  # DescribeServices' limit
SERVICE_DEPLOYMENTS_PER_CALL = 20  # DescribeServiceDeployments' limit ("a maximum of 20 ARNs", API reference)
LISTENERS_PER_CALL = 20
PARAMETERS_PER_CALL = 10  # GetParameters' limit


@dataclass(frozen=True)
class Targets:
    """The AWS names one Release points at, taken from its spec."""

    key: Key
    cluster: str
    service: str
    container_name: str
    listener_arn: str | None = None
    target_group_arns: tuple[str, ...] = ()
    distribution_id: str | None = None
    origin_id: str | None = None
    frontend_canary: bool = False
    flags_parameter: str | None = None
    image: str | None = None
    previews: bool = False  # the spec has a preview: read the listener's preview rules too

    @classmethod
    def of(cls, key: Key, spec: ReleaseSpec) -> "Targets":
        traffic, fe = spec.backend.traffic, spec.frontend
        return cls(
            key=key,
            cluster=spec.backend.ecs.cluster,
            service=spec.backend.ecs.service,
            container_name=spec.backend.ecs.container_name,
            listener_arn=traffic.listener_arn if traffic else None,
            target_group_arns=(traffic.stable_target_group_arn, traffic.canary_target_group_arn) if traffic else (),
            distribution_id=fe.cloudfront.distribution_id if fe else None,
            origin_id=fe.cloudfront.origin_id if fe else None,
            frontend_canary=bool(fe and fe.canary and fe.canary.steps),
            flags_parameter=flags_parameter(*key),
            image=spec.backend.image,
            previews=traffic is not None and has_preview(spec),
        )


class TaskDefinitionCache:
    """Task definitions by ARN, kept for the life of the process: a revision never changes."""

    def __init__(self) -> None:
        self._by_arn: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, arn: str) -> Mapping[str, Any] | None:
        with self._lock:
            return self._by_arn.get(arn)

    def put(self, td: Mapping[str, Any]) -> None:
        with self._lock:
            self._by_arn[td["taskDefinitionArn"]] = td

    def fetch(self, ecs: Any, arn: str) -> Mapping[str, Any]:
        """The task definition, described at most once per ARN."""
        found = self.get(arn)
        if found is None:
            found = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            self.put(found)
            if found["taskDefinitionArn"] != arn:  # asked by family:revision; remember that name too
                with self._lock:
                    self._by_arn[arn] = found
        return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_arn)


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
        return self._read([Targets.of(key, spec)])[key]

    def observe_many(self, items: Iterable[tuple[Key, ReleaseSpec]]) -> dict[Key, Observation]:
        """The worlds of many Releases in batched calls; each is kept as that Release's snapshot."""
        targets = [Targets.of(key, spec) for key, spec in items]
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
        frontends = self._frontends(targets)
        flags = self._flags(targets)
        natives = self._service_deployments(services.values())
        out: dict[Key, Observation] = {}
        for t in targets:
            errors: list[ObservationError] = []
            service = services.get((t.cluster, _name(t.service)))
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
                if t.key in target_group_errors:
                    errors.append(target_group_errors[t.key])
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
            svc = _service(service, t.container_name, self.cache) if service is not None else None
            if svc is not None and service is not None and svc.strategy in NATIVE_STRATEGIES:
                got_native = self._native(service.get("currentServiceDeployment"), t.container_name, natives)
                if isinstance(got_native, ObservationError):
                    errors.append(got_native)
                else:
                    svc = replace(svc, native=got_native)
            if svc is not None:
                svc = self._in_motion(svc, t.cluster)
                missing = self._missing_image(t, svc)
                if missing is not None:
                    errors.append(missing)
            out[t.key] = Observation(
                service=svc,
                listener=listener,
                frontend=frontend,
                flags=published,
                errors=tuple(errors),
                backend_version_serving=serving_version(svc, listener),
            )
        return out

    def _service_deployments(
        self, services: Iterable[Mapping[str, Any] | ObservationError]
    ) -> dict[str, Mapping[str, Any] | ObservationError]:
        """The current service deployments of the services ECS deploys natively, in batched calls
        (DescribeServiceDeployments takes up to 20 ARNs): a settled fleet adds one call per 20."""
        arns = sorted({str(raw["currentServiceDeployment"]) for raw in services
                       if not isinstance(raw, ObservationError) and raw.get("currentServiceDeployment")
                       and (raw.get("deploymentConfiguration") or {}).get("strategy") in NATIVE_STRATEGIES})
        out: dict[str, Mapping[str, Any] | ObservationError] = {}
        for chunk in _chunks(arns, SERVICE_DEPLOYMENTS_PER_CALL):
            try:
                found = self.clients.ecs.describe_service_deployments(serviceDeploymentArns=chunk)
            except AwsFailure as exc:
                error = observation_error(exc, f"ECS service deployments {', '.join(chunk)}")
                out.update(dict.fromkeys(chunk, error))
                continue
            for doc in found.get("serviceDeployments") or []:
                out[str(doc["serviceDeploymentArn"])] = doc
        return out

    def _native(self, arn: str | None, container_name: str,
                found: Mapping[str, Mapping[str, Any] | ObservationError]) -> NativeDeployment | ObservationError | None:
        """One service's current deployment (from `_service_deployments`), with the image its target
        revision runs: the revision's task definition is read once per revision (revisions never change)."""
        doc = found.get(arn) if arn else None
        if doc is None or isinstance(doc, ObservationError):
            return doc
        ecs = self.clients.ecs
        revision = (doc.get("targetServiceRevision") or {}).get("arn")
        try:
            if revision and revision not in self._revisions:
                got = ecs.describe_service_revisions(serviceRevisionArns=[revision]).get("serviceRevisions") or []
                self._revisions[revision] = got[0].get("taskDefinition") if got else None
            td = self._revisions.get(revision) if revision else None
            image = container_image(self.cache.fetch(ecs, td), container_name) if td else None
        except AwsFailure as exc:
            return observation_error(exc, f"ECS service revision {revision}")
        return parse_deployment(doc, td, image)

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
        failed = sorted((t for t in tasks if is_failed_task(t)), key=lambda t: _seconds(t.get("stoppedAt")) or 0.0)
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
            name = _name(t.service)
            if name not in by_cluster[t.cluster]:
                by_cluster[t.cluster].append(name)
        ecs = self._reads.ecs
        found: dict[tuple[str, str], Mapping[str, Any] | ObservationError] = {}
        for cluster, names in by_cluster.items():
            for chunk in _chunks(names, SERVICES_PER_CALL):
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
    ) -> tuple[dict[str, Listener | ObservationError], dict[Key, ObservationError]]:
        """Listeners by ARN, and a TargetGroupNotFound error per Release whose spec names one."""
        arns = list(dict.fromkeys(t.listener_arn for t in targets if t.listener_arn))
        found: dict[str, Listener | ObservationError] = {}
        for chunk in _chunks(arns, LISTENERS_PER_CALL):
            found.update(self._describe_listeners(chunk))
        for arn in dict.fromkeys(t.listener_arn for t in targets if t.listener_arn and t.previews):
            listener = found.get(arn or "")
            if isinstance(listener, Listener):
                found[listener.arn] = self._with_previews(listener)
        # A spec target group missing from the forward action: does it exist at all?
        missing: dict[Key, list[str]] = {}
        for t in targets:
            listener = found.get(t.listener_arn or "")
            if isinstance(listener, Listener):
                absent = [tg for tg in t.target_group_arns if tg not in listener.weights]
                if absent:
                    missing[t.key] = absent
        tg_errors: dict[Key, ObservationError] = {}
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

    def _frontends(self, targets: Sequence[Targets]) -> dict[Key, Frontend | ObservationError]:
        wanted = [t for t in targets if t.distribution_id]
        ids = list(dict.fromkeys(t.distribution_id for t in wanted if t.distribution_id))
        # id -> (status, DistributionConfig or a list summary: both carry Origins)
        configs: dict[str, tuple[str, Mapping[str, Any]] | ObservationError] = {}
        from_list = len(ids) > 1
        if from_list:
            # One listing serves many distributions (summaries carry origins and status).
            try:
                remaining = set(ids)
                marker = ""
                while remaining:
                    page = self._reads.cloudfront.list_distributions(
                        **({"Marker": marker} if marker else {}), MaxItems="100")
                    dl = page["DistributionList"]
                    for summary in dl.get("Items", []) or []:
                        if summary["Id"] in remaining:
                            configs[summary["Id"]] = (summary.get("Status", ""), summary)
                            remaining.discard(summary["Id"])
                    if not dl.get("IsTruncated"):
                        break
                    marker = dl.get("NextMarker", "")
                for missing in remaining:
                    configs[missing] = ObservationError(
                        "DistributionNotFound", f"CloudFront distribution {missing} does not exist"
                    )
            except AwsFailure as exc:
                configs.update({i: observation_error(exc, f"CloudFront distribution {i}") for i in ids})
        else:
            for dist_id in ids:
                configs[dist_id] = self._get_distribution(dist_id)
        out: dict[Key, Frontend | ObservationError] = {}
        for t in wanted:
            assert t.distribution_id is not None
            got = configs[t.distribution_id]
            if isinstance(got, ObservationError):
                out[t.key] = got
                continue
            status, config = got
            staging = None
            if t.frontend_canary:
                staging_or_error = self._staging(t.distribution_id, config, t.origin_id or "", from_list)
                if isinstance(staging_or_error, ObservationError):
                    out[t.key] = staging_or_error
                    continue
                staging = staging_or_error
            out[t.key] = Frontend(
                distribution_id=t.distribution_id,
                origin_id=t.origin_id or "",
                origin_path=origin_path_of(config, t.origin_id or ""),
                status=status,
                staging=staging,
            )
        return out

    def _get_distribution(self, dist_id: str) -> tuple[str, Mapping[str, Any]] | ObservationError:
        try:
            dist = self.clients.cloudfront.get_distribution(Id=dist_id)["Distribution"]
        except AwsFailure as exc:
            if is_not_found(exc, "NoSuchDistribution"):
                return ObservationError("DistributionNotFound", f"CloudFront distribution {dist_id} does not exist")
            return observation_error(exc, f"CloudFront distribution {dist_id}")
        return dist.get("Status", ""), dist["DistributionConfig"]

    def _staging(
        self, dist_id: str, config: Mapping[str, Any], origin_id: str, summary: bool
    ) -> StagingDistribution | None | ObservationError:
        """CloudFront continuous deployment state, read only for Releases with a frontend canary."""
        if summary:
            got = self._get_distribution(dist_id)  # a list summary lacks the policy id
            if isinstance(got, ObservationError):
                return got
            config = got[1]
        policy_id = config.get("ContinuousDeploymentPolicyId") or ""
        if not policy_id:
            return None
        try:
            return cf_effects.read_staging(self.clients.cloudfront, policy_id, origin_id)
        except AwsFailure as exc:
            return observation_error(exc, f"continuous deployment policy {policy_id} of {dist_id}")

    def _flags(self, targets: Sequence[Targets]) -> dict[str, Mapping[str, Any] | ObservationError | None]:
        names = list(dict.fromkeys(t.flags_parameter for t in targets if t.flags_parameter))
        out: dict[str, Mapping[str, Any] | ObservationError | None] = {}
        for chunk in _chunks(names, PARAMETERS_PER_CALL):
            try:
                resp = self._reads.ssm.get_parameters(Names=chunk)
            except AwsFailure as exc:
                out.update({n: observation_error(exc, f"SSM parameter {n}") for n in chunk})
                continue
            for p in resp.get("Parameters", []):
                out[p["Name"]] = parse_flags(p.get("Value"))
            for n in resp.get("InvalidParameters", []):
                out[n] = None
        return out


def observe(key: Key, spec: ReleaseSpec, clients: AwsClients, cache: TaskDefinitionCache | None = None) -> Observation:
    """One Release's world, read now (a convenience over `Observer`)."""
    return Observer(clients, cache or TaskDefinitionCache()).observe(key, spec)


def _service(raw: Mapping[str, Any], container_name: str, cache: TaskDefinitionCache) -> Service:
    task_sets = tuple(
        TaskSet(
            id=ts["id"],
            arn=ts["taskSetArn"],
            external_id=ts.get("externalId") or None,  # ECS says "" for none
            task_definition=ts.get("taskDefinition", ""),
            image=container_image(cache.get(ts.get("taskDefinition", "")), container_name),
            scale_percent=float((ts.get("scale") or {}).get("value", 0.0)),
            status=ts.get("status", ""),
            target_group_arn=next((lb.get("targetGroupArn") for lb in ts.get("loadBalancers", [])), None),
            running_count=int(ts.get("runningCount", 0)),
            pending_count=int(ts.get("pendingCount", 0)),
            stability=ts.get("stabilityStatus", "STEADY_STATE"),
            computed_desired_count=(int(ts["computedDesiredCount"]) if ts.get("computedDesiredCount") is not None
                                    else None),
            stability_at=_seconds(ts.get("stabilityStatusAt")),
            updated_at=_seconds(ts.get("updatedAt")),
        )
        for ts in raw.get("taskSets", [])
    )
    deployments = tuple(
        Deployment(
            id=d["id"],
            status=d.get("status", ""),
            task_definition=d.get("taskDefinition", ""),
            image=container_image(cache.get(d.get("taskDefinition", "")), container_name),
            rollout_state=d.get("rolloutState"),
            running_count=int(d.get("runningCount", 0)),
            desired_count=int(d.get("desiredCount", 0)),
        )
        for d in raw.get("deployments", [])
    )
    controller = (raw.get("deploymentController") or {}).get("type", "ECS")
    td = raw.get("taskDefinition")
    advanced = ((raw.get("loadBalancers") or [{}])[0].get("advancedConfiguration") or {})
    return Service(
        arn=raw["serviceArn"],
        cluster=raw.get("clusterArn", ""),
        name=raw["serviceName"],
        deployment_controller=controller,
        desired_count=int(raw.get("desiredCount", 0)),
        status=raw.get("status", "ACTIVE"),
        task_definition=td,
        image=container_image(cache.get(td), container_name) if td else None,
        task_sets=task_sets,
        deployments=deployments,
        strategy=(raw.get("deploymentConfiguration") or {}).get("strategy"),
        native_routing=bool(advanced.get("alternateTargetGroupArn") and advanced.get("productionListenerRule")),
        test_listener=bool(advanced.get("testListenerRule")),
    )


def _seconds(value: Any) -> float | None:
    """A timestamp botocore parsed (datetime, or a float with the fast parser) as Unix seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    stamp = getattr(value, "timestamp", None)
    return float(stamp()) if stamp is not None else None


# Stopped tasks that count as failures (ECS's circuit breaker): the task never started, its
# essential container exited, or its load balancer failed it. A scale-down's stops do not count.
FAILED_STOP_CODES = frozenset({"TaskFailedToStart", "EssentialContainerExited"})


def is_failed_task(task: Mapping[str, Any]) -> bool:
    return task.get("stopCode") in FAILED_STOP_CODES or "health checks" in str(task.get("stoppedReason", ""))


def stopped_task(task: Mapping[str, Any]) -> StoppedTask:
    containers = task.get("containers") or [{}]
    exit_code = next((c.get("exitCode") for c in containers if c.get("exitCode") is not None), None)
    reason = str(task.get("stoppedReason") or "")
    container_reason = next((c.get("reason") for c in containers if c.get("reason")), None)
    if container_reason and container_reason not in reason:
        reason = f"{reason}: {container_reason}" if reason else str(container_reason)
    return StoppedTask(arn=str(task.get("taskArn", "")), reason=reason, exit_code=exit_code,
                       stop_code=task.get("stopCode"))


_ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^:@]+)(?::([^@]+))?(?:@(.+))?$")


def ecr_reference(image: str | None) -> tuple[str, dict[str, str]] | None:
    """(repository, imageId for DescribeImages) of an ECR image; None for any other registry.

    >>> ecr_reference("123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:1.4.0")
    ('pratiko-backend', {'imageTag': '1.4.0'})
    >>> ecr_reference("ghcr.io/pratiko/backend:1.4.0") is None
    True
    """
    match = _ECR_IMAGE.match(image or "")
    if not match:
        return None
    repository, tag, digest = match[3], match[4], match[5]
    return repository, ({"imageDigest": digest} if digest else {"imageTag": tag or "latest"})


def _name(service: str) -> str:
    return service.rsplit("/", 1)[-1]  # a service ARN or a name


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])
