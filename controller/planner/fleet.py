"""Task sets and target groups of one Release as observed, and the actions that move them. Pure.

Target groups alternate roles, as in CodeDeploy's ECS blue/green: the stable task set serves
from `status.backend.stableTargetGroupArn` (the spec's stable group until the first promotion), the
canary goes into the other one, and a promotion flips them. Every function here compares a desired
state with the observation and returns only the actions for what differs, so a pass repeated with
the same observation asks for the same actions, and an action that did not land is asked again.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.api.release import BackendService, ReleaseSpec, ReleaseStatus
from controller.planner.actions import (
    Action,
    DeleteTaskSet,
    EnsureTaskSet,
    ScaleTaskSet,
    SetListenerWeights,
    SetPrimaryTaskSet,
    external_id_for,
)
from controller.planner import identity
from controller.planner.steps import PROMOTION, SetStep
from controller.planner.world import Listener, Observation, StoppedTask, TaskSet

STEADY = "STEADY_STATE"
TASK_FAILURE_LIMIT = 3  # stopped tasks of a canary that roll it back, as ECS's circuit breaker would
SCALE_TOLERANCE = 0.5  # percent; ECS reports the scale it was given, this only absorbs float noise


@dataclass(frozen=True)
class Fleet:
    """The Release's view of one ECS service with task sets, for one pass."""

    service: BackendService  # the service of the backend tier (one service: `backend`, the spec's)
    stable_tg: str | None
    canary_tg: str | None
    stable: TaskSet | None
    canary: TaskSet | None
    others: tuple[TaskSet, ...]  # neither stable nor canary: leftovers of an earlier rollout
    listener: Listener | None
    canary_external_id: str | None

    # ------------------------------------------------------------------ reading

    @property
    def canary_weight(self) -> int:
        if self.listener is None or self.canary_tg is None:
            return 0
        return self.listener.weight(self.canary_tg)

    def weights_are(self, canary_weight: int) -> bool:
        if self.listener is None or self.stable_tg is None or self.canary_tg is None:
            return True  # no ALB: nothing to route
        want = self.weights(canary_weight)
        seen = {tg: w for tg, w in self.listener.weights.items() if w}
        return seen == {tg: w for tg, w in want.items() if w}

    def weights(self, canary_weight: int) -> dict[str, int]:
        assert self.stable_tg is not None and self.canary_tg is not None
        return {self.stable_tg: 100 - canary_weight, self.canary_tg: canary_weight}

    # ------------------------------------------------------------------ actions

    def _ids(self) -> tuple[str, str]:
        ecs = self.service.ecs
        return ecs.cluster, ecs.service

    def scale(self, ts: TaskSet, percent: float) -> ScaleTaskSet:
        cluster, service = self._ids()
        return ScaleTaskSet(cluster, service, ts.external_id or "", percent, task_set_id=ts.id)

    def make_primary(self, ts: TaskSet) -> SetPrimaryTaskSet:
        cluster, service = self._ids()
        return SetPrimaryTaskSet(cluster, service, ts.external_id or "", task_set_id=ts.id)

    def delete(self, ts: TaskSet, drain: bool = False) -> list[Action]:
        cluster, service = self._ids()
        out: list[Action] = []
        if drain and ts.scale_percent > 0:
            out.append(self.scale(ts, 0.0))
        out.append(DeleteTaskSet(cluster, service, ts.id))
        return out

    def set_weights(self, canary_weight: int) -> list[Action]:
        if self.weights_are(canary_weight) or self.listener is None:
            return []
        if self.stable is None and canary_weight < 100:
            # No stable task set to take the rest (a status older than the world names one long
            # gone): traffic is not sent to a target group with nothing behind it.
            return []
        return [SetListenerWeights(self.listener.arn, self.weights(canary_weight))]

    def converge(self, step: SetStep) -> list[Action]:
        """Actions toward `step`; empty when the observation already shows it.

        Capacity moves before traffic: the canary is created or grown first (and the stable task set
        grown back if it is too small for the rest of the traffic), and the weights change only once
        the canary is observed at its scale and steady; a task set shrinks in the same pass as the
        weights move away from it, after them (actions are applied in order).
        """
        ecs = self.service.ecs
        if self.canary is None:
            assert self.canary_external_id is not None
            return [
                EnsureTaskSet(
                    cluster=ecs.cluster,
                    service=ecs.service,
                    external_id=self.canary_external_id,
                    container_name=ecs.container_name,
                    image=self.service.image,
                    target_group_arn=self.canary_tg,
                    container_port=None,
                    scale_percent=step.canary_scale,
                )
            ]
        if self.canary.scale_percent + SCALE_TOLERANCE < step.canary_scale:
            return [self.scale(self.canary, step.canary_scale)]
        # The stable task set must hold the rest of the traffic: a step that leaves its scale alone
        # still needs it large enough (a superseded Rolling step may have shrunk it).
        stable_scale = step.stable_scale
        if stable_scale is None and self.stable is not None and (
            self.stable.scale_percent + SCALE_TOLERANCE < 100 - step.canary_weight
        ):
            stable_scale = 100.0
        if self.stable is not None and stable_scale is not None and (
            self.stable.scale_percent + SCALE_TOLERANCE < stable_scale
        ):
            return [self.scale(self.stable, stable_scale)]
        if not self.canary.ready_for_traffic():
            return []
        if (
            self.stable is not None and self.stable_tg is not None and self.listener is not None
            and self.listener.weight(self.stable_tg) < 100 - step.canary_weight and self.stable.stability != STEADY
        ):
            return []  # more traffic for the stable task set only once it is steady
        # Traffic moves before capacity shrinks (actions are applied in order).
        out = self.set_weights(step.canary_weight)
        # The canary never shrinks under the weight it keeps: when the weights cannot move (no
        # stable task set to take the rest, after a status older than the world) it keeps its traffic.
        keeps = step.canary_weight if out else self.canary_weight
        canary_scale = max(step.canary_scale, float(keeps))
        if abs(self.canary.scale_percent - canary_scale) > SCALE_TOLERANCE:
            out.append(self.scale(self.canary, canary_scale))
        if self.stable is not None and stable_scale is not None and (
            abs(self.stable.scale_percent - stable_scale) > SCALE_TOLERANCE
        ):
            out.append(self.scale(self.stable, stable_scale))
        return out

    def at(self, step: SetStep) -> bool:
        """Whether the observation shows `step` (canary steady at its scale, weights, stable scale)."""
        if self.canary is None or not self.canary.ready_for_traffic():
            return False
        return not self.converge(step)

    def promote(self, state: SetStep = PROMOTION) -> list[Action]:
        """Toward promotion (`state`, `PROMOTION` unless a tier's worker takes it otherwise): canary
        at 100% and all traffic, then primary. Empty when observed."""
        out = self.converge(state)
        if self.canary is None or not self.canary.ready_for_traffic() or any(
            not isinstance(a, SetListenerWeights) for a in out
        ):
            return out  # capacity first
        if self.canary.status != "PRIMARY":
            out.append(self.make_primary(self.canary))
        return out

    def restore_lost_stable(self, stable_image: str | None, external_id: str | None) -> list[Action]:
        """The stable task set is gone while the listener still sends traffic to its target group,
        which nothing serves (a task set deleted under a rollout, by hand or by a late change of an
        earlier process after the status was lost): create it again there, at full scale, so the
        traffic has capacity before the rollout goes on. Empty when there is nothing to restore."""
        if (self.stable is not None or stable_image is None or external_id is None or self.listener is None
                or self.stable_tg is None or self.listener.weight(self.stable_tg) <= 0):
            return []
        if any(ts.target_group_arn == self.stable_tg and ts.status != "DRAINING"
               for ts in (self.canary, *self.others) if ts is not None):
            return []  # something serves there: the leftover rules apply
        ecs = self.service.ecs
        return [EnsureTaskSet(cluster=ecs.cluster, service=ecs.service, external_id=external_id,
                              container_name=ecs.container_name, image=stable_image,
                              target_group_arn=self.stable_tg, container_port=None, scale_percent=100.0)]

    def stable_ready(self) -> tuple[list[Action], bool]:
        """Whether the stable task set can take all traffic (at full scale and steady); if not, the
        action toward it. No stable task set: nothing to wait for."""
        if self.stable is None:
            return [], True
        if abs(self.stable.scale_percent - 100.0) > SCALE_TOLERANCE:
            return [self.scale(self.stable, 100.0)], False
        return [], self.stable.stability == STEADY

    def back_to_stable(self) -> tuple[list[Action], bool]:
        """Rollback actions: stable at full scale and primary, all traffic on it, canary drained
        and deleted. Returns (actions, done). Weights move in one listener change, and only once the
        stable task set is observed at full scale, so traffic never lands on missing capacity."""
        out: list[Action] = []
        doomed = [ts for ts in (self.canary, *self.others) if ts is not None]
        if self.stable is None:
            # Nothing to go back to (a first deployment): leave the new version serving.
            return [], True
        if abs(self.stable.scale_percent - 100.0) > SCALE_TOLERANCE:
            return [self.scale(self.stable, 100.0)], False
        if self.stable.stability != STEADY:
            return [], False
        out += self.set_weights(0)
        if self.stable.status != "PRIMARY":
            out.append(self.make_primary(self.stable))
        for ts in doomed:
            out += self.delete(ts, drain=True)
        return out, not out


