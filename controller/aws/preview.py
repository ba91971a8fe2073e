"""ALB effector: a preview route, the listener rule that sends requests carrying a header to the canary.

A blue-green preview or a `{preview: ...}` step needs traffic the users do not send: requests with
one header (`X-Release-Preview: 2.0.0`, say) reach the new version's target group, every other
request goes on to the listener's default action, whose weights the Release moves as today
(`alb.set_listener_weights`). The route is one listener rule:

- condition: `http-header` (HttpHeaderConfig; ALB compares the name case-insensitively and the
  values case-insensitively with `*` and `?` wildcards, any of the values matching);
- action: `forward` to the canary target group alone (ForwardConfig, weight 1, stickiness off);
- tag `release-controller/preview` = the owner (`<namespace>/<name>`, or `<namespace>/<name>/<service>`
  when a Release moves several services), which is how it is found again: creating is idempotent
  (find by tag, then create, modify or move), and removing deletes only the owner's rule.

**Where the rule goes.** ALB evaluates a listener's rules "in priority order, from the lowest value
to the highest value. The default rule is evaluated last" (Application Load Balancer guide, Listener
rules). A rule shadows exactly the rules after it, for the requests that match both. The preview
rule is placed after every other rule: priority one above the highest in use. Then:

- it shadows no rule of the user's, by construction: only the default action comes after it;
- header traffic reaches the canary exactly where, without the header, it would reach the default
  action, which is the traffic the Release's weights move; a request a user's rule catches (another
  service's path, a fixed response, an authenticated route) is untouched, header or not. So the
  preview sees the traffic the canary will see, no more;
- a user's catch-all rule (a `/*` path pattern before the default) leaves the preview no traffic: its
  analysis has no data, which never counts as Passed. It fails safe rather than shadowing.

The alternative, the lowest free number below the user's rules that "match the same requests", was
rejected: deciding whether two rules' conditions overlap (globs over paths, hosts, headers, query
strings, source addresses) cannot be done reliably, and a rule placed before the user's shadows them
for header traffic. When the user later adds a rule after ours, the next `ensure_preview_route` moves
ours back behind it (SetRulePriorities). Other owners' preview rules do not count as the user's (two
previews on one listener would otherwise chase each other up the numbers on every pass). With the
highest priority (50,000) taken there is no place: `NoFreeRulePriority`, and nothing is changed.

Bad input (a header name ALB would refuse, no value, a value too long) raises `InvalidPreviewHeader`
before any call to AWS. This module must not decide when a preview starts or ends: the planner does, with the actions
`EnsurePreviewRoute` and `RemovePreviewRoute` (`controller.aws.apply` calls this module for them);
`preview_rules` is what the observer reads back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from controller.aws.errors import AwsEffectError, AwsFailure, effect_error, error_code, is_not_found
from controller.planner.actions import EnsurePreviewRoute
from controller.planner.world import PreviewRule

TAG_PREVIEW = "release-controller/preview"

MAX_PRIORITY = 50_000  # ALB's highest rule priority (CreateRule: 1-50000)
MAX_HEADER_NAME = 40  # HttpHeaderConfig.HttpHeaderName: "The maximum size is 40 characters"
MAX_HEADER_VALUE = 128  # "The maximum size of each string is 128 characters"
MAX_VALUES = 5  # ALB quota: condition values per rule
TAGS_PER_CALL = 20  # DescribeTags: at most 20 resource ARNs

NO_FREE_PRIORITY = "NoFreeRulePriority"
INVALID_PREVIEW_HEADER = "InvalidPreviewHeader"

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 5.6.2 token: a field name
_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")  # visible ASCII, inner spaces


PreviewRoute = EnsurePreviewRoute  # the planner's action is the route's description


def validate(route: PreviewRoute) -> None:
    """Raise `InvalidPreviewHeader` (not retryable) for a header ALB would refuse.

    >>> validate(PreviewRoute("l", "ns/app", "X-Release-Preview", ("2.0.0",), "tg"))
    >>> validate(PreviewRoute("l", "ns/app", "X Preview", ("on",), "tg"))
    Traceback (most recent call last):
    ...
    controller.aws.errors.AwsEffectError: preview header name 'X Preview' is not an HTTP field name of at most 40 characters
    """
    def refuse(message: str) -> AwsEffectError:
        return AwsEffectError(INVALID_PREVIEW_HEADER, message, retryable=False)

    if not _TOKEN.fullmatch(route.header_name) or len(route.header_name) > MAX_HEADER_NAME:
        raise refuse(f"preview header name {route.header_name!r} is not an HTTP field name of at most "
                     f"{MAX_HEADER_NAME} characters")
    if not 1 <= len(route.header_values) <= MAX_VALUES:
        raise refuse(f"a preview header needs 1 to {MAX_VALUES} values, not {len(route.header_values)}")
    for value in route.header_values:
        if len(value) > MAX_HEADER_VALUE or not _VALUE.fullmatch(value):
            raise refuse(f"preview header value {value!r} is not 1 to {MAX_HEADER_VALUE} visible ASCII characters")
    if not route.owner:
        raise refuse("a preview route needs an owner")


def ensure_preview_route(elbv2: Any, route: PreviewRoute) -> str | None:
    """Make the owner's preview rule exist as `route` says, after every rule of the user's.

    Returns what changed (None when the rule was already right). Creates the rule (CreateRule with
    its tag), or updates its condition or target (ModifyRule), or moves it behind a user's rule that
    came after it (SetRulePriorities). A second rule of the same owner (two writers racing) is deleted.
    """
    validate(route)
    rules = _rules(elbv2, route.listener_arn)
    owners = _owners(elbv2, [r["RuleArn"] for r in rules if not r.get("IsDefault")])
    mine = [r for r in rules if owners.get(r["RuleArn"]) == route.owner]
    users = [_priority(r) for r in rules if not r.get("IsDefault") and r["RuleArn"] not in owners]
    taken = [_priority(r) for r in rules if not r.get("IsDefault") and r not in mine]
    changes: list[str] = []
    for extra in mine[1:]:
        _call(lambda: elbv2.delete_rule(RuleArn=extra["RuleArn"]), route)
        changes.append(f"deleted a second preview rule of {route.owner}")
    if not mine:
        _require_target_group(elbv2, route.target_group_arn)
        priority = _place(taken, route)
        _call(lambda: elbv2.create_rule(
            ListenerArn=route.listener_arn, Priority=priority, Conditions=route.conditions(),
            Actions=route.actions(), Tags=[{"Key": TAG_PREVIEW, "Value": route.owner}]), route)
        return _describe(route, priority, "created")
    rule = mine[0]
    if not _same(rule, route):
        _require_target_group(elbv2, route.target_group_arn)
        _call(lambda: elbv2.modify_rule(RuleArn=rule["RuleArn"], Conditions=route.conditions(),
                                        Actions=route.actions()), route)
        changes.append(_describe(route, _priority(rule), "updated"))
    if users and max(users) > _priority(rule):
        priority = _place(taken, route)
        _call(lambda: elbv2.set_rule_priorities(
            RulePriorities=[{"RuleArn": rule["RuleArn"], "Priority": priority}]), route)
        changes.append(_describe(route, priority, "moved behind the listener's other rules"))
    return "; ".join(changes) or None


def remove_preview_route(elbv2: Any, listener_arn: str, owner: str) -> str | None:
    """Delete the owner's preview rule(s) on `listener_arn`; None when there was none (or no listener)."""
    try:
        rules = _rules(elbv2, listener_arn)
    except AwsEffectError as exc:
        if exc.reason == "ListenerNotFound":
            return None  # the listener is gone, and its rules with it
        raise
    owners = _owners(elbv2, [r["RuleArn"] for r in rules if not r.get("IsDefault")])
    mine = [r for r in rules if owners.get(r["RuleArn"]) == owner]
    for rule in mine:
        try:
            elbv2.delete_rule(RuleArn=rule["RuleArn"])
        except AwsFailure as exc:
            if is_not_found(exc, "RuleNotFound"):
                continue  # removed meanwhile: as asked
            raise effect_error(exc, f"preview rule of {owner} on listener {listener_arn}") from exc
    if not mine:
        return None
    return f"listener {_short(listener_arn)} preview rule of {owner} removed"


