"""The frontend tier's reads for `Observer`: CloudFront distributions (one listing for many), the
staging copy of a frontend canary, and the flags' SSM parameters. This module must not change AWS."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controller.aws import (
    cloudfront as cf_effects,  # the effector owns the staging lookups
)
from controller.aws.clients import AwsClients
from controller.aws.errors import AwsFailure, is_not_found, observation_error
from controller.aws.shapes import chunks, origin_path_of, parse_flags
from controller.aws.targets import Key, Targets
from controller.planner.world import Frontend, ObservationError, StagingDistribution

PARAMETERS_PER_CALL = 10  # GetParameters' limit


def _reads(clients: AwsClients) -> AwsClients:
    """Clients for the batched reads: lean models when built with them (controller/aws/lean.py)."""
    return clients.reads or clients


def read_frontends(clients: AwsClients, targets: Sequence[Targets]) -> dict[Key, Frontend | ObservationError]:
    wanted = [t for t in targets if t.distribution_id]
    ids = list(dict.fromkeys(t.distribution_id for t in wanted if t.distribution_id))
    # id -> (status, DistributionConfig or a list summary: both carry Origins)
    configs: dict[str, tuple[str, Mapping[str, Any]] | ObservationError] = {}
    from_list = len(ids) > 1
    if from_list:
        # One listing serves many distributions (summaries carry origins and status).
        try:
            remaining = set(ids)
            marker = ""
            while remaining:
                page = _reads(clients).cloudfront.list_distributions(
                    **({"Marker": marker} if marker else {}), MaxItems="100")
                dl = page["DistributionList"]
                for summary in dl.get("Items", []) or []:
                    if summary["Id"] in remaining:
                        configs[summary["Id"]] = (summary.get("Status", ""), summary)
                        remaining.discard(summary["Id"])
                if not dl.get("IsTruncated"):
                    break
                marker = dl.get("NextMarker", "")
            for missing in remaining:
                configs[missing] = ObservationError(
                    "DistributionNotFound", f"CloudFront distribution {missing} does not exist"
                )
        except AwsFailure as exc:
            configs.update({i: observation_error(exc, f"CloudFront distribution {i}") for i in ids})
    else:
        for dist_id in ids:
            configs[dist_id] = _get_distribution(clients, dist_id)
    out: dict[Key, Frontend | ObservationError] = {}
    for t in wanted:
        assert t.distribution_id is not None
        got = configs[t.distribution_id]
        if isinstance(got, ObservationError):
            out[t.key] = got
            continue
        status, config = got
        staging = None
        if t.frontend_canary:
            staging_or_error = _staging(clients, t.distribution_id, config, t.origin_id or "", from_list)
            if isinstance(staging_or_error, ObservationError):
                out[t.key] = staging_or_error
                continue
            staging = staging_or_error
        out[t.key] = Frontend(
            distribution_id=t.distribution_id,
            origin_id=t.origin_id or "",
            origin_path=origin_path_of(config, t.origin_id or ""),
            status=status,
            staging=staging,
        )
    return out

def _get_distribution(clients: AwsClients, dist_id: str) -> tuple[str, Mapping[str, Any]] | ObservationError:
    try:
        dist = clients.cloudfront.get_distribution(Id=dist_id)["Distribution"]
    except AwsFailure as exc:
        if is_not_found(exc, "NoSuchDistribution"):
            return ObservationError("DistributionNotFound", f"CloudFront distribution {dist_id} does not exist")
        return observation_error(exc, f"CloudFront distribution {dist_id}")
    return dist.get("Status", ""), dist["DistributionConfig"]

def _staging(
    clients: AwsClients, dist_id: str, config: Mapping[str, Any], origin_id: str, summary: bool
) -> StagingDistribution | None | ObservationError:
    """CloudFront continuous deployment state, read only for Releases with a frontend canary."""
    if summary:
        got = _get_distribution(clients, dist_id)  # a list summary lacks the policy id
        if isinstance(got, ObservationError):
            return got
        config = got[1]
    policy_id = config.get("ContinuousDeploymentPolicyId") or ""
    if not policy_id:
        return None
    try:
        return cf_effects.read_staging(clients.cloudfront, policy_id, origin_id)
    except AwsFailure as exc:
        return observation_error(exc, f"continuous deployment policy {policy_id} of {dist_id}")

def read_flags(clients: AwsClients, targets: Sequence[Targets]) -> dict[str, Mapping[str, Any] | ObservationError | None]:
    names = list(dict.fromkeys(t.flags_parameter for t in targets if t.flags_parameter))
    out: dict[str, Mapping[str, Any] | ObservationError | None] = {}
    for chunk in chunks(names, PARAMETERS_PER_CALL):
        try:
            resp = _reads(clients).ssm.get_parameters(Names=chunk)
        except AwsFailure as exc:
            out.update({n: observation_error(exc, f"SSM parameter {n}") for n in chunk})
            continue
        for p in resp.get("Parameters", []):
            out[p["Name"]] = parse_flags(p.get("Value"))
        for n in resp.get("InvalidParameters", []):
            out[n] = None
    return out
