"""The facts `planner.consistency` judges a Release's traffic by, read from ELBv2.

Two reads (DescribeListeners for the listener's load balancer and forward action,
DescribeTargetGroups for the load balancers each group serves), made once per spec generation
before its first change, not on every pass. Both actions are in the controller's IAM policy already.
"""

from __future__ import annotations

from controller.api.release import ReleaseSpec
from controller.aws.clients import AwsClients
from controller.aws.errors import UNREACHABLE, AwsFailure, is_unreachable
from controller.aws.shapes import forward_weights
from controller.errors import EffectError
from controller.planner.consistency import TrafficFacts, traffic_refusal
from controller.planner.world import Observation


class TrafficChecker:
    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    def refusal(self, spec: ReleaseSpec, observation: Observation) -> str | None:
        """Why the Release must not change this traffic; None when it is its own (or it has none)."""
        traffic = spec.backend.traffic
        if traffic is None:
            return None
        try:
            facts = self.facts(traffic.listener_arn, traffic.stable_target_group_arn,
                               traffic.canary_target_group_arn, observation)
        except AwsFailure as exc:
            reason = UNREACHABLE if is_unreachable(exc) else "AwsError"
            raise EffectError(reason, f"reading listener {traffic.listener_arn} and its target groups: {exc}") from exc
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
