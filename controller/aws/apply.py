"""Execute a decision's actions against AWS, in order: the effector side of a pass.

`apply(actions, clients, observation)` runs each action through the effector of its surface
(ecs, alb, cloudfront, flags) and returns what it changed, one line per change; an action that
found AWS already as asked changes nothing and adds no line. The first failure stops the pass: a
not-found case raises `AwsEffectError` with the contract's reason, and any other AWS failure
(after botocore's adaptive retries) is raised as `AwsEffectError("AwsError", ...)`, retryable when
AWS throttled or failed on its side. The reconciler turns either into a condition and retries with
backoff; the actions already applied stay applied, and the next pass re-observes and asks only for
what is still missing.

`Effector` is the callable the reconciler is given (its `Applier` protocol). This module must not
decide anything or reorder actions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from controller.aws import alb, cloudfront, ecs, flags, preview
from controller.aws.native import EcsNativeDeployments
from controller.aws.clients import AwsClients
from controller.aws.errors import AwsEffectError, AwsFailure, effect_error
from controller.aws.observe import Observer, TaskDefinitionCache
from controller.planner.actions import (
    Action,
    AnswerNativeHook,
    DeleteTaskSet,
    ClearStagingHeader,
    DisableStaging,
    EnsurePreviewRoute,
    EnsureTaskSet,
    PromoteStaging,
    PublishFlags,
    RemovePreviewRoute,
    ScaleTaskSet,
    SetListenerWeights,
    SetOriginPath,
    SetPrimaryTaskSet,
    SetStagingHeader,
    SetStagingWeight,
    StartNativeDeployment,
    StopNativeDeployment,
    UpdateServiceImage,
)
from controller.planner.world import Observation

log = logging.getLogger(__name__)


def _effect(action: Action, clients: AwsClients, cache: TaskDefinitionCache) -> str | None:
    match action:
        case EnsureTaskSet():
            return ecs.ensure_task_set(clients.ecs, cache, action)
        case ScaleTaskSet():
            return ecs.scale_task_set(clients.ecs, action)
        case SetPrimaryTaskSet():
            return ecs.set_primary_task_set(clients.ecs, action)
        case DeleteTaskSet():
            return ecs.delete_task_set(clients.ecs, action)
        case UpdateServiceImage():
            return ecs.update_service_image(clients.ecs, cache, action)
        case StartNativeDeployment():
            return EcsNativeDeployments(clients.ecs, cache).start(
                action.cluster, action.service, action.container_name, action.image, action.plan)
        case AnswerNativeHook():
            return EcsNativeDeployments(clients.ecs, cache).answer(action.deployment_arn, action.hook_id, action.action)
        case StopNativeDeployment():
            return EcsNativeDeployments(clients.ecs, cache).stop(action.deployment_arn)
        case SetListenerWeights():
            return alb.set_listener_weights(clients.elbv2, action)
        case EnsurePreviewRoute():
            return preview.ensure_preview_route(clients.elbv2, action)
        case RemovePreviewRoute():
            return preview.remove_preview_route(clients.elbv2, action.listener_arn, action.owner)
        case SetOriginPath():
            return cloudfront.set_origin_path(clients.cloudfront, action)
        case PublishFlags():
            return flags.publish_flags(clients, action)
        case SetStagingWeight():
            return cloudfront.set_staging_weight(clients.cloudfront, action)
        case SetStagingHeader():
            return cloudfront.set_staging_header(clients.cloudfront, action)
        case ClearStagingHeader():
            return cloudfront.clear_staging_header(clients.cloudfront, action)
        case PromoteStaging():
            return cloudfront.promote_staging(clients.cloudfront, action)
        case DisableStaging():
            return cloudfront.disable_staging(clients.cloudfront, action)
    raise TypeError(f"no effector for {type(action).__name__}")


def apply(
    actions: Sequence[Action],
    clients: AwsClients,
    observation: Observation | None = None,
    *,
    cache: TaskDefinitionCache | None = None,
) -> list[str]:
    """Apply `actions` in order; return one line per change made.

    `observation` is accepted for the reconciler's protocol but not trusted for skipping: each
    effector reads the state it changes, because the observation may be a snapshot from before an
    earlier action of this very list.
    """
    del observation
    cache = cache if cache is not None else TaskDefinitionCache()
    changes: list[str] = []
    for action in actions:
        try:
            change = _effect(action, clients, cache)
        except AwsEffectError:
            raise
        except AwsFailure as exc:
            raise effect_error(exc, type(action).__name__) from exc
        if change:
            log.info("%s", change)
            changes.append(change)
    return changes


@dataclass
class Effector:
    """`apply` bound to clients and a task definition cache (share it with the `Observer`)."""

    clients: AwsClients
    cache: TaskDefinitionCache = field(default_factory=TaskDefinitionCache)

    def __call__(self, actions: Sequence[Action], observation: Observation | None = None) -> None:
        """The reconciler's `Applier`: changes are logged; `apply` returns them to other callers."""
        self.apply(actions, observation)

    def apply(self, actions: Sequence[Action], observation: Observation | None = None) -> list[str]:
        return apply(actions, self.clients, observation, cache=self.cache)


def effector_for(observer: Observer) -> Effector:
    """An Effector sharing the observer's clients and task definition cache (one per process)."""
    return Effector(observer.clients, observer.cache)
