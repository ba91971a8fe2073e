"""The pass's gates that may refuse it before anything changes: tenancy (a ReleasePolicy allows the
Release) and whether the traffic it names is its own. Each returns a `Refusal` for the planner, which
alone builds conditions from it. Must not: call AWS for a Release the tenancy gate refuses.
"""

from __future__ import annotations

from controller.api.reasons import Reason
from controller.api.release import ReleaseSpec
from controller.errors import EffectError
from controller.kube.client import ObjectRef
from controller.planner.decision import Refusal
from controller.planner.world import Observation
from controller.reconciler.memory import Memory
from controller.reconciler.ports import TenancyCheck, TrafficCheck


def permitted(tenancy: TenancyCheck | None, namespace: str, spec: ReleaseSpec) -> Refusal | None:
    """None when a ReleasePolicy (and every Secret it names) allows this Release. (A deletion's abort
    is not asked: it only puts back what this Release itself moved while it was allowed to.)"""
    if tenancy is None:
        return None
    try:
        refusal = tenancy.refusal(namespace, spec)
    except Exception as exc:  # noqa: BLE001 - fail closed; named by kind, the API's answer is not shown
        refusal = (f"ReleasePolicies cannot be read ({type(exc).__name__} {getattr(exc, 'status', '')}".rstrip()
                   + "); nothing is changed until they can")
    return None if refusal is None else Refusal(Reason.NOT_PERMITTED, refusal)


def refused(tenancy: TenancyCheck | None, namespace: str, spec: ReleaseSpec) -> bool:
    """Would the tenancy gate refuse this Release now (its reads are cached: cheap per round)?"""
    if tenancy is None:
        return False
    try:
        return tenancy.refusal(namespace, spec) is not None
    except Exception:  # noqa: BLE001 - a full pass says why
        return True


def traffic(check: TrafficCheck | None, mem: Memory, ref: ObjectRef, generation: int, spec: ReleaseSpec,
            observation: Observation) -> Refusal | None:
    """Once per spec generation, before it adopts or changes anything: is this traffic its own?"""
    if check is None or mem.traffic_checked == (ref.uid, generation):
        return None
    try:
        refusal = check.refusal(spec, observation)
    except EffectError as exc:
        return Refusal(exc.reason, exc.message)
    if refusal is not None:
        return Refusal(Reason.INVALID_TRAFFIC, refusal)
    mem.traffic_checked = (ref.uid, generation)
    return None
