"""The facts `planner.consistency` judges a Release's traffic by, read from ELBv2 and ECS.

Made once per spec generation before its first change, not on every pass: DescribeListeners for the
listener's load balancer and forward action, DescribeTargetGroups for the load balancers each group
serves, then who else uses the spec's target groups: the rules of the listener (DescribeRules), the
other listeners of the same load balancer and their rules, and the other ECS services of the cluster
and their task sets (ListServices, DescribeServices). Services in other clusters are not read. A rule
of the listener tagged as a preview route (DescribeTags; `aws.preview`) is not another user: it is
how a Release previews its canary group (the listener is claimed by one Release).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from controller.api.release import BackendService, ReleaseSpec
from controller.aws.clients import AwsClients
from controller.aws.errors import AwsFailure, classify
from controller.aws.preview import preview_owners
from controller.aws.shapes import forward_weights
from controller.errors import EffectError
from controller.planner.consistency import TrafficFacts, traffic_refusal
from controller.planner.world import Observation


class TrafficChecker:
    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    def refusal(self, spec: ReleaseSpec, observation: Observation) -> str | None:
        """Why the Release must not change this traffic; None when it is its own (or it has none).
        A backend tier of several: each service's traffic, judged as one service's; the first refusal,
        naming the service."""
        for service in spec.backend.service_list():
            view = observation.view(service.name) if spec.backend.several else None
            seen = replace(observation, service=view.service, listener=view.listener) if view else observation
            why = self._refusal(service, seen)
            if why is not None:
                return f"service {service.name}: {why}" if spec.backend.several else why
        return None

    def _refusal(self, service: BackendService, observation: Observation) -> str | None:
        traffic = service.traffic
        if traffic is None:
            return None
        try:
            facts = self.facts(traffic.listener_arn, traffic.stable_target_group_arn,
                               traffic.canary_target_group_arn, observation)
            facts = replace(facts, other_uses=self.other_uses(
                traffic.listener_arn, facts.listener_load_balancer, (traffic.stable_target_group_arn,
                                                                     traffic.canary_target_group_arn),
                service.ecs.cluster, service.ecs.service))
        except AwsFailure as exc:
            reason, message, _ = classify(exc, f"reading listener {traffic.listener_arn} and its target groups")
            raise EffectError(reason, message) from exc
        return traffic_refusal(traffic.stable_target_group_arn, traffic.canary_target_group_arn, facts)

    def facts(self, listener_arn: str, stable: str, canary: str, observation: Observation) -> TrafficFacts:
        elbv2 = self.clients.elbv2
        listener = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
        forwards = list(forward_weights(listener))
        groups = list(dict.fromkeys([*forwards, stable, canary]))
        described = elbv2.describe_target_groups(TargetGroupArns=groups)["TargetGroups"]
        service = observation.service
        return TrafficFacts(
            listener_arn=listener_arn,
            listener_load_balancer=listener.get("LoadBalancerArn"),
            forwards_to=forwards,
            load_balancers_of={g["TargetGroupArn"]: list(g.get("LoadBalancerArns") or []) for g in described},
            task_set_target_groups={t.id: t.target_group_arn for t in service.task_sets} if service else {},
        )

    def other_uses(self, listener_arn: str, load_balancer: str | None, groups: Sequence[str], cluster: str,
                   service: str) -> dict[str, list[str]]:
        """Target group -> what else forwards to it or registers with it (see the module's docstring)."""
        elbv2, ecs = self.clients.elbv2, self.clients.ecs
        uses: dict[str, list[str]] = {}

        def note(targets: Iterable[str], user: str) -> None:
            for group in targets:
                if group in groups:
                    uses.setdefault(group, []).append(user)

        listeners: list[dict[str, Any]] = (elbv2.describe_listeners(LoadBalancerArn=load_balancer)["Listeners"] if load_balancer
                     else [{"ListenerArn": listener_arn}])
        for other in listeners:
            arn = other["ListenerArn"]
            if arn != listener_arn:
                note(forwarded(other.get("DefaultActions") or []), f"listener {arn} of the same load balancer")
            rules = [r for r in elbv2.describe_rules(ListenerArn=arn).get("Rules", []) if not r.get("IsDefault")]
            # A preview rule (`aws.preview`) is a Release's own route to its canary group, not another user of it.
            previews = preview_owners(elbv2, [r["RuleArn"] for r in rules]) if arn == listener_arn and rules else {}
            for rule in rules:
                if rule["RuleArn"] not in previews:
                    note(forwarded(rule.get("Actions") or []), f"rule {rule.get('RuleArn')} of listener {arn}")
        names: list[str] = []
        for page in ecs.get_paginator("list_services").paginate(cluster=cluster):
            names.extend(page.get("serviceArns", []))
        for start in range(0, len(names), 10):
            for svc in ecs.describe_services(cluster=cluster, services=names[start:start + 10]).get("services", []):
                if svc.get("serviceName") == service or svc.get("status") == "INACTIVE":
                    continue
                user = f"ECS service {svc.get('serviceArn')}"
                note(_registered(svc.get("loadBalancers")), user)
                for task_set in svc.get("taskSets") or []:
                    note(_registered(task_set.get("loadBalancers")), f"task set {task_set.get('id')} of {user}")
        return uses


def forwarded(actions: Iterable[Mapping[str, Any]]) -> list[str]:
    """The target groups forward actions send to."""
    out: list[str] = []
    for action in actions:
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        out.extend(g["TargetGroupArn"] for g in groups if g.get("TargetGroupArn"))
        if action.get("TargetGroupArn"):
            out.append(action["TargetGroupArn"])
    return out


def _registered(balancers: Iterable[Mapping[str, Any]] | None) -> list[str]:
    return [b["targetGroupArn"] for b in balancers or [] if b.get("targetGroupArn")]
