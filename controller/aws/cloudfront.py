"""CloudFront effectors: the origin path switch with its invalidation, and continuous deployment.

Origin path: GetDistributionConfig, change the origin's OriginPath, UpdateDistribution with the
ETag as IfMatch (a concurrent change makes the call fail with PreconditionFailed and the next pass
retries from a fresh read), then one CreateInvalidation for the entry documents. Its
CallerReference is derived from the distribution, the origin, the path and the distribution's ETag
after the switch, so a retried invalidation is recognised (AWS answers with the existing one for a
known CallerReference; moto does not, so before re-invalidating an unchanged path we look for it
among the recent invalidations), while switching back to an earlier path later gets a new reference.
Known gap: a pass that dies between UpdateDistribution and CreateInvalidation leaves the path
switched and the edge caches holding the old entry documents until their TTL; the next pass sees
the path already equal, and the planner asks for nothing.

Continuous deployment (frontend canary, at most 15% to staging): CopyDistribution with Staging=True
makes the staging copy, a SingleWeight ContinuousDeploymentPolicy names the staging copy's domain
and the weight, and the primary's config carries the policy id. Promotion is
UpdateDistributionWithStagingConfig (the staging config copied onto the primary); disabling sets
the policy's Enabled to false.

Preview (a backend preview step with `frontend.canary`): the same staging copy serves the new
origin path, and the policy is `SingleHeader` {Header, Value}: only requests carrying exactly that
header reach staging (`set_staging_header`; CloudFront takes header names starting with
`aws-cf-cd-` only). When the preview ends the policy goes back to `SingleWeight` at 0%, disabled
(`clear_staging_header`), which is where a frontend canary starts. moto implements none of the
continuous deployment calls; the local environment's moto process adds them (`controller.testing.local_cloudfront`), and
the tests run against it over HTTP as well as with botocore's Stubber. A pass that dies between CreateContinuousDeploymentPolicy and attaching it to
the primary leaves an unattached policy (no traffic effect); the next pass makes and attaches
another.

This module must not decide what path or weight to set: the planner does.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from controller.aws.errors import AwsEffectError, AwsFailure, effect_error, is_not_found
from controller.aws.shapes import origin_path_of
from controller.api.release import CLOUDFRONT_HEADER_PREFIX
from controller.planner.actions import (
    ClearStagingHeader,
    DisableStaging,
    PromoteStaging,
    SetOriginPath,
    SetStagingHeader,
    SetStagingWeight,
)
from controller.planner.world import StagingDistribution

MAX_STAGING_WEIGHT = 15  # percent: CloudFront's limit for a SingleWeight policy
RECENT_INVALIDATIONS = 3


def caller_reference(*parts: str) -> str:
    return "rc-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def get_config(cf: Any, dist_id: str) -> tuple[dict[str, Any], str]:
    """(DistributionConfig, ETag); DistributionNotFound as AwsEffectError."""
    try:
        resp = cf.get_distribution_config(Id=dist_id)
    except AwsFailure as exc:
        if is_not_found(exc, "NoSuchDistribution"):
            raise AwsEffectError(
                "DistributionNotFound", f"CloudFront distribution {dist_id} does not exist", retryable=False
            ) from exc
        raise effect_error(exc, f"CloudFront distribution {dist_id}") from exc
    return resp["DistributionConfig"], resp["ETag"]


def _origin(config: Mapping[str, Any], dist_id: str, origin_id: str) -> dict[str, Any]:
    for origin in (config.get("Origins") or {}).get("Items", []) or []:
        if origin.get("Id") == origin_id:
            return origin  # type: ignore[no-any-return]
    message = f"distribution {dist_id} has no origin with id {origin_id!r}"
    raise AwsEffectError("OriginNotFound", message, retryable=False)


def invalidation_exists(cf: Any, dist_id: str, reference: str) -> bool:
    """Whether one of the recent invalidations of `dist_id` carries `reference`."""
    page = cf.list_invalidations(DistributionId=dist_id, MaxItems="50").get("InvalidationList", {})
    recent = sorted(page.get("Items", []) or [], key=lambda i: i.get("CreateTime") or 0, reverse=True)
    for summary in recent[:RECENT_INVALIDATIONS]:
        batch = cf.get_invalidation(DistributionId=dist_id, Id=summary["Id"])["Invalidation"]["InvalidationBatch"]
        if batch.get("CallerReference") == reference:
            return True
    return False


def invalidate(cf: Any, dist_id: str, paths: Sequence[str], reference: str, check_first: bool) -> bool:
    """Invalidate `paths` once per `reference`. Returns whether an invalidation was created."""
    if not paths or (check_first and invalidation_exists(cf, dist_id, reference)):
        return False
    cf.create_invalidation(
        DistributionId=dist_id,
        InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": list(paths)}, "CallerReference": reference},
    )
    return True


def set_origin_path(cf: Any, a: SetOriginPath) -> str | None:
    config, etag = get_config(cf, a.distribution_id)
    origin = _origin(config, a.distribution_id, a.origin_id)
    changed = (origin.get("OriginPath") or "") != a.origin_path
    if changed:
        origin["OriginPath"] = a.origin_path
        etag = cf.update_distribution(Id=a.distribution_id, IfMatch=etag, DistributionConfig=config)["ETag"]
    reference = caller_reference(a.distribution_id, a.origin_id, a.origin_path, etag)
    invalidated = invalidate(cf, a.distribution_id, a.invalidate_paths, reference, check_first=not changed)
    if not changed and not invalidated:
        return None
    what = f"origin {a.origin_id} of {a.distribution_id} -> {a.origin_path}" if changed else f"{a.distribution_id}"
    return what + (f", invalidated {', '.join(a.invalidate_paths)}" if invalidated else "")


# ---------------------------------------------------------------------------- continuous deployment


def find_by_domain(cf: Any, domain: str) -> Mapping[str, Any] | None:
    """The distribution summary whose domain name is `domain` (a policy names staging by domain)."""
    marker = ""
    while True:
        page = cf.list_distributions(**({"Marker": marker} if marker else {}), MaxItems="100")["DistributionList"]
        for summary in page.get("Items", []) or []:
            if summary.get("DomainName") == domain:
                return summary  # type: ignore[no-any-return]
        if not page.get("IsTruncated"):
            return None
        marker = page.get("NextMarker", "")


def _policy(cf: Any, policy_id: str) -> tuple[dict[str, Any], str]:
    resp = cf.get_continuous_deployment_policy(Id=policy_id)
    return resp["ContinuousDeploymentPolicy"]["ContinuousDeploymentPolicyConfig"], resp["ETag"]


def _policy_weight(config: Mapping[str, Any]) -> int:
    traffic = config.get("TrafficConfig") or {}
    if traffic.get("Type") != "SingleWeight":
        return 0
    return round(float((traffic.get("SingleWeightConfig") or {}).get("Weight", 0.0)) * 100)


def _policy_header(config: Mapping[str, Any]) -> tuple[str, str] | None:
    traffic = config.get("TrafficConfig") or {}
    if traffic.get("Type") != "SingleHeader":
        return None
    header = traffic.get("SingleHeaderConfig") or {}
    return str(header.get("Header", "")), str(header.get("Value", ""))


def _staging_domain(config: Mapping[str, Any]) -> str | None:
    items = (config.get("StagingDistributionDnsNames") or {}).get("Items") or []
    return str(items[0]) if items else None


def read_staging(cf: Any, policy_id: str, origin_id: str) -> StagingDistribution | None:
    """What the observer reports of a primary's continuous deployment policy and staging copy."""
    config, _ = _policy(cf, policy_id)
    domain = _staging_domain(config)
    summary = find_by_domain(cf, domain) if domain else None
    header = _policy_header(config)
    return StagingDistribution(
        distribution_id=str(summary["Id"]) if summary else "",
        origin_path=origin_path_of(summary, origin_id) if summary else None,
        policy_id=policy_id,
        policy_enabled=bool(config.get("Enabled")),
        weight_percent=_policy_weight(config),
        traffic_type=str((config.get("TrafficConfig") or {}).get("Type") or ""),
        header_name=header[0] if header else None,
        header_value=header[1] if header else None,
    )


