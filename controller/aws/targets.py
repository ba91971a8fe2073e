"""What a Release points at in AWS, taken from its spec: the observer's unit of reading (one per
service of a backend tier of several, `Targets.each`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from controller.api.release import ReleaseSpec
from controller.planner.group import project
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
    member: str = ""  # the service's name in a backend tier of several ("": the Release's one service)

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

    @classmethod
    def each(cls, key: Key, spec: ReleaseSpec) -> list["Targets"]:
        """One `Targets` per service of the backend tier (one service: `of`). The frontend and the
        flags are the Release's, read once, with its first service."""
        if not spec.backend.several:
            return [cls.of(key, spec)]
        out = []
        for i, s in enumerate(spec.backend.service_list()):
            t = replace(cls.of(key, project(spec, s)), member=s.name)
            if i:
                t = replace(t, distribution_id=None, origin_id=None, frontend_canary=False, flags_parameter=None)
            out.append(t)
        return out
