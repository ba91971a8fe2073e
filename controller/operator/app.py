"""Wiring: build the reconciler and the operator runtime from settings and the environment.

The one place that chooses concrete implementations (boto3 clients, the Kubernetes client, the
metric providers) for the seams of `controller.reconciler.driver`. Tests and benchmarks build the same
graph with other inputs.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
import httpx

from controller import planner
from controller import logs
from controller.analysis.base import MeasureContext, Provider, auth_headers
from controller.analysis.providers import measure_all
from controller.analysis.registry import build_providers
from controller.analysis.sigv4 import SigV4
from controller.api.release import Measurement, PrometheusAuthType, ReleaseSpec, ReleaseStatus
from controller.aws import acting
from controller.aws.apply import effector_for
from controller.aws.clients import SERVICES, AwsClients
from controller.aws.observe import Observer
from controller.aws.roles import ReleaseRoles, RoleClients, routed
from controller.aws.tasks import EcsTaskHooks
from controller.contract import ContractChecker, configmap_reader
from controller.aws.traffic import TrafficChecker
from controller.kube.claims import Claims, claims_namespace
from controller import fencing
from controller.fencing import aws_hook
from controller.operator.leadership import Leadership, LeaseTimes, lease_name, scope_of
from controller.gitops.rollback import secret_reader
from controller.gitops.writeback import DulwichGitWriter
from controller.kube.bindings import NamespaceBindings
from controller.kube.client import ReleaseApi, Secrets, load_api_client
from controller.webhooks import CALL_TIMEOUT, HookCalls, WebhookHooks
from controller.notify import Notifications, Notifier
from controller.notify.sinks import SecretReader
from controller.webhooks import http_poster
from controller.operator.runtime import Runtime
from controller.planner.decision import Context, Decision
from controller.planner.world import Observation
from controller.reconciler.driver import Reconciler
from controller.operator.settings import OperatorSettings
from controller.tenancy.gate import OPEN_WARNING, Mode, TenancyGate
from controller.tenancy.guard import guarded_client
from controller.tenancy.readers import build_gate, secret_objects
from controller.tenancy.secrets import GuardedSecrets

log = logging.getLogger(__name__)

ANALYSIS_WINDOW_CAP = dt.timedelta(minutes=5)
AWS_PASS_LIMIT = 10.0
"""A pass's AWS calls stop being sent (retries included) after this long: the clients' read timeout,
so with a call in flight a pass holds its worker for about twice that (controller/aws/budget.py)."""


class PurePlanner:
    """`controller.planner` behind the reconciler's `Planner` seam."""

    def decide(self, spec: ReleaseSpec | None, status: ReleaseStatus, observation: Observation,
               ctx: Context) -> Decision:
        return planner.decide(spec, status, observation, ctx)

    def analysis_due(self, spec: ReleaseSpec, status: ReleaseStatus, now: dt.datetime) -> bool:
        return planner.analysis_due(spec, status, now)


