"""The local CloudFront's continuous deployment: the calls moto does not have, behind moto's CloudFront API.

moto (5.2) keeps distributions, but has no CopyDistribution, no ContinuousDeploymentPolicy calls and
no UpdateDistributionWithStagingConfig, so a frontend canary (or a preview through the staging
distribution) cannot run against it. This module adds them to the moto process the local
environment runs (`controller.testing.local_ecs` installs it), following the CloudFront API
reference:

- https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_CopyDistribution.html : a copy of
  the primary's configuration as a new distribution, `Staging` as asked, the caller reference given;
  the copy has no continuous deployment policy of its own;
- https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_CreateContinuousDeploymentPolicy.html ,
  .../API_GetContinuousDeploymentPolicy.html , .../API_UpdateContinuousDeploymentPolicy.html ,
  .../API_ContinuousDeploymentPolicyConfig.html , .../API_TrafficConfig.html : the policy names the
  staging distribution by its domain, is Enabled or not, and routes by `SingleWeight` (Weight, a
  decimal from 0 to 0.15) or `SingleHeader` (Header, which "must contain the prefix aws-cf-cd-",
  and Value); refused with InvalidArgument otherwise, NoSuchContinuousDeploymentPolicy for an
  unknown id;
- https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_UpdateDistributionWithStagingConfig.html :
  "Copies the staging distribution's configuration to its corresponding primary distribution. The
  primary distribution retains its Aliases ... and ContinuousDeploymentPolicyId value, but otherwise
  its configuration is overwritten to match the staging distribution."

What a policy does to traffic is the edge's business (`controller.testing.dataplane.edge`); here it
is stored and answered as AWS answers it. Not played: ETags (moto keeps one per distribution and
ignores IfMatch; a policy's ETag changes on every update but is not checked either), the rule that
a staging distribution serves at most one policy, and deployment times.

Everything here LEAVES MOTO'S PUBLIC API: it adds methods to moto's `CloudFrontResponse` (moto
dispatches a REST call to the method named after the operation) and writes moto's `Distribution`
objects. `tests/aws/test_cloudfront_staging.py` runs every call over HTTP and fails if a moto
upgrade breaks one.
"""

from __future__ import annotations

import copy
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

HEADER_PREFIX = "aws-cf-cd-"  # API_ContinuousDeploymentSingleHeaderConfig: "must contain the prefix aws-cf-cd-"
MAX_WEIGHT = 0.15  # API_ContinuousDeploymentSingleWeightConfig: "a decimal number between 0 and .15"
_POLICIES = "_local_continuous_deployment_policies"  # attribute on moto's CloudFrontBackend (reset drops it)

_installed = False
_lock = threading.RLock()


def _policies(backend: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] | None = getattr(backend, _POLICIES, None)
    if found is None:
        found = {}
        setattr(backend, _POLICIES, found)
    return found


def _check_policy_config(config: dict[str, Any]) -> None:
    from moto.cloudfront.exceptions import CloudFrontException

    def refuse(message: str) -> CloudFrontException:
        return CloudFrontException("InvalidArgument", message)

    names = (config.get("StagingDistributionDnsNames") or {}).get("Items") or []
    if len(names) != 1:
        raise refuse("StagingDistributionDnsNames must name one staging distribution")
    traffic = config.get("TrafficConfig") or {}
    kind = traffic.get("Type")
    if kind == "SingleWeight":
        weight = float((traffic.get("SingleWeightConfig") or {}).get("Weight", -1))
        if not 0 <= weight <= MAX_WEIGHT:
            raise refuse(f"SingleWeightConfig.Weight must be between 0 and {MAX_WEIGHT}")
    elif kind == "SingleHeader":
        header = traffic.get("SingleHeaderConfig") or {}
        if not str(header.get("Header", "")).lower().startswith(HEADER_PREFIX) or not header.get("Value"):
            raise refuse(f"SingleHeaderConfig needs a Header starting with {HEADER_PREFIX} and a Value")
    else:
        raise refuse("TrafficConfig.Type must be SingleWeight or SingleHeader")


def _staging_exists(backend: Any, config: dict[str, Any]) -> None:
    from moto.cloudfront.exceptions import CloudFrontException

    domain = ((config.get("StagingDistributionDnsNames") or {}).get("Items") or [""])[0]
    if not any(d.domain_name == domain and getattr(d.distribution_config, "Staging", False)
               for d in backend.distributions.values()):
        raise CloudFrontException("InvalidArgument", f"{domain} is not the domain of a staging distribution")


def _answer(policy: dict[str, Any]) -> dict[str, Any]:
    return {"ContinuousDeploymentPolicy": {"Id": policy["Id"], "LastModifiedTime": policy["LastModifiedTime"],
                                           "ContinuousDeploymentPolicyConfig": policy["Config"]},
            "ETag": policy["ETag"],
            "Location": f"https://cloudfront.amazonaws.com/2020-05-31/continuous-deployment-policy/{policy['Id']}"}


