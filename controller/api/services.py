"""`backend.services` as one pydantic model: the shape issue many-services fixes, for the CRD.

**Partly wired.** `ReleaseSpec.backend` is still `release.Backend`; it carries `services` (the
`release.BackendService` model, validated by `release.check_services`, the same rules as here) and the
planner walks them (`planner.group`), but the field is hidden from the CRD until the observer, the
claims, the traffic check and tenancy read every service (docs/many-services.md). `BackendTier` is the
shape `ReleaseSpec.backend` takes then (image and ecs optional when `services` is given), kept here so
its form checks stay tested. The preview step is wired: `Preview` and `PreviewHeader` live in
`release.py` (a kind of `CanaryStep`) and are named here too.

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

from pydantic import Field, field_validator, model_validator

from controller.api.release import (  # noqa: F401  (the preview models live in release.py now; named here too)
    CLOUDFRONT_HEADER_PREFIX,
    DEFAULT_PREVIEW_HEADER,
    HEADER_NAME_PATTERN,
    HEADER_VALUE_PATTERN,
    MAX_HEADER_NAME,
    MAX_HEADER_VALUE,
    MAX_SERVICES,
    SERVICE_NAME_PATTERN,
    SINGLE_SERVICE,
    BackendService,
    EcsTarget,
    Model,
    Preview,
    PreviewHeader,
    Traffic,
    _check_image,
    check_services,
    image_tag_mismatch,
    service_waves,
)
from controller.api.types import Duration, SemVer  # noqa: F401


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
        check_services(self.service_list(), self.version, self.image_tag_is_version)
        return self

    def service_list(self) -> tuple[BackendService, ...]:
        """The services, in the order written; a single-service tier is one service, `SINGLE_SERVICE`."""
        if self.services is not None:
            return tuple(self.services)
        assert self.image is not None and self.ecs is not None
        return (BackendService(name=SINGLE_SERVICE, image=self.image, ecs=self.ecs, traffic=self.traffic),)

    def waves(self) -> tuple[tuple[str, ...], ...]:
        """The services in waves (`release.service_waves`): api; then mcp and worker."""
        return service_waves(self.service_list())

    def rollback_order(self) -> tuple[str, ...]:
        """The order services go back in: the last wave first, each wave's services in reverse.

        Worked example, waves (api), (mcp, worker): worker, mcp, api; then the frontend as today.
        """
        return tuple(name for wave in reversed(self.waves()) for name in reversed(wave))


class PreviewStep(Model):
    """The step as written in `strategy.canary.steps`: `{preview: {...}}`."""

    preview: Preview
