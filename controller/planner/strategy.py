"""Which strategy a Release gets, and the identity of the rollout it asks for. Pure.

`resolve` maps Auto through the change class; `target_hash` names one rollout target so that a
spec change mid-rollout is noticed and an unchanged spec is never rolled out twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from controller.api.release import ChangeClass, FlagRollout, ReleaseSpec, StrategyType
from controller.planner import bluegreen, canary, fast, rolling
from controller.planner.steps import Plan, PreviewStep

AUTO = {
    ChangeClass.INFRASTRUCTURE: StrategyType.BLUE_GREEN,
    ChangeClass.API: StrategyType.CANARY,
    ChangeClass.CORE: StrategyType.ROLLING,
    ChangeClass.MINOR: StrategyType.FAST,
}

# Strategies that need two target groups and task sets (an EXTERNAL deployment controller).
NEEDS_TRAFFIC = frozenset({StrategyType.CANARY, StrategyType.BLUE_GREEN})


def resolve(spec: ReleaseSpec) -> StrategyType:
    """The concrete strategy: Auto by change class (no class: Canary with traffic, else Rolling).

    >>> from controller.api.release import Strategy
    >>> resolve_type(Strategy(type="Auto", changeClass="core"), has_traffic=True)
    <StrategyType.ROLLING: 'Rolling'>
    """
    return resolve_type(spec.strategy, spec.backend.traffic is not None)


def resolve_type(strategy: Any, has_traffic: bool) -> StrategyType:
    if strategy.type != StrategyType.AUTO:
        return StrategyType(strategy.type)
    if strategy.change_class is not None:
        return AUTO[ChangeClass(strategy.change_class)]
    return StrategyType.CANARY if has_traffic else StrategyType.ROLLING


def plan_for(strategy: StrategyType, spec: ReleaseSpec) -> Plan:
    builders = {
        StrategyType.FAST: fast.plan,
        StrategyType.ROLLING: rolling.plan,
        StrategyType.CANARY: canary.plan,
        StrategyType.BLUE_GREEN: bluegreen.plan,
    }
    return builders.get(strategy, fast.plan)(spec)


def has_preview(spec: ReleaseSpec) -> bool:
    """Whether the rollout `spec` asks for has a preview step (a preview route on its listener)."""
    return any(isinstance(s, PreviewStep) for s in plan_for(resolve(spec), spec).steps)


def preview_header(spec: ReleaseSpec, strategy: StrategyType | None = None) -> tuple[str, str] | None:
    """The (name, value) of the header that reaches the new version during the rollout's preview, None
    without one: what a preview hook is given to send its smoke test through."""
    steps = plan_for(strategy or resolve(spec), spec).steps
    step = next((s for s in steps if isinstance(s, PreviewStep)), None)
    return (step.header_name, step.header_value) if step is not None else None


def flags_document(spec: ReleaseSpec) -> dict[str, Any]:
    """The feature flags exactly as published (SSM JSON, flags.json) and as read back.

    >>> from controller.api.release import FlagRollout
    >>> flags_document_of({"a": True, "b": FlagRollout(enabled=True, rolloutPercent=20)})
    {'a': True, 'b': {'enabled': True, 'rolloutPercent': 20}}
    """
    return flags_document_of(spec.feature_flags)


def flags_document_of(flags: Mapping[str, bool | FlagRollout]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(flags):
        value = flags[key]
        out[key] = value if isinstance(value, bool) else value.model_dump(mode="json", by_alias=True)
    return out


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def flags_hash(spec: ReleaseSpec) -> str:
    return _digest(flags_document(spec))


def target_hash(spec: ReleaseSpec) -> str:
    """Hash of what a rollout moves to: backend image and version, frontend version, strategy, flags.

    Step lists, analysis settings and the like are left out on purpose: editing them tunes the
    rollout in progress instead of restarting it.
    """
    several = {"images": {s.name: s.image for s in spec.backend.service_list()}} if spec.backend.several else {}
    return _digest(
        {
            **several,
            "image": spec.backend.image,
            "backend": spec.backend.version,
            "frontend": spec.frontend.version if spec.frontend else None,
            "strategy": resolve(spec).value,
            "flags": flags_document(spec),
        }
    )
