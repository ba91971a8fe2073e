"""What a Release points at in AWS, taken from its spec: the observer's unit of reading."""

from __future__ import annotations

from dataclasses import dataclass

from controller.api.release import ReleaseSpec
from controller.planner.strategy import has_preview
from controller.planner.tiers import flags_parameter

Key = tuple[str, str]


@dataclass(frozen=True)
class Targets:
    """The AWS names one Release points at, taken from its spec."""

    key: Key
    cluster: str
    service: str
    container_name: str
    listener_arn: str | None = None
    target_group_arns: tuple[str, ...] = ()
    distribution_id: str | None = None
    origin_id: str | None = None
    frontend_canary: bool = False
    flags_parameter: str | None = None
    image: str | None = None
    previews: bool = False  # the spec has a preview: read the listener's preview rules too

    @classmethod
    def of(cls, key: Key, spec: ReleaseSpec) -> "Targets":
        traffic, fe = spec.backend.traffic, spec.frontend
        return cls(
            key=key,
            cluster=spec.backend.ecs.cluster,
            service=spec.backend.ecs.service,
            container_name=spec.backend.ecs.container_name,
            listener_arn=traffic.listener_arn if traffic else None,
            target_group_arns=(traffic.stable_target_group_arn, traffic.canary_target_group_arn) if traffic else (),
            distribution_id=fe.cloudfront.distribution_id if fe else None,
            origin_id=fe.cloudfront.origin_id if fe else None,
            frontend_canary=bool(fe and fe.canary and fe.canary.steps),
            flags_parameter=flags_parameter(*key),
            image=spec.backend.image,
            previews=traffic is not None and has_preview(spec),
        )
