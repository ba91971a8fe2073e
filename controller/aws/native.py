"""Native ECS deployments: the effector and observer of a service that ECS deploys itself.

A service on the `ECS` deployment controller is released by UpdateService with the new task
definition and a deploymentConfiguration from `controller.planner.native.NativePlan` (strategy
BLUE_GREEN, CANARY, LINEAR or ROLLING, with PAUSE lifecycle hooks at our gates). ECS then runs a
*service deployment* (API_ServiceDeployment) through its lifecycle stages and waits at each PAUSE
hook until ContinueServiceDeployment answers it (API_ContinueServiceDeployment:
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContinueServiceDeployment.html;
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/continue-service-deployment.html);
StopServiceDeployment with stopType ROLLBACK puts the previous revision back from any stage
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stop-service-deployment.html).

Every call is safe to repeat and to interrupt, as an operator restart needs:

- `start` does nothing when the service's current deployment already targets the task definition
  that runs the image (a second pass, or a restart, never starts a second deployment);
- `answer` answers a hook by its id, and only while ECS reports it AWAITING_ACTION: a hook once
  answered (by us before a restart, or by anyone) is never answered again, and ECS gives every
  linear/canary step's hook a new id, so a step is never skipped by a stale answer;
- `stop` rolls back only a deployment still in progress.

`observe` returns a frozen `planner.world.NativeDeployment` for the planner (parsed by
`shapes.parse_deployment`, which keeps none of ECS's free text).
This module decides nothing: when to continue or roll back is the planner's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from controller.aws.ecs import describe_service, task_definition_for
from controller.aws.errors import AwsEffectError, AwsFailure, effect_error, error_code
from controller.aws.taskdefs import TaskDefinitionCache
from controller.planner.native import NativePlan
from controller.aws.shapes import parse_deployment
from controller.planner.world import NativeDeployment

class NativeDeployments(Protocol):
    """What the native mode needs of ECS."""

    def start(self, cluster: str, service: str, container: str, image: str, plan: NativePlan) -> str | None: ...

    def observe(self, cluster: str, service: str) -> NativeDeployment | None: ...

    def answer(self, deployment_arn: str, hook_id: str, action: str) -> str | None: ...

    def stop(self, deployment_arn: str) -> str | None: ...


class EcsNativeDeployments:
    """`NativeDeployments` over an ECS client (injected; see controller.aws.clients)."""

    def __init__(self, ecs: Any, cache: TaskDefinitionCache | None = None) -> None:
        self.ecs = ecs
        self.cache = cache or TaskDefinitionCache()
        self._revisions: dict[str, str | None] = {}  # service revision ARN -> task definition (immutable)

    # -- reading ------------------------------------------------------------------------------

    def _revision_task_definition(self, arn: str | None) -> str | None:
        if not arn:
            return None
        if arn not in self._revisions:
            found = self.ecs.describe_service_revisions(serviceRevisionArns=[arn]).get("serviceRevisions") or []
            self._revisions[arn] = found[0].get("taskDefinition") if found else None
        return self._revisions[arn]

    def deployment(self, arn: str) -> NativeDeployment | None:
        """One service deployment by its ARN (None: ECS does not know it)."""
        return self._deployment(arn)

    def _deployment(self, arn: str) -> NativeDeployment | None:
        try:
            found = self.ecs.describe_service_deployments(serviceDeploymentArns=[arn]).get("serviceDeployments") or []
        except AwsFailure as exc:
            raise effect_error(exc, f"ECS service deployment {arn}") from exc
        if not found:
            return None
        target = (found[0].get("targetServiceRevision") or {}).get("arn")
        return parse_deployment(found[0], self._revision_task_definition(target))

    def observe(self, cluster: str, service: str) -> NativeDeployment | None:
        """The service's current deployment (its `currentServiceDeployment`), or None."""
        current = describe_service(self.ecs, cluster, service).get("currentServiceDeployment")
        return self._deployment(str(current)) if current else None

    # -- writing ------------------------------------------------------------------------------

    def start(self, cluster: str, service: str, container: str, image: str, plan: NativePlan) -> str | None:
        """UpdateService to the revision running `image` with `plan`'s deploymentConfiguration."""
        described = describe_service(self.ecs, cluster, service)
        controller = (described.get("deploymentController") or {}).get("type", "ECS")
        if controller != "ECS":
            raise AwsEffectError(
                "DeploymentControllerMismatch",
                f"ECS service {service} uses the {controller} deployment controller: ECS deploys natively only "
                "on the ECS controller", retryable=False)
        _check_routing(described, service, plan)
        current_td = str(described.get("taskDefinition") or "")
        if not current_td:
            raise AwsEffectError("TaskDefinitionNotFound", f"ECS service {service} has no task definition to copy",
                                 retryable=False)
        td_arn, _ = task_definition_for(self.ecs, self.cache, current_td, container, image)
        running = self.observe(cluster, service)
        if running is not None and running.target_task_definition == td_arn:
            return None  # started already (this pass, or before a restart): never a second deployment
        config = plan.deployment_configuration(dict(described.get("deploymentConfiguration") or {}))
        try:
            self.ecs.update_service(cluster=cluster, service=service, taskDefinition=td_arn,
                                    deploymentConfiguration=config)
        except AwsFailure as exc:
            raise effect_error(exc, f"ECS service {service} in {cluster}") from exc
        return f"started a {plan.strategy} deployment of {service} to {td_arn} ({image})"

    def answer(self, deployment_arn: str, hook_id: str, action: str) -> str | None:
        """ContinueServiceDeployment `action` (CONTINUE or ROLLBACK) for `hook_id`, once."""
        if action not in ("CONTINUE", "ROLLBACK"):
            raise ValueError(f"unknown hook action {action}")
        deployment = self._deployment(deployment_arn)
        if deployment is None or not deployment.active:
            return None
        if not any(h.hook_id == hook_id and h.status == "AWAITING_ACTION" for h in deployment.hooks):
            return None  # answered already, timed out, or another stage's
        try:
            self.ecs.continue_service_deployment(serviceDeploymentArn=deployment_arn, hookId=hook_id, action=action)
        except AwsFailure as exc:
            if error_code(exc) in ("InvalidParameterException", "ConflictException"):
                still = self._deployment(deployment_arn)
                if still is None or not any(h.hook_id == hook_id and h.status == "AWAITING_ACTION" for h in still.hooks):
                    return None  # answered between our read and our call
            raise effect_error(exc, f"ECS service deployment {deployment_arn}") from exc
        return f"answered {action} to pause hook {hook_id} at {deployment.stage}"

    def stop(self, deployment_arn: str) -> str | None:
        """StopServiceDeployment ROLLBACK, while the deployment is in progress."""
        deployment = self._deployment(deployment_arn)
        if deployment is None or not deployment.active or deployment.rolled_back:
            return None
        try:
            self.ecs.stop_service_deployment(serviceDeploymentArn=deployment_arn, stopType="ROLLBACK")
        except AwsFailure as exc:
            if error_code(exc) == "ConflictException":
                return None  # it finished or is rolling back already
            raise effect_error(exc, f"ECS service deployment {deployment_arn}") from exc
        return f"rolling back service deployment {deployment_arn} ({deployment.stage})"


def _check_routing(described: Mapping[str, Any], service: str, plan: NativePlan) -> None:
    """A native blue/green, canary or linear needs ECS's own routing set up on the service."""
    if plan.strategy == "ROLLING":
        return
    lbs = described.get("loadBalancers") or []
    advanced = (lbs[0].get("advancedConfiguration") or {}) if lbs else {}
    missing = [name for name in ("alternateTargetGroupArn", "productionListenerRule") if not advanced.get(name)]
    if plan.uses_test_listener and not advanced.get("testListenerRule"):
        missing.append("testListenerRule")
    if missing:
        raise AwsEffectError(
            "NativeRoutingMissing",
            f"ECS service {service} has no {', '.join(missing)} in loadBalancers[0].advancedConfiguration: a "
            f"{plan.strategy} deployment needs them (set them on the service, e.g. in Terraform's "
            "load_balancer.advanced_configuration)", retryable=False)


def has_test_listener(described: Mapping[str, Any]) -> bool:
    """Whether the service routes test traffic (a blue/green preview) through a test listener rule."""
    lbs = described.get("loadBalancers") or []
    return bool(lbs and (lbs[0].get("advancedConfiguration") or {}).get("testListenerRule"))
