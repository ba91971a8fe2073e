"""Whether a spec fits the world it names, found before anything moves: the service's
deployment controller, ECS's own deployments and their routing, the traffic a strategy needs, a
tier of several services, and a backend the live frontend cannot take. Each answer is (condition,
reason, message), the message saying what to write instead; `phases.start.refuse` says it.
"""

from __future__ import annotations

from controller.api.reasons import Reason
from controller.api.release import ConditionType, EcsMode, StrategyType
from controller.planner.draft import Draft
from controller.planner.native import NativeRefusal, native_plan
from controller.planner.strategy import NEEDS_TRAFFIC, resolve
from controller.planner.tiers import backend_change_refused


def refusal(d: Draft, backend_change: bool) -> tuple[ConditionType, Reason, str] | None:
    """Why this spec cannot be rolled out here at all: (condition, reason, message)."""
    strategy = resolve(d.spec)
    service = d.obs.service
    assert service is not None
    if d.several:
        several = _several_refused(d, strategy, backend_change)
        if several is not None:
            return several
    if not backend_change:
        return None
    if service.deployment_controller not in ("EXTERNAL", "ECS"):
        return (
            ConditionType.PROGRESSING,
            Reason.DEPLOYMENT_CONTROLLER_NOT_SUPPORTED,
            f"service {service.name} uses the {service.deployment_controller} deployment controller; "
            "use EXTERNAL (all strategies) or ECS (Rolling and Fast)",
        )
    mode = d.spec.backend.ecs.mode
    if mode == EcsMode.NATIVE and service.deployment_controller != "ECS":
        return (
            ConditionType.PROGRESSING,
            Reason.DEPLOYMENT_CONTROLLER_NOT_SUPPORTED,
            f"backend.ecs.mode Native needs the ECS deployment controller, but service {service.name} uses "
            f"{service.deployment_controller}: leave mode unset (or TaskSets) to release it through task sets",
        )
    if strategy in NEEDS_TRAFFIC and d.inp.native:
        plan = native_plan(d.spec, strategy, has_test_listener=service.test_listener)
        if isinstance(plan, NativeRefusal):
            return ConditionType.PROGRESSING, Reason.NATIVE_STEPS_UNSUPPORTED, plan.message
        if not service.native_routing:
            return (
                ConditionType.PROGRESSING,
                Reason.NATIVE_ROUTING_MISSING,
                f"backend.ecs.mode Native: service {service.name} has no alternateTargetGroupArn and "
                "productionListenerRule in loadBalancers[0].advancedConfiguration, which ECS needs to shift "
                f"traffic for {strategy.value}: add them to the service (Terraform: load_balancer.advanced_configuration)",
            )
    elif strategy in NEEDS_TRAFFIC and service.deployment_controller != "EXTERNAL":
        return (
            ConditionType.PROGRESSING,
            Reason.DEPLOYMENT_CONTROLLER_NOT_EXTERNAL,
            f"strategy {strategy.value} needs task sets, but service {service.name} uses the "
            f"{service.deployment_controller} deployment controller: recreate it with "
            "deploymentController EXTERNAL, or use Rolling or Fast",
        )
    if strategy in NEEDS_TRAFFIC and d.spec.backend.traffic is None and not d.inp.native:
        return (
            ConditionType.PROGRESSING,
            Reason.NO_TRAFFIC_ROUTING,
            f"strategy {strategy.value} needs backend.traffic (an ALB listener with two target groups)",
        )
    why = backend_change_refused(d.spec, d.obs, d.st.frontend.stable_version)
    if why is not None:
        return ConditionType.COMPATIBLE, Reason.INCOMPATIBLE_BACKEND, why
    return None


def _several_refused(d: Draft, strategy: StrategyType, backend_change: bool) -> tuple[ConditionType, Reason, str] | None:
    """Why a tier of several services cannot roll this spec out, refused before anything moves,
    saying what to write instead."""
    unsupported = several_unsupported(d)
    if unsupported is not None:
        return unsupported
    names = ", ".join(s.name for s in d.spec.backend.service_list())
    if not backend_change:
        return None
    for m in d.members:
        service = m.obs.service
        if service is not None and service.deployment_controller != "EXTERNAL":
            return (ConditionType.PROGRESSING, Reason.DEPLOYMENT_CONTROLLER_NOT_EXTERNAL,
                    f"backend.services are released through task sets, but service {m.name} ({service.name}) uses "
                    f"the {service.deployment_controller} deployment controller: recreate it with "
                    "deploymentController EXTERNAL")
    if strategy in NEEDS_TRAFFIC and all(s.traffic is None for s in d.spec.backend.service_list()):
        return (ConditionType.PROGRESSING, Reason.NO_TRAFFIC_ROUTING,
                f"strategy {strategy.value} needs traffic (an ALB listener with two target groups) on at least one "
                f"of backend.services ({names})")
    return None


def several_unsupported(d: Draft) -> tuple[ConditionType, Reason, str] | None:
    """What a tier of several services cannot do yet (docs/many-services.md): ECS's own deployments
    (Native). A preview step is every service's (`phases.preview`); a frontend goes live once every
    service serves the new version (the observer's `backend_version_serving` is the least of theirs)."""
    names = ", ".join(s.name for s in d.spec.backend.service_list())
    if any(s.ecs.mode == EcsMode.NATIVE for s in d.spec.backend.service_list()):
        return (ConditionType.PROGRESSING, Reason.SEVERAL_SERVICES_UNSUPPORTED,
                f"backend.services ({names}) are released through task sets: leave ecs.mode unset (or TaskSets) "
                "on every service; ECS's own deployments (Native) are not supported for several services yet")
    return None
