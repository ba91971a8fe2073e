"""Leaner response models for the four batched reads of the resync.

botocore parses a response by walking its service model: every member of every structure, with a
Python call per member. The resync's reads (DescribeServices, DescribeListeners, ListDistributions,
GetParameters) return far more than the observer looks at (a distribution summary carries its cache
behaviours, certificates and restrictions; a task set its network configuration and tags), and that
walk was half of a steady round's CPU (benchmarks/README.md).

A botocore session takes its models from a replaceable loader component. For these four
operations only, the output shape is replaced by a copy that keeps the members listed
below (with copies of the nested shapes, named `Lean...`): the parser skips the rest of the document.
Every other operation, including those that return the same shapes (CreateTaskSet, GetDistribution,
UpdateService...), keeps the full model. `controller/aws/observe.py` reads no member that is not
listed here; tests/aws/test_lean.py checks that the observation is the same with and without.

A shape named here that a future botocore renames is left whole (and the model still loads): the
read is then as slow as before, never wrong.

Second, a steady round gets back the very bytes it got the round before for almost every call (a
settled service, listener, distribution page or flags chunk does not change between rounds), and
parsing those bytes again was most of what was left of a round's CPU (CloudFront's XML DOM alone a
fifth of the operator's steady CPU at 1,000 Releases). `ReusedParses` keeps the parse of each
answer of these four operations by a digest of its body; an answer whose body is byte-identical
to one seen before gets that parse back (a new top-level dict with this answer's own
`ResponseMetadata`), without being parsed again. Only answers with status 200, only output shapes
whose members all come from the body (checked once per shape), and the query protocol's
request id (which is in the body) is left out of the digest, and only inside `reusing_parses()`:
the batched round (`Observer.observe_many`) asks the same questions every time, a single Release's
pass does not, and keeping its answers would only hold memory. Callers must not change what a read
returns (the observer only reads it).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import hashlib
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.loaders import Loader
from botocore.parsers import ResponseParserFactory

# service -> operation -> {structure shape name: members to keep}
LEAN: Mapping[str, Mapping[str, Mapping[str, tuple[str, ...]]]] = {
    "ecs": {
        "DescribeServices": {
            "DescribeServicesResponse": ("services", "failures"),
            "Service": ("serviceArn", "serviceName", "clusterArn", "status", "desiredCount",
                        "deploymentController", "taskDefinition", "taskSets", "deployments",
                        "deploymentConfiguration", "loadBalancers", "currentServiceDeployment"),
            "DeploymentConfiguration": ("strategy",),
            "TaskSet": ("id", "taskSetArn", "externalId", "taskDefinition", "scale", "status", "loadBalancers",
                        "runningCount", "pendingCount", "stabilityStatus", "computedDesiredCount",
                        "stabilityStatusAt", "updatedAt"),
            "Deployment": ("id", "status", "taskDefinition", "rolloutState", "runningCount", "desiredCount"),
            "LoadBalancer": ("targetGroupArn", "advancedConfiguration"),
        },
    },
    "elbv2": {
        "DescribeListeners": {
            "DescribeListenersOutput": ("Listeners", "NextMarker"),
            "Listener": ("ListenerArn", "DefaultActions"),
            "Action": ("Type", "TargetGroupArn", "ForwardConfig"),
            "ForwardActionConfig": ("TargetGroups",),
        },
    },
    "cloudfront": {
        "ListDistributions": {
            "DistributionList": ("Marker", "NextMarker", "MaxItems", "IsTruncated", "Quantity", "Items"),
            "DistributionSummary": ("Id", "Status", "Origins"),
            "Origins": ("Quantity", "Items"),
            "Origin": ("Id", "OriginPath"),
        },
    },
    "ssm": {
        "GetParameters": {
            "GetParametersResult": ("Parameters", "InvalidParameters"),
            "Parameter": ("Name", "Value"),
        },
    },
}


def leaner(service_data: Mapping[str, Any], keep: Mapping[str, Mapping[str, tuple[str, ...]]]) -> dict[str, Any]:
    """A copy of a service model whose operations in `keep` output lean copies of their shapes.

    `service_data` is not changed: only the dicts on the way to a change are copied (the model, its
    operations and shapes maps, each lean operation and its output), so every other shape is the
    very dict the full model holds, loaded once for both sessions.
    """
    data = dict(service_data)
    operations = data["operations"] = dict(service_data.get("operations", {}))
    shapes = data["shapes"] = dict(service_data.get("shapes", {}))
    for operation, members in keep.items():
        op = operations.get(operation)
        output = (op or {}).get("output")
        if op is None or output is None:
            continue
        operations[operation] = {**op, "output": {**output, "shape": _lean(shapes, output["shape"], members, {})}}
    return data


def _lean(shapes: dict[str, Any], name: str, keep: Mapping[str, tuple[str, ...]], done: dict[str, str]) -> str:
    """The name of a lean copy of shape `name` (or `name` itself when nothing in it is trimmed)."""
    if name in done:
        return done[name]
    shape = shapes.get(name)
    if shape is None:
        return name
    done[name] = name  # a recursive shape points back at itself unchanged
    if shape.get("type") == "structure":
        members = shape.get("members", {})
        wanted = keep.get(name)
        kept = {m: members[m] for m in wanted if m in members} if wanted is not None else dict(members)
        new_members = {
            m: {**spec, "shape": _lean(shapes, spec["shape"], keep, done)} for m, spec in kept.items()
        }
        if wanted is None and new_members == members:
            return name
        lean = copy.deepcopy({k: v for k, v in shape.items() if k != "members"})
        lean["members"] = new_members
        if "required" in lean:
            lean["required"] = [m for m in lean["required"] if m in new_members]
    elif shape.get("type") == "list":
        member = shape["member"]
        inner = _lean(shapes, member["shape"], keep, done)
        if inner == member["shape"]:
            return name
        lean = {**copy.deepcopy(shape), "member": {**member, "shape": inner}}
    else:
        return name
    lean_name = f"Lean{name}"
    shapes[lean_name] = lean
    done[name] = lean_name
    return lean_name


class LeanLoader:
    """The data loader of the read twin's session: everything it loads is what `base` (the full
    session's loader, which caches what it reads) has loaded already, and the models of `LEAN`'s
    services are lean copies of those (made once). Loading the twin's own copies of the models and
    endpoint rules cost ~25 MiB per process (benchmarks/README.md)."""

    def __init__(self, base: Loader) -> None:
        self._base = base
        self._lean: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)  # load_data, list_available_services, search_paths, ...

    def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
        data = self._base.load_service_model(service_name, type_name, api_version)
        keep = LEAN.get(service_name)
        if type_name != "service-2" or keep is None:
            return data
        with self._lock:
            lean = self._lean.get((service_name, api_version))
            if lean is None:
                lean = self._lean[(service_name, api_version)] = leaner(data, keep)
        return lean


LEAN_PREFIX = "Lean"
# The query protocol (ELB) puts its request id in the body: <ResponseMetadata><RequestId>...
_QUERY_REQUEST_ID = re.compile(rb"<RequestId>([^<]*)</RequestId>")


_REUSING: contextvars.ContextVar[bool] = contextvars.ContextVar("reusing_parses", default=False)


@contextlib.contextmanager
def reusing_parses(parses: "ReusedParses | None" = None) -> Iterator[None]:
    """Within this block (this thread or task), lean reads reuse the parse of an answer seen before.
    `parses` given: the block is one round, and what the round before it did not use is dropped."""
    if parses is not None:
        parses.new_round()
    token = _REUSING.set(True)
    try:
        yield
    finally:
        _REUSING.reset(token)


class ReusedParses:
    """Parsed answers of the lean reads by a digest of their body, kept for as long as each round
    uses them: `new_round()` drops what the last round did not use. So what is kept is at most two
    rounds' answers, however many changed (a burst of rollouts changes a few hundred answers a round
    at 2,000 Releases, and a fixed-size cache filled up with the stale ones). `limit` caps it anyway."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self.hits = self.misses = 0
        self._current: dict[bytes, dict[str, Any]] = {}  # used or added in this round
        self._previous: dict[bytes, dict[str, Any]] = {}  # the round before's, not used yet in this one
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._current) + len(self._previous)

    def new_round(self) -> None:
        with self._lock:
            self._previous, self._current = self._current, {}

    def get(self, digest: bytes) -> dict[str, Any] | None:
        with self._lock:
            parsed = self._current.get(digest)
            if parsed is None:
                parsed = self._previous.pop(digest, None)
                if parsed is not None:
                    self._current[digest] = parsed
            if parsed is None:
                self.misses += 1
            else:
                self.hits += 1
            return parsed

    def put(self, digest: bytes, parsed: dict[str, Any]) -> None:
        with self._lock:
            if len(self._current) + len(self._previous) < self.limit:
                self._current[digest] = parsed


