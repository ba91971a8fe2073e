"""ALB listener rules as the local balancer evaluates them, read from DescribeRules as moto stores them.

Moto keeps listener rules (CreateRule, ModifyRule, SetRulePriorities, DeleteRule) and answers
DescribeRules with them, but routes nothing. This module turns those documents into the decision an
ALB makes for one request, following AWS's documentation for Application Load Balancers:

- **Order** ("Listener rules", elasticloadbalancing/latest/application/listener-rules.html): "Rules
  are evaluated in priority order, from the lowest value to the highest value. The default rule is
  evaluated last." The first rule whose conditions all hold decides; moto returns rules in creation
  order, so `rules_from` sorts them.
- **Conditions** ("Condition types for listener rules", .../application/rule-condition-types.html):
  a rule holds when every one of its conditions holds (AND); a condition with several values holds
  when any one of them matches (OR: "If you specify multiple strings, the condition is satisfied if
  one of the strings matches"). Per type:
  - `http-header` (HttpHeaderConfig): "The header name is case insensitive ... Wildcards are not
    supported" in it; "The comparison strings are case insensitive" with `*` (0 or more characters)
    and `?` (exactly 1); "If the same header appears multiple times in the request, we search them
    in order until a match is found." A request without the header does not match.
  - `path-pattern` (PathPatternConfig or the legacy one-value `Values`): "The comparison is case
    sensitive", `*` and `?`, "compared only to the path of the URL, not to its query string".
  - `host-header` (HostHeaderConfig or `Values`): "The comparison is case insensitive", `*` and `?`.
    The docs do not say how a `:port` in the Host header is treated; here it is ignored.
  - `http-request-method`: "The comparison is case sensitive", no wildcards.
  - `source-ip`: CIDR blocks; the client's address (not X-Forwarded-For) is compared.
  - `query-string`: key/value pairs, "case insensitive", `*` and `?`, a pair without a key matching
    any value. Keys and values are compared after percent-decoding.
- **Actions**: the last action of a rule is its terminal one (forward, fixed-response, redirect);
  `authenticate-oidc` / `authenticate-cognito` before it are skipped (the local world has no
  identity provider). A weighted `forward` (ForwardConfig) spreads requests by weight, each request
  on its own, as with "target group stickiness" off; a sticky forward is served the same way (the
  local world keeps no duration cookie). A single-group forward (`TargetGroupArn`) sends it
  everything. A `fixed-response` answers its StatusCode, ContentType and MessageBody. A `redirect`
  is not played: the balancer answers 501 naming it, so a test relying on it fails visibly.

Everything here reads DescribeRules through moto's public API; nothing leaves it. What leaves AWS's
behaviour is named above (port in Host, sticky forward, redirect). This module is pure: no clock, no
network; `balancer.Router` owns the per-rule round-robin state.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT = "default"

SKIPPED_ACTIONS = frozenset({"authenticate-oidc", "authenticate-cognito"})


@functools.lru_cache(maxsize=1024)
def wildcard(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    """ALB's match-string syntax: `*` is 0 or more characters, `?` exactly one, nothing else is special.

    >>> bool(wildcard("/api/*", True).fullmatch("/api/v1/chat")), bool(wildcard("/api/*", True).fullmatch("/API/x"))
    (True, False)
    >>> bool(wildcard("pre?iew", False).fullmatch("PREVIEW")), bool(wildcard("a[b]", True).fullmatch("a[b]"))
    (True, True)
    """
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (0 if case_sensitive else re.IGNORECASE))


def _any_match(patterns: Sequence[str], value: str, case_sensitive: bool) -> bool:
    return any(wildcard(p, case_sensitive).fullmatch(value) for p in patterns)


def _networks(cidrs: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The CIDR blocks of a source-ip condition; one AWS would refuse (moto does not) matches nothing."""
    out = []
    for cidr in cidrs:
        try:
            out.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue
    return out


@dataclass(frozen=True)
class Request:
    """What a rule's conditions look at in one request."""

    method: str
    target: str  # the request target as sent: path and query string
    headers: tuple[tuple[str, str], ...] = ()  # in the order received; a name may repeat
    source_ip: str = "127.0.0.1"

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path or "/"

    @property
    def query(self) -> list[tuple[str, str]]:
        return urllib.parse.parse_qsl(urllib.parse.urlsplit(self.target).query, keep_blank_values=True)

    def header(self, name: str) -> list[str]:
        """Every value of header `name`, in order; the name compared case-insensitively (RFC 9110 5.1)."""
        wanted = name.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    @property
    def host(self) -> str | None:
        hosts = self.header("Host")
        if not hosts:
            return None
        host = hosts[0].strip()
        if host.startswith("["):  # an IPv6 literal, [::1]:8080
            return host.split("]", 1)[0] + "]"
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass(frozen=True)
class Condition:
    """One condition of a rule (`Field` and its config), as DescribeRules returns it."""

    field: str
    values: tuple[str, ...] = ()
    header_name: str | None = None  # http-header only
    pairs: tuple[tuple[str | None, str], ...] = ()  # query-string only: (key or None, value)

    def matches(self, request: Request) -> bool:
        if self.field == "http-header":
            assert self.header_name is not None
            return any(_any_match(self.values, v, False) for v in request.header(self.header_name))
        if self.field == "path-pattern":
            return _any_match(self.values, request.path, True)
        if self.field == "host-header":
            host = request.host
            return host is not None and _any_match(self.values, host, False)
        if self.field == "http-request-method":
            return request.method in self.values
        if self.field == "source-ip":
            try:
                address = ipaddress.ip_address(request.source_ip)
            except ValueError:
                return False
            return any(address in network for network in _networks(self.values))
        if self.field == "query-string":
            query = request.query
            return any(
                any((key is None or wildcard(key, False).fullmatch(k)) and wildcard(value, False).fullmatch(v)
                    for k, v in query)
                for key, value in self.pairs
            )
        return False  # a condition type the local world does not know never holds: the rule is skipped


