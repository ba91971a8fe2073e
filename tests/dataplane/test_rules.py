"""Listener rules as the local balancer evaluates them (controller.testing.dataplane.rules), and the
Router routing by them: the ALB behaviours the module's docstring cites, one table each."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from controller.testing.dataplane.balancer import Router, Target
from controller.testing.dataplane.rules import Request, condition_from, first_match, rule_from, rules_from


def header(name: str, *values: str) -> dict[str, Any]:
    return {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": name, "Values": list(values)}}


def forward(*groups: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": tg, "Weight": w} for tg, w in groups]}}]


def req(target: str = "/", *headers: tuple[str, str], method: str = "GET", ip: str = "127.0.0.1") -> Request:
    return Request(method, target, tuple(headers), ip)


@pytest.mark.parametrize(("headers", "holds"), [
    ((("X-Preview", "on"),), True),
    ((("x-preview", "on"),), True),  # the header name is case-insensitive
    ((("X-PREVIEW", "ON"),), True),  # and so is the comparison string
    ((("X-Preview", "yes"),), True),  # the second value, a glob: OR between values
    ((("X-Preview", "yesss"),), True),  # `*`: 0 or more characters
    ((("X-Preview", "yeeeees"),), False),
    ((("X-Preview", "ys"),), False),  # `?` is exactly one character
    ((("X-Preview", "off"),), False),
    ((("X-Preview", "on "),), False),  # the whole value must match
    ((("X-Preview", "off"), ("X-Preview", "on")), True),  # a repeated header: searched in order
    ((("X-Other", "on"),), False),
    ((), False),  # no header, no match
])
def test_http_header_condition(headers: tuple[tuple[str, str], ...], holds: bool) -> None:
    condition = condition_from(header("X-Preview", "on", "y?s*"))
    assert condition.matches(req("/", *headers)) is holds


@pytest.mark.parametrize(("doc", "request_", "holds"), [
    ({"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}, req("/api/v1/chat?x=1"), True),
    ({"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}, req("/API/v1"), False),  # case-sensitive
    ({"Field": "path-pattern", "Values": ["/health"]}, req("/health?full=1"), True),  # the query is not the path
    ({"Field": "path-pattern", "PathPatternConfig": {"Values": ["/a", "/b?"]}}, req("/bc"), True),
    ({"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com"]}},
     req("/", ("Host", "API.Example.com:8080")), True),  # case-insensitive, port ignored
    ({"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com"]}}, req("/", ("Host", "example.com")), False),
    ({"Field": "host-header", "Values": ["api.example.com"]}, req("/"), False),  # no Host header
    ({"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST", "PUT"]}},
     req("/", method="POST"), True),
    ({"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}}, req("/", method="GET"), False),
    ({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8", "127.0.0.1/32"]}}, req("/"), True),
    ({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}, req("/"), False),
    ({"Field": "source-ip", "SourceIpConfig": {"Values": ["not-a-cidr", "127.0.0.0/8"]}}, req("/"), True),
    ({"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "preview", "Value": "t*"}]}},
     req("/?a=1&PREVIEW=True"), True),
    ({"Field": "query-string", "QueryStringConfig": {"Values": [{"Value": "canary"}]}}, req("/?x=canary"), True),
    ({"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "preview", "Value": "true"}]}},
     req("/?preview=false"), False),
    ({"Field": "something-new", "Values": ["x"]}, req("/"), False),  # unknown: never holds
])
def test_other_conditions(doc: dict[str, Any], request_: Request, holds: bool) -> None:
    assert condition_from(doc).matches(request_) is holds


def test_every_condition_of_a_rule_must_hold() -> None:
    rule = rule_from({"RuleArn": "r", "Priority": "3", "Actions": forward(("green", 1)), "Conditions": [
        header("X-Preview", "on"), {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}]})
    assert rule.matches(req("/api/x", ("X-Preview", "on")))
    assert not rule.matches(req("/api/x"))
    assert not rule.matches(req("/web", ("X-Preview", "on")))


def test_rules_are_evaluated_lowest_priority_first_and_the_default_last() -> None:
    described: list[dict[str, Any]] = [
        {"RuleArn": "default", "Priority": "default", "IsDefault": True, "Conditions": [], "Actions": forward(("blue", 1))},
        {"RuleArn": "preview", "Priority": "20", "Conditions": [header("X-Preview", "on")], "Actions": forward(("green", 1))},
        {"RuleArn": "api", "Priority": "3", "Conditions": [{"Field": "path-pattern", "Values": ["/api/*"]}],
         "Actions": forward(("api", 1))},
    ]
    rules = rules_from(described)
    assert [r.arn for r in rules] == ["api", "preview", "default"]
    assert first_match(rules, req("/api/x", ("X-Preview", "on"))).arn == "api"  # type: ignore[union-attr]
    assert first_match(rules, req("/web", ("X-Preview", "on"))).arn == "preview"  # type: ignore[union-attr]
    assert first_match(rules, req("/web")).arn == "default"  # type: ignore[union-attr]


def test_actions_forward_fixed_response_and_the_ones_not_played() -> None:
    single = rule_from({"Priority": "1", "Actions": [{"Type": "forward", "TargetGroupArn": "green"}]})
    assert dict(single.weights) == {"green": 1}
    authenticated = rule_from({"Priority": "2", "Actions": [
        {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {}},
        {"Type": "forward", "Order": 2, "TargetGroupArn": "blue"}]})
    assert dict(authenticated.weights) == {"blue": 1}  # the identity step is skipped locally
    fixed = rule_from({"Priority": "3", "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {
        "StatusCode": "503", "ContentType": "text/plain", "MessageBody": "maintenance"}}]})
    assert fixed.fixed is not None and (fixed.fixed.status, fixed.fixed.body) == (503, "maintenance")
    redirect = rule_from({"Priority": "4", "Actions": [{"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301"}}]})
    assert redirect.unsupported == "redirect"


def test_router_follows_rules_then_the_default_weights() -> None:
    targets = {tg: [Target("h", i, v, f"ts-{tg}")] for i, (tg, v) in enumerate(
        [("blue", "1.4.0"), ("green", "2.0.0"), ("mcp", "mcp-1")])}
    rules = rules_from([
        {"RuleArn": "preview", "Priority": "10", "Conditions": [header("X-Preview", "on")], "Actions": forward(("green", 1))},
        {"RuleArn": "mcp", "Priority": "5", "Conditions": [{"Field": "path-pattern", "Values": ["/mcp*"]}],
         "Actions": forward(("mcp", 3), ("green", 1))},
        {"RuleArn": "down", "Priority": "7", "Conditions": [{"Field": "path-pattern", "Values": ["/down"]}],
         "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}]},
    ])
    router = Router()
    router.update({"blue": 90, "green": 10}, targets, rules)
    assert [r.label for r in router.rules] == ["5", "7", "10"]

    preview = Counter(router.route(req("/", ("x-preview", "on"))).target.version for _ in range(50))  # type: ignore[union-attr]
    assert preview == {"2.0.0": 50}
    production = Counter(router.route(req("/")).target.version for _ in range(100))  # type: ignore[union-attr]
    assert production == {"1.4.0": 90, "2.0.0": 10}  # the default's own sequence, unmoved by the rule's
    mcp = Counter(router.route(req("/mcp/sse", ("X-Preview", "on"))).target_group for _ in range(40))
    assert mcp == {"mcp": 30, "green": 10}  # priority 5 before 10; weighted 3:1 within the rule
    down = router.route(req("/down"))
    assert (down.rule, down.target, down.fixed.status if down.fixed else None) == ("7", None, 503)

    # A rule whose weights do not change keeps its sequence across updates; a removed rule stops routing.
    router.update({"blue": 90, "green": 10}, targets, [r for r in rules if r.arn != "preview"])
    assert router.route(req("/", ("X-Preview", "on"))).rule == "default"
