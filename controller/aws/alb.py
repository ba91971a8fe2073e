"""ALB effector: the listener's default forward action weights between target groups.

One ModifyListener call moves all traffic atomically; the call is skipped when the weights are
already as asked (a target group missing from the action counts as weight 0). Other default
actions (e.g. an authenticate step before the forward) and the stickiness setting are kept.

This module must not choose weights: the planner does.
"""

from __future__ import annotations

import copy
from typing import Any

from controller.aws.errors import AwsEffectError, AwsFailure, effect_error, is_not_found
from controller.aws.shapes import forward_weights
from controller.planner.actions import SetListenerWeights


def same_weights(current: dict[str, int], wanted: dict[str, int]) -> bool:
    return all(current.get(tg, 0) == wanted.get(tg, 0) for tg in set(current) | set(wanted))


def set_listener_weights(elbv2: Any, a: SetListenerWeights) -> str | None:
    try:
        listener = elbv2.describe_listeners(ListenerArns=[a.listener_arn])["Listeners"][0]
    except AwsFailure as exc:
        if is_not_found(exc, "ListenerNotFound"):
            message = f"ALB listener {a.listener_arn} does not exist"
            raise AwsEffectError("ListenerNotFound", message, retryable=False) from exc
        raise effect_error(exc, f"ALB listener {a.listener_arn}") from exc
    wanted = dict(a.weights)
    if same_weights(forward_weights(listener), wanted):
        return None
    _require_target_groups(elbv2, sorted(wanted))
    actions = [copy.deepcopy(x) for x in listener.get("DefaultActions", [])]
    forward = next((x for x in actions if x.get("Type") == "forward"), None)
    if forward is None:
        forward = {"Type": "forward"}
        actions.append(forward)
    stickiness = (forward.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig") or {"Enabled": False}
    forward.pop("TargetGroupArn", None)  # a single-group forward becomes a weighted one
    forward["ForwardConfig"] = {
        "TargetGroups": [{"TargetGroupArn": tg, "Weight": int(w)} for tg, w in wanted.items()],
        "TargetGroupStickinessConfig": stickiness,
    }
    elbv2.modify_listener(ListenerArn=a.listener_arn, DefaultActions=actions)
    return f"listener {_short(a.listener_arn)} weights " + ", ".join(f"{_short(tg)}={w}" for tg, w in wanted.items())


def _require_target_groups(elbv2: Any, arns: list[str]) -> None:
    """Fail with TargetGroupNotFound before touching the listener. AWS would refuse the change
    anyway; an emulator (moto) would accept a forward to nothing and break traffic."""
    try:
        elbv2.describe_target_groups(TargetGroupArns=arns)
    except AwsFailure as exc:
        if is_not_found(exc, "TargetGroupNotFound"):
            raise AwsEffectError(
                "TargetGroupNotFound", f"a target group of {', '.join(arns)} does not exist", retryable=False
            ) from exc
        raise


def _short(arn: str) -> str:
    """The readable name in an ELB ARN: targetgroup/NAME/id and listener/app/NAME/lb/id -> NAME."""
    parts = arn.rsplit(":", 1)[-1].split("/")
    if parts[0] == "listener" and len(parts) >= 3:
        return parts[2]
    return parts[1] if len(parts) >= 3 else arn