def condition_from(doc: Mapping[str, Any]) -> Condition:
    """A Condition from DescribeRules' `RuleCondition` (either the `*Config` or the legacy `Values` form).

    >>> condition_from({"Field": "http-header",
    ...                 "HttpHeaderConfig": {"HttpHeaderName": "X-Preview", "Values": ["on"]}}).header_name
    'X-Preview'
    >>> condition_from({"Field": "path-pattern", "Values": ["/api/*"]}).values
    ('/api/*',)
    """
    field_name = str(doc.get("Field", ""))
    config_key = {
        "http-header": "HttpHeaderConfig",
        "path-pattern": "PathPatternConfig",
        "host-header": "HostHeaderConfig",
        "http-request-method": "HttpRequestMethodConfig",
        "source-ip": "SourceIpConfig",
        "query-string": "QueryStringConfig",
    }.get(field_name)
    config: Mapping[str, Any] = (doc.get(config_key) or {}) if config_key else {}
    if field_name == "query-string":
        pairs = tuple((p.get("Key"), str(p.get("Value", ""))) for p in config.get("Values") or [])
        return Condition(field_name, pairs=pairs)
    values = tuple(str(v) for v in (config.get("Values") or doc.get("Values") or []))
    header = str(config["HttpHeaderName"]) if field_name == "http-header" and config.get("HttpHeaderName") else None
    if field_name == "http-header" and header is None:
        return Condition("unknown")
    return Condition(field_name, values, header)


@dataclass(frozen=True)
class FixedResponse:
    status: int
    content_type: str
    body: str


@dataclass(frozen=True)
class Rule:
    """One listener rule: where it stands, when it holds, what it does."""

    arn: str
    priority: int | None  # None: the listener's default rule, evaluated last
    conditions: tuple[Condition, ...] = ()
    # The terminal action: a forward's weights, a fixed response, or the type not played locally.
    weights: Mapping[str, int] = field(default_factory=dict)
    fixed: FixedResponse | None = None
    unsupported: str | None = None

    @property
    def label(self) -> str:
        """How the balancer's log names the rule that routed a request: its priority, or `default`."""
        return DEFAULT if self.priority is None else str(self.priority)

    def matches(self, request: Request) -> bool:
        """Every condition holds (the default rule has none, so it always does)."""
        return all(c.matches(request) for c in self.conditions)


def forward_weights(actions: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Target group ARN -> weight of the first forward action ({} when there is none).

    A forward with one `TargetGroupArn` and no ForwardConfig sends it everything (weight 1).

    >>> forward_weights([{"Type": "forward", "ForwardConfig": {"TargetGroups": [
    ...     {"TargetGroupArn": "tg/blue", "Weight": 90}, {"TargetGroupArn": "tg/green", "Weight": 10}]}}])
    {'tg/blue': 90, 'tg/green': 10}
    >>> forward_weights([{"Type": "forward", "TargetGroupArn": "tg/blue"}])
    {'tg/blue': 1}
    """
    for action in actions:
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        if groups:
            return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
        if action.get("TargetGroupArn"):
            return {action["TargetGroupArn"]: 1}
    return {}


def rule_from(doc: Mapping[str, Any]) -> Rule:
    """A Rule from one DescribeRules entry."""
    raw_priority = doc.get("Priority", DEFAULT)
    is_default = bool(doc.get("IsDefault")) or raw_priority == DEFAULT
    priority = None if is_default else int(raw_priority)
    conditions = tuple(condition_from(c) for c in doc.get("Conditions") or [])
    actions = sorted(doc.get("Actions") or [], key=lambda a: int(a.get("Order", 0) or 0))
    terminal = [a for a in actions if a.get("Type") not in SKIPPED_ACTIONS]
    last: Mapping[str, Any] = terminal[-1] if terminal else {}
    kind = last.get("Type")
    if kind == "forward":
        return Rule(str(doc.get("RuleArn", "")), priority, conditions, weights=forward_weights([last]))
    if kind == "fixed-response":
        config = last.get("FixedResponseConfig") or {}
        fixed = FixedResponse(int(config.get("StatusCode", 200)), str(config.get("ContentType") or "text/plain"),
                              str(config.get("MessageBody") or ""))
        return Rule(str(doc.get("RuleArn", "")), priority, conditions, fixed=fixed)
    return Rule(str(doc.get("RuleArn", "")), priority, conditions, unsupported=str(kind or "no action"))


def rules_from(described: Sequence[Mapping[str, Any]]) -> list[Rule]:
    """DescribeRules' entries in the order an ALB evaluates them: by priority, the default rule last.

    >>> [r.label for r in rules_from([{"Priority": "default", "IsDefault": True, "Actions": []},
    ...                               {"Priority": "10", "Actions": []}, {"Priority": "2", "Actions": []}])]
    ['2', '10', 'default']
    """
    rules = [rule_from(d) for d in described]
    return sorted(rules, key=lambda r: (r.priority is None, r.priority or 0))


def first_match(rules: Sequence[Rule], request: Request) -> Rule | None:
    """The rule that decides `request`: the first, in evaluation order, whose conditions all hold."""
    return next((r for r in rules if r.matches(request)), None)