def tasks_keep_stopping(ts: TaskSet | None, limit: int = TASK_FAILURE_LIMIT) -> StoppedTask | None:
    """The last of `limit` or more stopped tasks of `ts` (ECS's deployment circuit breaker), else None."""
    if ts is None or len(ts.stopped_tasks) < limit:
        return None
    return ts.stopped_tasks[-1]



def fleet(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation, namespace: str, name: str,
          of: BackendService | None = None) -> Fleet:
    """Name the observed task sets: stable by the status's stable image (else the primary),
    canary by the spec image's external id, everything else a leftover.

    `spec`, `status` and `obs` speak of one service: the spec's (a single-service Release), or `of`,
    one service of a tier of several as `planner.group` projects it."""
    stable_tg, canary_tg = identity.target_groups(spec, status)
    service = obs.service
    canary_image = status.backend.canary_image
    task_sets = service.task_sets if service is not None else ()
    canary = identity.find(task_sets, namespace, name, canary_image)
    stable = identity.find(task_sets, namespace, name, status.backend.stable_image)
    if stable is not None and canary is not None and stable.id == canary.id:
        stable = None  # a status older than the world may name the canary's image as stable
    if stable is None and service is not None and service.primary is not None and service.primary is not canary:
        stable = service.primary
    if stable is None and obs.listener is not None:
        # The stable image runs nowhere and the primary is the canary (restarts onto older statuses,
        # a late write): what serves the traffic that is not the canary's is the way back. It is
        # never drained as a leftover under the traffic it serves (seed 4221).
        listener = obs.listener
        serving = [ts for ts in task_sets if ts is not canary and ts.status != "DRAINING" and ts.scale_percent > 0
                   and ts.target_group_arn is not None and listener.weight(ts.target_group_arn) > 0]
        if serving:
            stable = max(serving, key=lambda ts: (listener.weight(ts.target_group_arn or ""), ts.scale_percent))
    if stable is not None and stable.target_group_arn in (stable_tg, canary_tg) and stable.target_group_arn != stable_tg:
        # The status's stable group is older than the world (a restart from an older status): the
        # groups' roles follow the stable task set, wherever it serves from (else the canary's).
        stable_tg, canary_tg = canary_tg, stable_tg
    elif stable is None and canary is not None and canary_tg is not None and canary.target_group_arn == stable_tg:
        stable_tg, canary_tg = canary_tg, stable_tg  # the same, by the canary's group
    keep = {ts.id for ts in (stable, canary) if ts is not None}
    others = tuple(ts for ts in (service.task_sets if service else ()) if ts.id not in keep)
    return Fleet(
        service=of or spec.backend.service_list()[0],
        stable_tg=stable_tg,
        canary_tg=canary_tg,
        stable=stable,
        canary=canary,
        others=others,
        listener=obs.listener,
        canary_external_id=external_id_for(namespace, name, canary_image) if canary_image else None,
    )