def _weight_traffic(weight_percent: int, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    single: dict[str, Any] = {"Weight": round(weight_percent / 100, 4)}
    old_single = ((previous or {}).get("TrafficConfig") or {}).get("SingleWeightConfig") or {}
    if "SessionStickinessConfig" in old_single:
        single["SessionStickinessConfig"] = old_single["SessionStickinessConfig"]
    return {"Type": "SingleWeight", "SingleWeightConfig": single}


def _header_traffic(name: str, value: str) -> dict[str, Any]:
    return {"Type": "SingleHeader", "SingleHeaderConfig": {"Header": name, "Value": value}}


def _policy_config(domain: str, traffic: Mapping[str, Any], enabled: bool = True) -> dict[str, Any]:
    return {
        "StagingDistributionDnsNames": {"Quantity": 1, "Items": [domain]},
        "Enabled": enabled,
        "TrafficConfig": dict(traffic),
    }


def set_staging_weight(cf: Any, a: SetStagingWeight) -> str | None:
    if not 0 <= a.weight_percent <= MAX_STAGING_WEIGHT:
        raise AwsEffectError(
            "StagingWeightTooHigh", f"CloudFront staging takes at most {MAX_STAGING_WEIGHT}%, not {a.weight_percent}%",
            retryable=False,
        )
    return _stage(cf, a.distribution_id, a.origin_id, a.origin_path,
                  lambda previous: _weight_traffic(a.weight_percent, previous), f"staging weight {a.weight_percent}%",
                  f"at {a.weight_percent}%")


def set_staging_header(cf: Any, a: SetStagingHeader) -> str | None:
    """Staging serves `origin_path` to requests carrying exactly `header_name: header_value` and to no
    others (a SingleHeader policy, enabled). Idempotent: nothing is written when it already does."""
    if not a.header_name.lower().startswith(CLOUDFRONT_HEADER_PREFIX) or not a.header_value:
        raise AwsEffectError(
            "InvalidPreviewHeader",
            f"CloudFront routes to staging only by a header whose name starts with {CLOUDFRONT_HEADER_PREFIX} "
            f"and that has a value, not {a.header_name!r}", retryable=False)
    return _stage(cf, a.distribution_id, a.origin_id, a.origin_path,
                  lambda _: _header_traffic(a.header_name, a.header_value),
                  f"staging by header {a.header_name}", f"by header {a.header_name}")


def clear_staging_header(cf: Any, a: ClearStagingHeader) -> str | None:
    """A SingleHeader policy of the primary back to SingleWeight at 0%, disabled; nothing otherwise."""
    staged = _staged(cf, a.distribution_id)
    if staged is None:
        return None
    _, _, policy_id, policy, policy_etag = staged
    domain = _staging_domain(policy)
    if _policy_header(policy) is None or domain is None:
        return None
    cf.update_continuous_deployment_policy(
        Id=policy_id, IfMatch=policy_etag,
        ContinuousDeploymentPolicyConfig=_policy_config(domain, _weight_traffic(0, None), enabled=False))
    return f"continuous deployment policy {policy_id} of {a.distribution_id}: header routing off (0%, disabled)"


def _stage(
    cf: Any, dist_id: str, origin_id: str, origin_path: str,
    traffic_of: Callable[[Mapping[str, Any] | None], dict[str, Any]], updated: str, created: str,
) -> str | None:
    """The staging copy of `dist_id` serving `origin_path`, its policy enabled with the traffic config
    `traffic_of(previous policy)`: copy, update the staging origin, create and attach or update the
    policy, each only when it differs."""
    done: list[str] = []
    primary, primary_etag = get_config(cf, dist_id)
    _origin(primary, dist_id, origin_id)
    policy_id = primary.get("ContinuousDeploymentPolicyId") or ""
    policy: dict[str, Any] | None = None
    policy_etag = ""
    staging_id = domain = None
    if policy_id:
        policy, policy_etag = _policy(cf, policy_id)
        domain = _staging_domain(policy)
        summary = find_by_domain(cf, domain) if domain else None
        staging_id = str(summary["Id"]) if summary else None
    if staging_id is None:
        # The same CallerReference for the same primary version: a retried copy is the same copy.
        copied = cf.copy_distribution(
            PrimaryDistributionId=dist_id, Staging=True, IfMatch=primary_etag,
            CallerReference=caller_reference("staging", dist_id, primary_etag),
        )
        staging_id, domain = copied["Distribution"]["Id"], copied["Distribution"]["DomainName"]
        done.append(f"staging copy {staging_id} of {dist_id}")
    assert domain is not None
    staging, staging_etag = get_config(cf, staging_id)
    origin = _origin(staging, staging_id, origin_id)
    if (origin.get("OriginPath") or "") != origin_path:
        origin["OriginPath"] = origin_path
        cf.update_distribution(Id=staging_id, IfMatch=staging_etag, DistributionConfig=staging)
        done.append(f"staging origin {origin_id} -> {origin_path}")
    wanted = _policy_config(domain, traffic_of(policy))
    if policy is None:
        policy_id = cf.create_continuous_deployment_policy(ContinuousDeploymentPolicyConfig=wanted)[
            "ContinuousDeploymentPolicy"
        ]["Id"]
        attached = copy.deepcopy(primary)
        attached["ContinuousDeploymentPolicyId"] = policy_id
        cf.update_distribution(Id=dist_id, IfMatch=primary_etag, DistributionConfig=attached)
        done.append(f"continuous deployment policy {policy_id} {created}")
    elif (
        _staging_domain(policy) != domain
        or not policy.get("Enabled")
        or _traffic_differs(policy.get("TrafficConfig") or {}, wanted["TrafficConfig"])
    ):
        cf.update_continuous_deployment_policy(
            Id=policy_id, IfMatch=policy_etag, ContinuousDeploymentPolicyConfig=wanted
        )
        done.append(updated)
    return "; ".join(done) or None


def _traffic_differs(have: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    if have.get("Type") != want.get("Type"):
        return True
    if want.get("Type") == "SingleWeight":
        return _policy_weight({"TrafficConfig": have}) != _policy_weight({"TrafficConfig": want})
    return _policy_header({"TrafficConfig": have}) != _policy_header({"TrafficConfig": want})


def _staged(cf: Any, dist_id: str) -> tuple[dict[str, Any], str, str, dict[str, Any], str] | None:
    """(primary config, primary ETag, policy id, policy config, policy ETag), None when nothing is staged."""
    primary, etag = get_config(cf, dist_id)
    policy_id = primary.get("ContinuousDeploymentPolicyId") or ""
    if not policy_id:
        return None
    policy, policy_etag = _policy(cf, policy_id)
    return primary, etag, policy_id, policy, policy_etag


def promote_staging(cf: Any, a: PromoteStaging) -> str | None:
    staged = _staged(cf, a.distribution_id)
    if staged is None:
        return None
    primary, etag, _, policy, _ = staged
    domain = _staging_domain(policy)
    summary = find_by_domain(cf, domain) if domain else None
    if summary is None:
        raise AwsEffectError(
            "DistributionNotFound", f"the staging distribution of {a.distribution_id} ({domain}) does not exist",
            retryable=False,
        )
    staging, staging_etag = get_config(cf, str(summary["Id"]))
    if _origins(staging) == _origins(primary):
        return None  # promoted already: the primary serves what staging serves
    cf.update_distribution_with_staging_config(
        Id=a.distribution_id, StagingDistributionId=summary["Id"], IfMatch=f"{etag}, {staging_etag}"
    )
    return f"promoted staging {summary['Id']} onto {a.distribution_id}"


def disable_staging(cf: Any, a: DisableStaging) -> str | None:
    staged = _staged(cf, a.distribution_id)
    if staged is None:
        return None
    _, _, policy_id, policy, policy_etag = staged
    if not policy.get("Enabled"):
        return None
    disabled = copy.deepcopy(policy)
    disabled["Enabled"] = False
    cf.update_continuous_deployment_policy(Id=policy_id, IfMatch=policy_etag, ContinuousDeploymentPolicyConfig=disabled)
    return f"disabled continuous deployment policy {policy_id} of {a.distribution_id}"


def _origins(config: Mapping[str, Any]) -> dict[str, str]:
    return {o["Id"]: o.get("OriginPath") or "" for o in (config.get("Origins") or {}).get("Items", []) or []}
