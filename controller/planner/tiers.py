"""The tiers after the backend: feature flags, then the frontend's origin path. Pure.

Order matters and is fixed here: the backend is promoted first (it must understand any flag and
serve the API the new frontend calls), flags are published next (the new frontend reads them), the
frontend switches last and only when the backend version that actually serves traffic satisfies
its `requiresBackend` range. Each function compares the spec with the observation and returns only
what differs, so it is safe to call on every pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.api.release import ReleaseSpec
from controller.api.types import satisfies
from controller.planner.actions import PublishFlags, SetOriginPath
from controller.planner.strategy import flags_document
from controller.planner.world import Observation


def flags_parameter(namespace: str, name: str) -> str:
    """The SSM parameter holding a Release's flags document.

    >>> flags_parameter("production", "pratiko")
    '/release-controller/production/pratiko/flags'
    """
    return f"/release-controller/{namespace}/{name}/flags"


def origin_path(spec: ReleaseSpec, version: str | None = None) -> str | None:
    if spec.frontend is None:
        return None
    return spec.frontend.cloudfront.origin_path_template.format(version=version or spec.frontend.version)


def publish_flags(spec: ReleaseSpec, obs: Observation, namespace: str, name: str) -> PublishFlags | None:
    """The PublishFlags action when the published document differs from the spec, else None."""
    doc = flags_document(spec)
    published = dict(obs.flags) if obs.flags is not None else None
    if published == doc or (published is None and not doc):
        return None
    cf = spec.frontend.cloudfront if spec.frontend else None
    return PublishFlags(
        parameter_name=flags_parameter(namespace, name),
        flags=doc,
        bucket=cf.bucket if cf else None,
        distribution_id=cf.distribution_id if cf and cf.bucket else None,
    )


@dataclass(frozen=True)
class FrontendStep:
    action: SetOriginPath | None
    done: bool
    compatible: bool | None  # None: no range to check
    message: str
    serving: str | None


def serving_backend(obs: Observation, fallback: str | None) -> str | None:
    """The backend version serving traffic: observed in AWS, the status's stable version if unknown."""
    return obs.backend_version_serving or fallback


def frontend_step(spec: ReleaseSpec, obs: Observation, stable_backend: str | None) -> FrontendStep:
    """Switch the origin path to the spec's frontend version once the compatibility gate passes."""
    if spec.frontend is None:
        return FrontendStep(None, True, None, "", None)
    fe = spec.frontend
    want = origin_path(spec)
    assert want is not None
    serving = serving_backend(obs, stable_backend)
    compatible: bool | None = None
    message = ""
    if fe.requires_backend:
        compatible = serving is not None and satisfies(serving, fe.requires_backend)
        message = (
            f"frontend {fe.version} requires backend {fe.requires_backend}; backend serving is {serving or 'unknown'}"
        )
    if obs.frontend is not None and obs.frontend.origin_path == want:
        return FrontendStep(None, True, compatible, message, serving)
    if compatible is False:
        return FrontendStep(None, False, False, message, serving)
    action = SetOriginPath(
        distribution_id=fe.cloudfront.distribution_id,
        origin_id=fe.cloudfront.origin_id,
        origin_path=want,
        invalidate_paths=tuple(fe.cloudfront.invalidate_paths),
    )
    return FrontendStep(action, False, compatible, message, serving)


def backend_change_refused(spec: ReleaseSpec, obs: Observation, live_frontend: str | None) -> str | None:
    """Why a backend version would break the live frontend, None when it would not.

    Only the spec's range is known, so the check applies when the live frontend is the spec's
    version (the frontend is not changing with this backend).
    """
    fe = spec.frontend
    if fe is None or not fe.requires_backend:
        return None
    live_path = obs.frontend.origin_path if obs.frontend else None
    frontend_unchanged = live_frontend == fe.version or (live_path is not None and live_path == origin_path(spec))
    if not frontend_unchanged or satisfies(spec.backend.version, fe.requires_backend):
        return None
    return (
        f"backend {spec.backend.version} is outside the live frontend {fe.version}'s "
        f"requiresBackend {fe.requires_backend}: refused, nothing changed"
    )