def preview_rule_priority(elbv2: Any, listener_arn: str, owner: str) -> int | None:
    """The priority of the owner's preview rule, None when there is none (for observation and tests)."""
    rules = _rules(elbv2, listener_arn)
    owners = _owners(elbv2, [r["RuleArn"] for r in rules if not r.get("IsDefault")])
    return next((_priority(r) for r in rules if owners.get(r["RuleArn"]) == owner), None)


def preview_rules(elbv2: Any, listener_arn: str) -> tuple[PreviewRule, ...]:
    """Every preview rule on the listener (any owner's), as the planner reads them: one DescribeRules
    page per 100 rules and, when the listener has rules, one DescribeTags per 20."""
    rules = _rules(elbv2, listener_arn)
    owners = _owners(elbv2, [r["RuleArn"] for r in rules if not r.get("IsDefault")])
    out: list[PreviewRule] = []
    for rule in rules:
        owner = owners.get(rule["RuleArn"])
        if owner is None:
            continue
        conditions = rule.get("Conditions") or []
        config = (conditions[0].get("HttpHeaderConfig") or {}) if len(conditions) == 1 else {}
        out.append(PreviewRule(owner=owner, priority=_priority(rule), header_name=str(config.get("HttpHeaderName", "")),
                               header_values=tuple(config.get("Values") or ()), target_group_arn=_forwards_to(rule)))
    return tuple(out)


