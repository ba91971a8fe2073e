"""The one factory for the boto3 clients the controller uses, and the count of the calls it makes.

Every AWS client in the process comes from `AwsClients.from_env()`: one boto3 Session, botocore's
adaptive retry mode (throttling and 5xx are retried with client-side rate limiting before an
error reaches us; the resync's batched reads use standard mode, the same retries without the
limiter), bounded timeouts, the region passed explicitly (boto3 alone reads only
AWS_DEFAULT_REGION, the contract says AWS_REGION first) and the endpoint from AWS_ENDPOINT_URL, so
the same binary talks to AWS or to a moto server.

`clients.calls` counts API calls by IAM-style action name ("ecs:DescribeServices"): the benchmark
reports calls per Release from it and the Terraform IAM policy is checked against it. A call is
counted once however many HTTP attempts botocore's retries make. The names are the IAM action names
for every operation this controller uses (S3 differs for a few operations we never call, e.g.
ListObjectsV2 is s3:ListBucket).

An endpoint that does not answer (refused, or accepting connections and never replying, as a
stopped process does) would cost every call its read timeout times botocore's attempts, and a pass
makes several calls: a minute or more before the Release could say AwsUnreachable. `Breaker`
makes the calls that follow a transport failure fail at once for a few seconds, so a pass against a
dead endpoint ends within one read timeout.

This module must not hold clients in globals: callers receive an `AwsClients` and pass it on.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import botocore.credentials
import botocore.session
from botocore.config import Config

from controller.aws.errors import TRANSPORT_FAILURES, EndpointDown
from botocore.utils import parse_timestamp

from controller import logs, metrics
from controller.aws import budget
from controller.aws import lean as lean_models

# boto3 client name -> (IAM action prefix, the service part of AWS_ENDPOINT_URL_<SERVICE>).
SERVICES: Mapping[str, tuple[str, str]] = {
    "ecs": ("ecs", "ECS"),
    "elbv2": ("elasticloadbalancing", "ELASTIC_LOAD_BALANCING_V2"),
    "cloudfront": ("cloudfront", "CLOUDFRONT"),
    "s3": ("s3", "S3"),
    "ssm": ("ssm", "SSM"),
    "cloudwatch": ("cloudwatch", "CLOUDWATCH"),
    "ecr": ("ecr", "ECR"),  # DescribeImages only: an image is checked to exist before it is deployed
    "events": ("events", "EVENTBRIDGE"),  # notifications' eventBridge sink (controller/notify/)
}

# Adaptive mode: client-side rate limiting on throttling, and retries of 5xx and throttling errors
# (standard mode, the same retries without the rate limiter, for the batched reads' twin).
MAX_ATTEMPTS = 8


def fast_timestamp(value: str | int | float) -> dt.datetime:
    """botocore's timestamp parser, minus dateutil for the ISO-8601 and epoch forms AWS sends.

    botocore parses every timestamp of every response (a task set has three, a distribution
    summary one) with dateutil: ~0.03 ms each, a sixth of a batched resync read's CPU
    (benchmarks/README.md). `datetime.fromisoformat` does the same in a microsecond; anything it
    does not read (RFC 822 dates) goes to botocore's own parser, so the values are unchanged.
    """
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return parse_timestamp(value)
    return parsed if parsed.tzinfo is not None else parse_timestamp(value)  # naive: botocore's reading


class MissingRegion(RuntimeError):
    """Neither AWS_REGION nor AWS_DEFAULT_REGION is set: refuse to guess a region."""


@dataclass
class CallCounter:
    """Thread-safe count of API calls by action name. Passes run in worker threads."""

    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, action: str) -> None:
        with self._lock:
            self.counts[action] += 1
        metrics.AWS_CALLS.labels(action).inc()

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    def total(self, prefix: str = "") -> int:
        """Calls whose action name starts with `prefix` ("" counts all, "ecs:" one service)."""
        with self._lock:
            return sum(n for action, n in self.counts.items() if action.startswith(prefix))

    def __getitem__(self, action: str) -> int:
        with self._lock:
            return self.counts[action]


@dataclass(frozen=True)
class AwsClients:
    ecs: Any
    elbv2: Any
    cloudfront: Any
    s3: Any
    ssm: Any
    cloudwatch: Any
    region: str
    endpoint_url: str | None = None
    ecr: Any = None
    events: Any = None  # EventBridge: only the notifications' eventBridge sink uses it
    calls: CallCounter = field(default_factory=CallCounter, compare=False)
    # The Session the clients came from: tooling (seeding a moto world) makes other clients with it.
    session: Any = field(default=None, compare=False, repr=False)

    # Twins of the clients whose resync reads parse lean models (controller/aws/lean.py); None: use these.
    reads: "AwsClients | None" = field(default=None, compare=False, repr=False)
    breaker: "Breaker | None" = field(default=None, compare=False, repr=False)
    # The read twin's parses of answers seen before (controller/aws/lean.py); None on the full clients.
    parses: "lean_models.ReusedParses | None" = field(default=None, compare=False, repr=False)
    # What the clients were built from (region, endpoints, timeouts; no credentials): `with_credentials`
    # builds the same clients again for other credentials (controller/aws/roles.py).
    built_from: "tuple[Mapping[str, str], tuple[float, float, int]] | None" = field(default=None, compare=False,
                                                                                      repr=False)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,  # an AWS API answer takes well under a second; see Breaker
        max_pool_connections: int = 32,
        lean_reads: bool = False,
    ) -> "AwsClients":
        """Build every client from the standard AWS environment (`os.environ` unless `env` is given).

        Credentials come from the default chain; when `env` carries AWS_ACCESS_KEY_ID and
        AWS_SECRET_ACCESS_KEY (tests, `dev up`'s env.sh) they are used for this Session only.
        `lean_reads` also builds `reads`: clients of a second Session whose batched resync reads
        parse only what the observer uses. They count their calls with these.
        """
        env = os.environ if env is None else env
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if not region:
            raise MissingRegion("set AWS_REGION (or AWS_DEFAULT_REGION): the controller never guesses a region")
        timeouts = (connect_timeout, read_timeout, max_pool_connections)
        clients = cls._build(env, region, CallCounter(), timeouts, lean=False)
        if lean_reads:
            clients = replace(clients, reads=cls._build(env, region, clients.calls, timeouts, lean=True, full=clients))
        return clients

    def with_credentials(self, credentials: Any) -> "AwsClients":
        """The same clients (region, endpoints, timeouts, call counter, breaker) signing with
        `credentials`, a botocore Credentials object (an assumed role's refreshable credentials)."""
        assert self.built_from is not None, "clients built by from_env"
        env, timeouts = self.built_from
        return self._build(env, self.region, self.calls, timeouts, lean=False, credentials=credentials,
                           breaker=self.breaker)

    @classmethod
    def _build(
        cls, env: Mapping[str, str], region: str, counter: CallCounter, timeouts: tuple[float, float, int], lean: bool,
        full: "AwsClients | None" = None, credentials: Any = None, breaker: "Breaker | None" = None,
    ) -> "AwsClients":
        connect_timeout, read_timeout, max_pool_connections = timeouts
        core = botocore.session.get_session()
        if credentials is not None:
            # First in the Session's provider chain (botocore's public extension point), so the
            # Session signs with these refreshable credentials and never reads the environment's.
            core.get_component("credential_provider").insert_before("env", _Given(credentials))
        parses: lean_models.ReusedParses | None = None
        if lean:
            assert full is not None, "the read twin is built beside the full clients"
            parses = lean_models.register(core, full.session._session, timestamp_parser=fast_timestamp)
        else:
            core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=fast_timestamp)
        session = boto3.session.Session(
            botocore_session=core,
            aws_access_key_id=None if credentials is not None else env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=None if credentials is not None else env.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=None if credentials is not None else env.get("AWS_SESSION_TOKEN"),
            region_name=region,
        )
        endpoint = env.get("AWS_ENDPOINT_URL") or None
        breaker = breaker or (full.breaker if full is not None else None) or Breaker()
        built: dict[str, Any] = {}
        # The service name is a runtime value, which boto3-stubs' per-service overloads cannot type.
        make_client: Any = session.client
        for name, (prefix, env_name) in SERVICES.items():
            if lean and full is not None and name not in lean_models.LEAN:
                built[name] = getattr(full, name)  # nothing to trim: the twin shares the full client
                continue
            config = Config(
                region_name=region,
                # The resync's batched reads retry in standard mode: the same retries and back-off, without
                # adaptive mode's client-side rate limiter, which cost ~0.3 ms of CPU per call (a fifth of
                # a round's; benchmarks/README.md). They come one at a time from one thread anyway.
                retries={"mode": "standard" if lean else "adaptive", "max_attempts": MAX_ATTEMPTS},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                max_pool_connections=max_pool_connections,
                # A local emulator on 127.0.0.1 has no per-bucket DNS names.
                s3={"addressing_style": "path"} if endpoint and name == "s3" else None,
            )
            # A service-specific endpoint wins over the general one, as in boto3 itself.
            service_endpoint = env.get(f"AWS_ENDPOINT_URL_{env_name}") or endpoint
            client = make_client(name, region_name=region, endpoint_url=service_endpoint, config=config)
            _count_calls(client, prefix, counter)
            client.meta.events.register("before-send", breaker.before_send)
            client.meta.events.register("needs-retry", breaker.needs_retry)
            # A pass's retries are bounded in time (controller/aws/budget.py).
            client.meta.events.register("before-send", budget.before_send)
            client.meta.events.register("needs-retry", budget.needs_retry)
            built[name] = client
        kept = {k: v for k, v in env.items() if k == "AWS_REGION" or k.startswith("AWS_ENDPOINT_URL")}
        return cls(region=region, endpoint_url=endpoint, calls=counter, session=session, breaker=breaker,
                   parses=parses, built_from=(kept, timeouts), **built)

    @classmethod
    def for_endpoint(cls, endpoint_url: str, region: str = "eu-west-1") -> "AwsClients":
        """Clients for a local emulator with fake credentials (tests and `dev up`)."""
        return cls.from_env(
            {
                "AWS_ENDPOINT_URL": endpoint_url,
                "AWS_REGION": region,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
            }
        )


class _Given(botocore.credentials.CredentialProvider):
    """A credential provider that hands out credentials it was given (an assumed role's)."""

    METHOD = "release-controller"
    CANONICAL_NAME = "release-controller"

    def __init__(self, credentials: Any) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Any:
        return self._credentials


class Breaker:
    """After a transport failure (no answer at all), calls to the same endpoint fail at once for
    `hold` seconds instead of each waiting out its timeouts; shared by every client of a Session.

    EndpointDown is raised from `before-send`, outside botocore's retry loop (which retries only
    HTTP-client errors), so a call fails without more attempts.
    """

    FAILURES = TRANSPORT_FAILURES

    def __init__(self, hold: float = 3.0, clock: Any = time.monotonic) -> None:
        self.hold, self.clock = hold, clock
        self._down: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _endpoint(url: str) -> str:
        parts = url.split("/", 3)
        return "/".join(parts[:3])

    def before_send(self, request: Any, **_: Any) -> None:
        endpoint = self._endpoint(str(request.url))
        with self._lock:
            down = self._down.get(endpoint)
        if down is not None and self.clock() - down[0] < self.hold:
            raise EndpointDown(endpoint_url=endpoint, seconds=self.clock() - down[0], error=down[1])

    def needs_retry(self, caught_exception: BaseException | None = None, request_dict: Any = None, **_: Any) -> None:
        if request_dict is None:
            return
        endpoint = self._endpoint(str(request_dict.get("url", "")))
        with self._lock:
            if isinstance(caught_exception, self.FAILURES):
                self._down[endpoint] = (self.clock(), str(caught_exception))
            elif caught_exception is None:
                self._down.pop(endpoint, None)


def _count_calls(client: Any, prefix: str, counter: CallCounter) -> None:
    # `before-call` fires once per API call, before botocore's retry loop: retries are not calls.
    def hook(model: Any, **_: Any) -> None:
        counter.add(f"{prefix}:{model.name}")

    client.meta.events.register("before-call.*.*", hook)

    # The request id of each response, for the pass's log line (controller/logs.py).
    def after(model: Any, parsed: Any = None, **_: Any) -> None:
        logs.aws_request(model.name, parsed)

    client.meta.events.register("after-call.*.*", after)
