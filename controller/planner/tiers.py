"""The tiers after the backend: feature flags, then the frontend's origin path. Pure.

Order matters and is fixed here: the backend is promoted first (it must understand any flag and
serve the API the new frontend calls), flags are published next (the new frontend reads them), the
frontend switches last and only when the backend version that actually serves traffic satisfies
its `requiresBackend` range. Each function compares the spec with the observation and returns only
what differs, so it is safe to call on every pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from controller.api.reasons import Reason
from controller.api.release import FrontendCanary, Phase, ReleaseSpec, ReleaseStatus  # noqa: F401 - the doctests use it
from controller.api.types import satisfies
from controller.planner.actions import PublishFlags, SetOriginPath
from controller.planner.steps import PauseStep, SetStep, Step, pause_label
from controller.planner.strategy import flags_document, target_hash
from controller.planner.world import Observation, image_version


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


def switch_origin(spec: ReleaseSpec, version: str | None = None) -> SetOriginPath:
    """The distribution's origin to `version`'s path (the spec's frontend by default), entry documents invalidated."""
    path = origin_path(spec, version)
    assert spec.frontend is not None and path is not None
    cf = spec.frontend.cloudfront
    return SetOriginPath(cf.distribution_id, cf.origin_id, path, tuple(cf.invalidate_paths))


def publish_flags(spec: ReleaseSpec, obs: Observation, namespace: str, name: str) -> PublishFlags | None:
    """The PublishFlags action when the published document differs from the spec, else None."""
    return publish_document(spec, obs, namespace, name, flags_document(spec))


def publish_document(
    spec: ReleaseSpec, obs: Observation, namespace: str, name: str, doc: Mapping[str, Any]
) -> PublishFlags | None:
    """PublishFlags for `doc` (the spec's flags, or the ones a rollback flips back to), None when live."""
    published = dict(obs.flags) if obs.flags is not None else None
    if published == dict(doc) or (published is None and not doc):
        return None
    cf = spec.frontend.cloudfront if spec.frontend else None
    return PublishFlags(
        parameter_name=flags_parameter(namespace, name),
        flags=dict(doc),
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
    """The backend version serving traffic: observed in AWS, the status's stable version if unknown.

    A native deployment's PRIMARY is its target revision from the start, at 0% of production: here
    the version is the source revision's until ECS reports the deployment SUCCESSFUL with all
    production traffic on the target (`NativeDeployment.settled_image`), so a `requiresBackend`
    of the new version is not met while ECS still sends production to the old one.
    """
    native = obs.service.native if obs.service is not None else None
    if native is not None:
        return image_version(native.settled_image()) or fallback
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
    return FrontendStep(switch_origin(spec), False, compatible, message, serving)


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


# --------------------------------------------------------------------------- the API-contract gate


def has_contract(spec: ReleaseSpec) -> bool:
    """Whether the frontend declares API operations (inline or in a ConfigMap) to check."""
    fe = spec.frontend
    return fe is not None and fe.api_contract is not None and bool(
        fe.api_contract.operations or fe.api_contract.config_map
    )


def contract_target(spec: ReleaseSpec, status: ReleaseStatus, obs: Observation) -> str | None:
    """The backend version whose OpenAPI document the reconciler checks this pass; None: no check.

    Due only when the frontend is about to move: a contract is declared, the live origin path is
    not the spec's, no backend canary is in flight (the backend moves first, and the gate is about
    the backend that will serve the new frontend), and a rollout is under way or starting. A
    Succeeded Release whose origin path differs is drift, reverted without a gate.

    >>> from controller.api.release import ReleaseStatus
    >>> contract_target(_doc_spec(), ReleaseStatus(phase="Progressing"), Observation(backend_version_serving="1.5.0"))
    '1.5.0'
    """
    if not has_contract(spec) or status.backend.canary_image is not None:
        return None
    want = origin_path(spec)
    if obs.frontend is not None and obs.frontend.origin_path == want and status.frontend.current_step is None:
        return None
    starting = status.target_hash != target_hash(spec)
    if starting and status.backend.stable_image is not None and status.backend.stable_image != spec.backend.image:
        return None  # the backend changes first; its version is checked once it serves
    if not starting and status.phase not in (Phase.PROGRESSING, Phase.PAUSED):
        return None
    return serving_backend(obs, status.backend.stable_version or spec.backend.version)


def _doc_spec() -> ReleaseSpec:
    return ReleaseSpec.model_validate({
        "environment": "staging",
        "backend": {"version": "1.5.0", "image": "b:1.5.0", "ecs": {"cluster": "c", "service": "s", "containerName": "api"}},
        "frontend": {"version": "2.0.0", "cloudfront": {"distributionId": "E1", "originId": "web"},
                     "apiContract": {"operations": [{"method": "GET", "path": "/api/v1/chat"}]}},
    })


# --------------------------------------------------------------------------- frontend canary


def frontend_canary_plan(spec: ReleaseSpec) -> tuple[Step, ...]:
    """`frontend.canary.steps` as planner steps; empty: the frontend switches atomically.

    Weights are CloudFront staging weights (at most 15%, checked by the CRD); a pause with a
    duration is analysed when the Release has metrics, as for the backend.

    >>> spec = _doc_spec().model_copy(update={"frontend": _doc_spec().frontend.model_copy(update={
    ...     "canary": FrontendCanary.model_validate({"steps": [{"setWeight": 5}, {"pause": {"duration": "1m"}}]})})})
    >>> [s.label for s in frontend_canary_plan(spec)]
    ['frontend SetWeight 5', 'frontend Pause 1m']
    """
    fe = spec.frontend
    if fe is None or fe.canary is None or not fe.canary.steps:
        return ()
    analysed = bool(spec.analysis.metrics)
    out: list[Step] = []
    for s in fe.canary.steps:
        if s.set_weight is not None:
            out.append(SetStep(0.0, None, s.set_weight, f"frontend SetWeight {s.set_weight}", kind=Reason.FRONTEND_SET_WEIGHT))
        else:
            duration = s.pause.duration if s.pause is not None else None
            out.append(PauseStep(duration, analysed and duration is not None, f"frontend {pause_label(duration)}",
                                 kind=Reason.FRONTEND_PAUSE))
    return tuple(out)


def staged_at(obs: Observation, path: str, weight: int) -> bool:
    """Whether CloudFront shows the staging copy at `path` taking `weight` percent."""
    staging = obs.frontend.staging if obs.frontend is not None else None
    return (
        staging is not None
        and staging.policy_enabled
        and staging.origin_path == path
        and staging.weight_percent == weight
    )


def staging_weight(obs: Observation, path: str | None) -> int:
    """The percent of viewers the staging copy at `path` serves now (0 when none or disabled)."""
    staging = obs.frontend.staging if obs.frontend is not None else None
    if staging is None or not staging.policy_enabled or (path is not None and staging.origin_path != path):
        return 0
    return staging.weight_percent