def install() -> None:
    """Add the continuous deployment calls to moto's CloudFront, once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    from moto.cloudfront.exceptions import CloudFrontException, DistributionAlreadyExists, NoSuchDistribution
    from moto.cloudfront.models import random_id
    from moto.cloudfront.responses import CloudFrontResponse
    from moto.core.responses import ActionResult

    responses: Any = CloudFrontResponse

    def no_policy() -> CloudFrontException:
        return CloudFrontException("NoSuchContinuousDeploymentPolicy",
                                   "The continuous deployment policy does not exist.")

    def copy_distribution(self: Any) -> Any:
        backend = self.backend
        primary_id = self._get_param("PrimaryDistributionId")
        reference = self._get_param("CallerReference")
        with _lock:
            if primary_id not in backend.distributions:
                raise NoSuchDistribution
            for existing in backend.distributions.values():
                if existing.distribution_config.caller_reference == reference:
                    # CreateDistribution's rule for a caller reference already used.
                    raise DistributionAlreadyExists(existing.distribution_id)
            primary = backend.distributions[primary_id]
            dist = copy.deepcopy(primary)
            dist.distribution_id = dist.id = random_id()
            dist.arn = primary.arn.rsplit("/", 1)[0] + "/" + dist.id
            dist.domain_name = f"{random_id(uppercase=False)}.cloudfront.net"
            dist.etag = random_id()
            config = dist.distribution_config
            config.CallerReference = config.caller_reference = reference
            config.Staging = bool(self._get_param("Staging"))
            if self._get_param("Enabled") is not None:
                config.Enabled = bool(self._get_param("Enabled"))
            config.__dict__.pop("ContinuousDeploymentPolicyId", None)
            backend.distributions[dist.id] = dist
        return ActionResult({"Distribution": dist, "ETag": dist.etag, "Location": dist.location})

    def create_continuous_deployment_policy(self: Any) -> Any:
        config = self._get_param("ContinuousDeploymentPolicyConfig") or {}
        with _lock:
            _check_policy_config(config)
            _staging_exists(self.backend, config)
            policy_id = str(uuid.uuid4())
            policy = {"Id": policy_id, "Config": config, "ETag": random_id(),
                      "LastModifiedTime": datetime.now(timezone.utc)}
            _policies(self.backend)[policy_id] = policy
        return ActionResult(_answer(policy))

    def get_continuous_deployment_policy(self: Any) -> Any:
        with _lock:
            policy = _policies(self.backend).get(self._get_param("Id"))
            if policy is None:
                raise no_policy()
            return ActionResult(_answer(policy))

    def get_continuous_deployment_policy_config(self: Any) -> Any:
        with _lock:
            policy = _policies(self.backend).get(self._get_param("Id"))
            if policy is None:
                raise no_policy()
            return ActionResult({"ContinuousDeploymentPolicyConfig": policy["Config"], "ETag": policy["ETag"]})

    def update_continuous_deployment_policy(self: Any) -> Any:
        config = self._get_param("ContinuousDeploymentPolicyConfig") or {}
        with _lock:
            policy = _policies(self.backend).get(self._get_param("Id"))
            if policy is None:
                raise no_policy()
            _check_policy_config(config)
            _staging_exists(self.backend, config)
            policy.update(Config=config, ETag=random_id(), LastModifiedTime=datetime.now(timezone.utc))
            return ActionResult(_answer(policy))

    def list_continuous_deployment_policies(self: Any) -> Any:
        with _lock:
            items = [{"ContinuousDeploymentPolicy": _answer(p)["ContinuousDeploymentPolicy"]}
                     for p in _policies(self.backend).values()]
        return ActionResult({"ContinuousDeploymentPolicyList": {"MaxItems": 100, "Quantity": len(items),
                                                                "Items": items or None}})

    def update_distribution_with_staging_config(self: Any) -> Any:
        backend = self.backend
        primary_id, staging_id = self._get_param("Id"), self._get_param("StagingDistributionId")
        with _lock:
            if primary_id not in backend.distributions or staging_id not in backend.distributions:
                raise NoSuchDistribution
            primary, staging = backend.distributions[primary_id], backend.distributions[staging_id]
            if not getattr(staging.distribution_config, "Staging", False):
                raise CloudFrontException("InvalidArgument", f"{staging_id} is not a staging distribution")
            kept = primary.distribution_config
            config = copy.deepcopy(staging.distribution_config)
            config.CallerReference = config.caller_reference = kept.caller_reference
            config.Staging = False
            config.Aliases = kept.Aliases
            config.__dict__.pop("ContinuousDeploymentPolicyId", None)
            if getattr(kept, "ContinuousDeploymentPolicyId", None):
                config.ContinuousDeploymentPolicyId = kept.ContinuousDeploymentPolicyId
            primary.distribution_config = config
        return ActionResult({"Distribution": primary, "ETag": primary.etag})

    responses.copy_distribution = copy_distribution
    responses.create_continuous_deployment_policy = create_continuous_deployment_policy
    responses.get_continuous_deployment_policy = get_continuous_deployment_policy
    responses.get_continuous_deployment_policy_config = get_continuous_deployment_policy_config
    responses.update_continuous_deployment_policy = update_continuous_deployment_policy
    responses.list_continuous_deployment_policies = list_continuous_deployment_policies
    responses.update_distribution_with_staging_config = update_distribution_with_staging_config