def preview_owners(elbv2: Any, rule_arns: Sequence[str]) -> dict[str, str]:
    """Rule ARN -> the owner its preview tag names, for the rules among `rule_arns` that are preview routes."""
    return _owners(elbv2, rule_arns)


# --------------------------------------------------------------------------- reads and helpers


def _forwards_to(rule: Mapping[str, Any]) -> str | None:
    """The one target group a rule forwards to (weight above 0), None when it does anything else."""
    actions = rule.get("Actions") or []
    if len(actions) != 1 or actions[0].get("Type") != "forward":
        return None
    groups = (actions[0].get("ForwardConfig") or {}).get("TargetGroups") or []
    live = [g["TargetGroupArn"] for g in groups if int(g.get("Weight", 1)) > 0]
    if not groups and actions[0].get("TargetGroupArn"):
        live = [actions[0]["TargetGroupArn"]]
    return live[0] if len(live) == 1 else None


def _rules(elbv2: Any, listener_arn: str) -> list[dict[str, Any]]:
    try:
        pages: Iterator[Mapping[str, Any]] = elbv2.get_paginator("describe_rules").paginate(ListenerArn=listener_arn)
        return [dict(r) for page in pages for r in page["Rules"]]
    except AwsFailure as exc:
        if is_not_found(exc, "ListenerNotFound"):
            raise AwsEffectError("ListenerNotFound", f"ALB listener {listener_arn} does not exist",
                                 retryable=False) from exc
        raise effect_error(exc, f"rules of ALB listener {listener_arn}") from exc