@dataclass
class ProviderMeasurer:
    """Measures a Release's metrics for the version being rolled out, against its stable version."""

    providers: Mapping[str, Provider]
    secrets: Secrets | None = None
    aws_credentials: Callable[[], Any] | None = None  # the credentials the pass's AWS calls sign with (SigV4)
    aws_region: str = ""

    def __call__(self, spec: ReleaseSpec, status: ReleaseStatus, now: dt.datetime,
                 namespace: str = "") -> tuple[Measurement, ...]:
        since = status.step_since or status.rollout_started_at or now
        window = min(max(now - since, dt.timedelta(seconds=30)), ANALYSIS_WINDOW_CAP)
        version = status.backend.canary_version or spec.backend.version
        stable = status.backend.stable_version if status.backend.stable_version != version else None
        headers, errors = self.credentials(spec, namespace)
        ctx = MeasureContext(version, stable, spec.environment.value, now, window, headers, errors, self.signers(spec))
        return measure_all(spec.analysis.metrics, ctx, self.providers)

    def signers(self, spec: ReleaseSpec) -> dict[str, SigV4]:
        """Per SigV4 metric, the signer: the credentials are asked at each request (a role's rotate)."""
        out: dict[str, SigV4] = {}
        for metric in spec.analysis.metrics:
            auth = metric.prometheus.auth if metric.prometheus is not None else None
            if auth is not None and auth.type == PrometheusAuthType.SIGV4:
                out[metric.name] = SigV4(self.aws_credentials or (lambda: None), auth.region or self.aws_region)
        return out

    def credentials(self, spec: ReleaseSpec, namespace: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
        """Per metric, the Authorization header its prometheus.auth Secret makes, or why it cannot;
        every value read is registered for redaction from the logs."""
        headers: dict[str, dict[str, str]] = {}
        errors: dict[str, str] = {}
        for metric in spec.analysis.metrics:
            auth = metric.prometheus.auth if metric.prometheus is not None else None
            if auth is None or auth.secret_ref is None:  # none, or SigV4 (signed per request: `signers`)
                continue
            name = auth.secret_ref.name
            if self.secrets is None:
                errors[metric.name] = f"Secret {name} cannot be read: the controller runs without Kubernetes access"
                continue
            try:
                data = self.secrets.data(namespace, name)
                headers[metric.name] = auth_headers(auth.type.value, data)
            except KeyError as exc:
                errors[metric.name] = f"Secret {name} has no key {exc.args[0]} (needed for {auth.type.value})"
                continue
            except Exception as exc:  # noqa: BLE001 - the API's error names the cause without the body
                errors[metric.name] = f"Secret {name} cannot be read: {getattr(exc, 'reason', type(exc).__name__)}"
                continue
            for value in data.values():
                logs.redact(value.decode(errors="replace").strip())
            logs.redact(headers[metric.name]["Authorization"].split(" ", 1)[-1])
        return headers, errors


def aws_credentials(aws: AwsClients) -> Callable[[], Any]:
    """The credentials the AWS calls of the pass in progress sign with, asked at each request: its
    ReleasePolicy's role (`controller.aws.acting`), else the operator's own. A pass whose role cannot
    be told gets none, so nothing is signed or sent (fail closed, as its AWS calls)."""
    def current() -> Any:
        scope = acting.current()
        clients = aws if scope is None else scope.clients
        session = getattr(clients, "session", None)
        return session.get_credentials() if session is not None else None
    return current


def webhook_urls(api_client: object, tenancy: TenancyGate | None) -> SecretReader:
    """How hooks and notifications read a webhook URL kept in a Secret: under strict tenancy only if
    the Secret's allowed-urls annotation allows that URL (read at each delivery, so a changed Secret
    is judged again); open, as before."""
    if tenancy is not None and tenancy.mode == Mode.STRICT:
        return GuardedSecrets(secret_objects(api_client)).url
    return Secrets(api_client).value


def build_reconciler(
    aws: AwsClients, kube: ReleaseApi, http: httpx.Client | None = None, api_client: object | None = None,
    notifier: Notifier | None = None, tenancy: TenancyGate | None = None, roles: RoleClients | None = None,
) -> tuple[Reconciler, Observer]:
    """The reconciler over its seams. Every HTTP client for a Release-supplied URL is the tenancy
    guard's (controller/tenancy/guard.py), whatever `tenancy` says.

    With `roles` (over `aws`) and a tenancy gate, every AWS call of a Release's pass is made with the
    role its ReleasePolicy names (controller/aws/roles.py): the seams hold clients routed to the pass's."""
    release_roles = ReleaseRoles(roles, tenancy.role) if roles is not None and tenancy is not None else None
    if release_roles is not None:
        aws = routed(aws)
    observer = Observer(aws)
    strict = tenancy is not None and tenancy.mode == Mode.STRICT
    http = http or guarded_client(timeout=5.0)
    secrets = Secrets(api_client) if api_client is not None else None
    reconciler = Reconciler(
        observer=observer,
        applier=effector_for(observer),
        planner=PurePlanner(),
        sink=kube,
        measurer=ProviderMeasurer(build_providers(http, aws.cloudwatch), secrets, aws_credentials(aws), aws.region),
        contracts=ContractChecker(http, configmap_reader(api_client) if api_client is not None else None),
        claims=Claims(api_client, kube) if api_client is not None else None,
        traffic=TrafficChecker(aws),
        git=(DulwichGitWriter(), secret_reader(secrets, secret_objects(api_client) if strict else None))
        if secrets is not None else None,
        upstream=kube.current,
        notifications=Notifications(notifier) if notifier is not None else None,
        aws_pass_limit=AWS_PASS_LIMIT,
        hooks=HookCalls(WebhookHooks(guarded_client(timeout=CALL_TIMEOUT),
                                     webhook_urls(api_client, tenancy) if api_client is not None else None),
                        EcsTaskHooks(aws.ecs, observer.cache)),
        tenancy=tenancy,
        roles=release_roles,
    )
    return reconciler, observer


def build_runtime(settings: OperatorSettings, env: Mapping[str, str] | None = None) -> Runtime:
    aws = AwsClients.from_env(env, lean_reads=True)
    api_client = load_api_client()
    kube = ReleaseApi(api_client)
    tenancy = build_gate(Mode(settings.tenancy), api_client)
    if tenancy.mode == Mode.OPEN:
        log.warning(OPEN_WARNING)
    leadership = build_leadership(settings, api_client) if settings.leader_election else None
    # The notifier's Events, like a pass's writes, only while this process leads.
    notes: Any = FencedWrites(kube, leadership) if leadership is not None else kube
    # Its own HTTP client: a slow webhook must not hold the analysis providers' connections.
    roles = RoleClients(aws)
    # EventBridge deliveries of a Release, like its passes, with its ReleasePolicy's role.
    notifier = Notifier(webhook_urls(api_client, tenancy), http_poster(guarded_client(timeout=10.0)),
                        routed(aws).events, notes, acting=ReleaseRoles(roles, tenancy.role).acting_for)
    reconciler, _ = build_reconciler(aws, kube, api_client=api_client, notifier=notifier, tenancy=tenancy, roles=roles)
    runtime = Runtime(reconciler, resync_seconds=settings.resync_seconds, steady_round=reconciler.resync)
    if not settings.all_namespaces:  # per-namespace RoleBindings (with --all-namespaces: a ClusterRoleBinding)
        runtime.bindings = NamespaceBindings(api_client, settings.rolebinding, settings.namespaces, kube.list_all)
    # A sink accepted a delivery: a pass of that Release records it in the status (the worker never writes it).
    notifier.on_delivered = runtime.ask_pass
    notifier.start()
    if settings.test_clock_offset_seconds:
        reconciler.clock = shifted_clock(settings.test_clock_offset_seconds)
    if leadership is not None:
        runtime.leadership = leadership
        # Step and pause timers on the API server's clock, whatever this host's says.
        reconciler.clock = runtime.leadership.server_now
        # Every mutating AWS request, retries included, is checked against the leadership right
        # before it is sent (controller/fencing.py).
        fence = aws_hook(runtime.leadership)

        def fenced(*sets: AwsClients | None) -> None:
            boto = {id(c): c for clients in sets if clients is not None
                    for c in (getattr(clients, name, None) for name in SERVICES) if c is not None}
            for client in boto.values():
                client.meta.events.register("before-send", fence)

        fenced(aws, aws.reads)
        roles.on_build.append(fenced)  # and the clients of each role, as they are made
    return runtime


class FencedWrites:
    """A ReleaseApi whose Events are checked against the leadership first."""

    def __init__(self, kube: ReleaseApi, fence: Leadership) -> None:
        self._kube, self._fence = kube, fence

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)

    def event(self, *args: Any, **kwargs: Any) -> None:
        fencing.check(self._fence)
        self._kube.event(*args, **kwargs)


def build_leadership(settings: OperatorSettings, api_client: object) -> Leadership:
    """The leader Lease of this operator's scope, in its own namespace (controller/operator/leadership.py)."""
    scope = scope_of(settings.namespaces, settings.all_namespaces, settings.selector)
    name = settings.leader_lease or lease_name(settings.namespaces, settings.all_namespaces, settings.selector)
    times = LeaseTimes(settings.lease_seconds, settings.renew_seconds, settings.retry_seconds)
    wall = shifted_clock(settings.test_clock_offset_seconds) if settings.test_clock_offset_seconds else None
    return Leadership(api_client, claims_namespace(), name, times=times, scope=scope, wall=wall)


def shifted_clock(seconds: float) -> Callable[[], dt.datetime]:
    """TEST ONLY (`test_clock_offset_seconds`): this host's clock, off by `seconds`."""
    offset = dt.timedelta(seconds=seconds)
    return lambda: dt.datetime.now(dt.timezone.utc) + offset