class _ReusingParser:
    """One response's parser (botocore makes one per response): a body seen before is not parsed."""

    def __init__(self, parser: Any, protocol: str, parses: ReusedParses) -> None:
        self._parser, self._protocol, self._parses = parser, protocol, parses

    def parse(self, response: Mapping[str, Any], shape: Any) -> Any:
        if (not _REUSING.get() or shape is None or response.get("status_code") != 200
                or not shape.name.startswith(LEAN_PREFIX) or not _all_in_body(shape)):
            return self._parser.parse(response, shape)
        body: bytes = response["body"]
        request_id = None
        if self._protocol == "query":
            found = _QUERY_REQUEST_ID.search(body)
            if found:
                request_id = found.group(1).decode()
                body = body[: found.start()] + body[found.end() :]
        hashed = hashlib.blake2b(shape.name.encode() + b"\0", digest_size=20)
        hashed.update(body)
        digest = hashed.digest()
        cached = self._parses.get(digest)
        if cached is None:
            parsed = self._parser.parse(response, shape)
            self._parses.put(digest, {k: v for k, v in parsed.items() if k != "ResponseMetadata"})
            return parsed
        headers = {k.lower(): v for k, v in response["headers"].items()}
        request_id = request_id or headers.get("x-amzn-requestid") or headers.get("x-amz-request-id") or ""
        return {**cached, "ResponseMetadata": {"RequestId": request_id, "HTTPStatusCode": 200, "HTTPHeaders": headers}}


_IN_BODY: dict[str, bool] = {}


def _all_in_body(shape: Any) -> bool:
    """Whether no member of the output shape is read from a header (ETag, ...) or the status code."""
    known = _IN_BODY.get(shape.name)
    if known is None:
        known = _IN_BODY[shape.name] = not any(
            member.serialization.get("location") for member in getattr(shape, "members", {}).values())
    return known


class ReusingParserFactory(ResponseParserFactory):
    """botocore's parser factory, whose parsers give back the parse of a lean read's body seen before."""

    def __init__(self, parses: ReusedParses, defaults: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.parses = parses
        self.set_parser_defaults(**(defaults or {}))

    def create_parser(self, protocol_name: str) -> Any:
        return _ReusingParser(super().create_parser(protocol_name), protocol_name, self.parses)


def register(session: Any, base: Any, **parser_defaults: Any) -> ReusedParses:
    """Make `session` (a botocore Session) load the lean output models for the clients it creates,
    from what session `base` has loaded, and reuse the parse of an answer it has seen before;
    returns the parses it keeps."""
    session.register_component("data_loader", LeanLoader(base.get_component("data_loader")))
    parses = ReusedParses()
    session.register_component("response_parser_factory", ReusingParserFactory(parses, parser_defaults))
    return parses