def _owners(elbv2: Any, rule_arns: Sequence[str]) -> dict[str, str]:
    """Rule ARN -> the preview owner its tag names, for the rules that carry our tag."""
    owners: dict[str, str] = {}
    for start in range(0, len(rule_arns), TAGS_PER_CALL):
        try:
            described = elbv2.describe_tags(ResourceArns=list(rule_arns[start:start + TAGS_PER_CALL]))
        except AwsFailure as exc:
            raise effect_error(exc, "tags of listener rules") from exc
        for entry in described.get("TagDescriptions", []):
            for tag in entry.get("Tags", []):
                if tag.get("Key") == TAG_PREVIEW:
                    owners[entry["ResourceArn"]] = str(tag.get("Value", ""))
    return owners


def _priority(rule: Mapping[str, Any]) -> int:
    return int(rule["Priority"])


def _place(taken: Sequence[int], route: PreviewRoute) -> int:
    """One above every priority in use (other than the owner's own rule), or NoFreeRulePriority.

    >>> _place([5, 20], PreviewRoute("l", "o", "h", ("v",), "tg")), _place([], PreviewRoute("l", "o", "h", ("v",), "tg"))
    (21, 1)
    """
    priority = max(taken, default=0) + 1
    if priority > MAX_PRIORITY:
        raise AwsEffectError(
            NO_FREE_PRIORITY,
            f"listener {route.listener_arn} has a rule at priority {MAX_PRIORITY}: no place for the preview "
            "rule after every other rule (it would shadow them); renumber the listener's rules",
            retryable=False)
    return priority


def _same(rule: Mapping[str, Any], route: PreviewRoute) -> bool:
    """Whether `rule` already routes as `route` says (header name compared as ALB does, without case)."""
    conditions = rule.get("Conditions") or []
    if len(conditions) != 1 or conditions[0].get("Field") != "http-header":
        return False
    config = conditions[0].get("HttpHeaderConfig") or {}
    if str(config.get("HttpHeaderName", "")).lower() != route.header_name.lower():
        return False
    if tuple(config.get("Values") or ()) != route.header_values:
        return False
    actions = rule.get("Actions") or []
    if len(actions) != 1 or actions[0].get("Type") != "forward":
        return False
    groups = (actions[0].get("ForwardConfig") or {}).get("TargetGroups") or []
    if groups:
        live = {g["TargetGroupArn"] for g in groups if int(g.get("Weight", 1)) > 0}
    else:
        live = {actions[0]["TargetGroupArn"]} if actions[0].get("TargetGroupArn") else set()
    return live == {route.target_group_arn}


def _require_target_group(elbv2: Any, arn: str) -> None:
    try:
        elbv2.describe_target_groups(TargetGroupArns=[arn])
    except AwsFailure as exc:
        if is_not_found(exc, "TargetGroupNotFound"):
            raise AwsEffectError("TargetGroupNotFound", f"target group {arn} does not exist", retryable=False) from exc
        raise effect_error(exc, f"target group {arn}") from exc


def _call(call: Any, route: PreviewRoute) -> None:
    try:
        call()
    except AwsFailure as exc:
        what = f"preview rule of {route.owner} on listener {route.listener_arn}"
        if is_not_found(exc, "ListenerNotFound"):
            raise AwsEffectError("ListenerNotFound", f"ALB listener {route.listener_arn} does not exist",
                                 retryable=False) from exc
        if error_code(exc) == "PriorityInUse":
            # A rule was added since the read: the next pass reads again and places the rule after it.
            raise AwsEffectError("AwsError", f"{what}: its priority was taken meanwhile", retryable=True) from exc
        raise effect_error(exc, what) from exc


def _describe(route: PreviewRoute, priority: int, verb: str) -> str:
    return (f"listener {_short(route.listener_arn)} preview rule {verb}: header {route.header_name} -> "
            f"{_short(route.target_group_arn)} at priority {priority}")


def _short(arn: str) -> str:
    """The readable name in an ELB ARN: targetgroup/NAME/id and listener/app/NAME/lb/id -> NAME."""
    parts = arn.rsplit(":", 1)[-1].split("/")
    if parts[0] == "listener" and len(parts) >= 3:
        return parts[2]
    return parts[1] if len(parts) >= 3 else arn
