"""Is the traffic a Release names consistent with the world? Checked before its first change.

A Release moves only what it names. Before a spec generation changes anything, the listener must
forward only to the spec's two target groups (in either role; forwarding to one of them is fine),
neither group may serve another load balancer, and every task set the Release would adopt must be
registered with one of them. Otherwise the Release would rewrite a listener it does not own (another
service loses its traffic) or replace a target group that carries traffic with one that does not.
Pure: the reader in `controller.aws.traffic` gathers the facts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrafficFacts:
    listener_arn: str
    listener_load_balancer: str | None
    forwards_to: Sequence[str]  # target group ARNs of the listener's default forward action
    load_balancers_of: Mapping[str, Sequence[str]]  # target group ARN -> load balancers it serves
    task_set_target_groups: Mapping[str, str | None]  # adopted task set id -> its target group
    # target group ARN -> what else uses it: a rule of this listener, another listener of the same
    # load balancer, another ECS service (or its task sets) of the cluster
    other_uses: Mapping[str, Sequence[str]] = field(default_factory=dict)


def traffic_refusal(stable: str, canary: str, facts: TrafficFacts) -> str | None:
    """Why the Release must not touch this traffic, naming the wrong ARN; None when consistent.

    >>> facts = TrafficFacts("L", "LB1", ["blue"], {"blue": ["LB1"], "green": []}, {"ts-1": "blue"})
    >>> traffic_refusal("blue", "green", facts) is None
    True
    >>> traffic_refusal("blue", "typo", TrafficFacts("L", "LB1", ["blue", "green"], {}, {}))
    "listener L forwards to target group green, which is neither the spec's stableTargetGroupArn (blue) nor its canaryTargetGroupArn (typo): name the listener's target groups in the spec"
    """
    ours = (stable, canary)
    for group in facts.forwards_to:
        if group not in ours:
            return (f"listener {facts.listener_arn} forwards to target group {group}, which is neither the spec's "
                    f"stableTargetGroupArn ({stable}) nor its canaryTargetGroupArn ({canary}): name the "
                    "listener's target groups in the spec")
    for group in ours:
        others = [lb for lb in facts.load_balancers_of.get(group, ()) if lb != facts.listener_load_balancer]
        if others:
            return (f"target group {group} also serves load balancer {others[0]}, not only this listener's "
                    f"({facts.listener_load_balancer}): a Release moves only target groups of its own listener")
    for group in ours:
        users = facts.other_uses.get(group) or ()
        if users:
            return (f"target group {group} is also used by {users[0]}: a Release moves only target groups "
                    "that nothing else forwards to or registers with")
    for task_set, registered in sorted(facts.task_set_target_groups.items()):
        if registered not in ours:
            return (f"task set {task_set} is registered with target group {registered or '(none)'}, not with the spec's "
                    f"stable ({stable}) or canary ({canary}) group: it cannot be adopted")
    return None
