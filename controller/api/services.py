"""`backend.services` as pydantic models: the shape issue many-services fixes.

**Not wired.** Nothing in the planner, the reconciler or the CRD reads `BackendTier` yet:
`ReleaseSpec.backend` is still `release.Backend`, one ECS service, and `crds/release.yaml` does not
carry `services`. It lives apart from `controller/api/release.py` so that it can be reviewed and
tested while that module changes elsewhere; wiring it (docs/many-services.md) makes `BackendTier` the
type of `ReleaseSpec.backend` and moves the validations below into CEL rules where a schema can say
them. The preview step is wired: `Preview` and `PreviewHeader` live in `release.py` (a kind of
`CanaryStep`) and are named here too.

The backend tier names one or more ECS services, built from one commit and released as one version:

    backend:
      version: 2.0.0
      services:
        - name: api
          image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/pratiko-backend:2.0.0
          ecs: {cluster: pratiko-production, service: pratiko-backend, containerName: api}
          traffic: {listenerArn: ..., stableTargetGroupArn: ..., canaryTargetGroupArn: ...}
        - name: mcp
          after: [api]                  # starts its steps once api is at the same step
          image: .../pratiko-mcp:2.0.0
          ecs: {cluster: pratiko-production, service: pratiko-mcp, containerName: mcp}
          traffic: {...}
        - name: worker                  # no traffic: canary by task count
          after: [api]
          image: .../pratiko-worker:2.0.0
          ecs: {cluster: pratiko-production, service: pratiko-worker, containerName: worker}

Today's single-service form (`backend: {version, image, ecs, traffic}`) stays valid as it is and
means one service, named `SINGLE_SERVICE` (`BackendTier.service_list`). A tier is one form or the
other, never both. `after` orders the services into waves (`BackendTier.waves`): a wave's services
take a step in lockstep once every service they come after has taken it; a rollback goes through the
services in the reverse order (`BackendTier.rollback_order`).
"""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from controller.api.release import (  # noqa: F401  (the preview models live in release.py now; named here too)
    CLOUDFRONT_HEADER_PREFIX,
    DEFAULT_PREVIEW_HEADER,
    HEADER_NAME_PATTERN,
    HEADER_VALUE_PATTERN,
    MAX_HEADER_NAME,
    MAX_HEADER_VALUE,
    EcsTarget,
    Model,
    Preview,
    PreviewHeader,
    Traffic,
    _check_image,
    image_tag_mismatch,
)
from controller.api.types import Duration, SemVer

SINGLE_SERVICE = "backend"  # the name of the one service of a single-service tier
MAX_SERVICES = 10
SERVICE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # a DNS label: it names claims and task sets


_IMAGE_TAG = re.compile(r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class BackendService(Model):
    """One ECS service of the backend tier."""

    name: str = Field(min_length=1, max_length=63, pattern=SERVICE_NAME_PATTERN)
    after: list[str] = Field(
        default_factory=list, max_length=MAX_SERVICES,
        description="Services this one follows: it takes each step once all of them have taken it.")
    image: str = Field(min_length=1, max_length=1024)
    ecs: EcsTarget
    traffic: Traffic | None = Field(
        default=None, description="Without traffic, the service is a worker: its canary is a share of its tasks.")

    @field_validator("image")
    @classmethod
    def _image_pinned(cls, value: str) -> str:
        return _check_image(value)


class BackendTier(Model):
    """`spec.backend`: one service (`image`, `ecs`, `traffic`) or several (`services`), one version."""

    version: SemVer
    image: str | None = Field(default=None, min_length=1, max_length=1024)
    image_tag_is_version: bool = True
    ecs: EcsTarget | None = None
    traffic: Traffic | None = None
    services: list[BackendService] | None = Field(default=None, min_length=1, max_length=MAX_SERVICES)

    @field_validator("image")
    @classmethod
    def _image_pinned(cls, value: str | None) -> str | None:
        return None if value is None else _check_image(value)

    @model_validator(mode="after")
    def _one_form(self) -> BackendTier:
        if self.services is not None:
            given = [f for f, v in (("image", self.image), ("ecs", self.ecs), ("traffic", self.traffic)) if v is not None]
            if given:
                raise ValueError(f"backend.services names each service's image, ecs and traffic: leave "
                                 f"backend.{', backend.'.join(given)} out, or write one service without services")
            return self
        missing = [f for f, v in (("image", self.image), ("ecs", self.ecs)) if v is None]
        if missing:
            raise ValueError(f"backend needs {' and '.join(missing)} (one service), or services (several)")
        return self

    @model_validator(mode="after")
    def _services_consistent(self) -> BackendTier:
        services = self.service_list()
        names = [s.name for s in services]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"backend.services: the name {', '.join(duplicates)} is used twice")
        for s in services:
            if s.name in s.after:
                raise ValueError(f"backend.services[{s.name}].after names the service itself")
            unknown = [a for a in s.after if a not in names]
            if unknown:
                raise ValueError(f"backend.services[{s.name}].after names {', '.join(unknown)}, which is not a "
                                 f"service of this Release (services: {', '.join(names)})")
        self.waves()  # raises on a cycle
        if self.image_tag_is_version:
            for s in services:
                if "@" not in s.image and _IMAGE_TAG.search(s.image) and not s.image.endswith(f":{self.version}"):
                    raise ValueError(f"backend.services[{s.name}]: {image_tag_mismatch(s.image, self.version)}")
        _unshared("ECS service", {s.name: [f"{s.ecs.cluster}/{s.ecs.service}"] for s in services})
        _unshared("listener", {s.name: [s.traffic.listener_arn] for s in services if s.traffic},
                  "each service's canary moves its listener's default action")
        _unshared("target group", {s.name: [s.traffic.stable_target_group_arn, s.traffic.canary_target_group_arn]
                                   for s in services if s.traffic})
        return self

    def service_list(self) -> tuple[BackendService, ...]:
        """The services, in the order written; a single-service tier is one service, `SINGLE_SERVICE`."""
        if self.services is not None:
            return tuple(self.services)
        assert self.image is not None and self.ecs is not None
        return (BackendService(name=SINGLE_SERVICE, image=self.image, ecs=self.ecs, traffic=self.traffic),)

    def waves(self) -> tuple[tuple[str, ...], ...]:
        """The services in waves: a wave's services come after services of earlier waves only.

        Worked example, the module docstring's api, mcp after api, worker after api:
        `(("api",), ("mcp", "worker"))`. Within a wave, the order written. A cycle is refused.
        """
        services = self.service_list()
        placed: dict[str, int] = {}
        waves: list[list[str]] = []
        remaining = list(services)
        while remaining:
            ready = [s for s in remaining if all(a in placed for a in s.after)]
            if not ready:
                cycle = ", ".join(s.name for s in remaining)
                raise ValueError(f"backend.services: {cycle} come after each other (a cycle in after)")
            for s in ready:
                wave = max((placed[a] + 1 for a in s.after), default=0)
                placed[s.name] = wave
                while len(waves) <= wave:
                    waves.append([])
            for s in services:  # the order written, within each wave
                if s in ready:
                    waves[placed[s.name]].append(s.name)
            remaining = [s for s in remaining if s not in ready]
        return tuple(tuple(w) for w in waves)

    def rollback_order(self) -> tuple[str, ...]:
        """The order services go back in: the last wave first, each wave's services in reverse.

        Worked example, waves (api), (mcp, worker): worker, mcp, api; then the frontend as today.
        """
        return tuple(name for wave in reversed(self.waves()) for name in reversed(wave))


def _unshared(what: str, used: dict[str, list[str]], why: str = "") -> None:
    owner: dict[str, str] = {}
    for name, resources in used.items():
        for resource in resources:
            if resource in owner and owner[resource] != name:
                because = f": {why}" if why else ""
                raise ValueError(f"backend.services {owner[resource]} and {name} share the {what} {resource}{because}")
            owner[resource] = name


class PreviewStep(Model):
    """The step as written in `strategy.canary.steps`: `{preview: {...}}`."""

    preview: Preview
