"""CloudFront continuous deployment (the frontend canary and the frontend's preview).

The first tests use botocore's Stubber: moto (5.2) does not implement CopyDistribution,
Create/Get/UpdateContinuousDeploymentPolicy or UpdateDistributionWithStagingConfig. Each such test
states the exact sequence of calls (and their parameters, validated against the real API model)
that the effector makes, and fails on any call it did not expect, so the idempotence claims
(nothing changes when the weight is already set, the policy already disabled, the staging config
already promoted) are checked as "no write call is made". The last ones run over HTTP against the
local moto process, which adds those calls (controller/testing/local_cloudfront.py), read back by
the observer as the planner sees it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from controller.aws.apply import apply
from controller.aws.clients import AwsClients
from controller.aws.errors import AwsEffectError
from controller.aws.observe import Observer
from controller.planner.actions import ClearStagingHeader, DisableStaging, PromoteStaging, SetStagingHeader, SetStagingWeight
from controller.testing.aws_world import WorldIds
from tests.aws.conftest import KEY, spec_of

PRIMARY, STAGING, POLICY = "EPRIMARY", "ESTAGING", "cdp-1"
STAGING_DOMAIN = "dstaging.cloudfront.net"


def config(path: str, policy: str | None = None, staging: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "CallerReference": "ref",
        "Comment": "frontend",
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "web", "DomainName": "b.s3.amazonaws.com", "OriginPath": path,
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "web", "ViewerProtocolPolicy": "allow-all"},
        "Staging": staging,
    }
    if policy:
        out["ContinuousDeploymentPolicyId"] = policy
    return out


def distribution(dist_id: str, domain: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "Id": dist_id, "ARN": f"arn:aws:cloudfront::123456789012:distribution/{dist_id}", "Status": "Deployed",
        "LastModifiedTime": datetime(2025, 1, 1, tzinfo=timezone.utc), "InProgressInvalidationBatches": 0,
        "DomainName": domain, "DistributionConfig": cfg,
    }


def policy(weight: float, enabled: bool = True) -> dict[str, Any]:
    return {
        "StagingDistributionDnsNames": {"Quantity": 1, "Items": [STAGING_DOMAIN]},
        "Enabled": enabled,
        "TrafficConfig": {"Type": "SingleWeight", "SingleWeightConfig": {"Weight": weight}},
    }


def policy_response(cfg: dict[str, Any]) -> dict[str, Any]:
    return {"ContinuousDeploymentPolicy": {"Id": POLICY, "LastModifiedTime": datetime(2025, 1, 1, tzinfo=timezone.utc),
                                           "ContinuousDeploymentPolicyConfig": cfg}, "ETag": "EPOL"}


def listing(*items: tuple[str, str, str]) -> dict[str, Any]:
    summaries = []
    for dist_id, domain, path in items:
        cfg = config(path)
        summaries.append({
            "Id": dist_id, "ARN": f"arn:aws:cloudfront::1:distribution/{dist_id}", "Status": "Deployed",
            "LastModifiedTime": datetime(2025, 1, 1, tzinfo=timezone.utc), "DomainName": domain,
            "Aliases": {"Quantity": 0}, "Origins": cfg["Origins"], "DefaultCacheBehavior": cfg["DefaultCacheBehavior"],
            "CacheBehaviors": {"Quantity": 0}, "CustomErrorResponses": {"Quantity": 0}, "Comment": "",
            "PriceClass": "PriceClass_All", "Enabled": True,
            "ViewerCertificate": {}, "Restrictions": {"GeoRestriction": {"RestrictionType": "none", "Quantity": 0}},
            "WebACLId": "", "HttpVersion": "http2", "IsIPV6Enabled": True, "Staging": dist_id == STAGING,
        })
    return {"DistributionList": {"Marker": "", "MaxItems": 100, "IsTruncated": False, "Quantity": len(summaries),
                                 "Items": summaries}}


@pytest.fixture()
def stub() -> Iterator[tuple[Any, Stubber]]:
    cf = boto3.client("cloudfront", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(cf) as stubber:
        yield cf, stubber
        stubber.assert_no_pending_responses()


def with_cloudfront(cf: Any) -> AwsClients:
    # apply() takes AwsClients; only the stubbed CloudFront client is used by these actions.
    return AwsClients(ecs=None, elbv2=None, cloudfront=cf, s3=None, ssm=None, cloudwatch=None, region="us-east-1")


def test_first_staging_weight_copies_the_distribution_and_attaches_a_policy(stub: tuple[Any, Stubber]) -> None:
    cf, s = stub
    s.add_response("get_distribution_config", {"DistributionConfig": config("/releases/1.0.0"), "ETag": "E1"},
                   {"Id": PRIMARY})
    s.add_response("copy_distribution",
                   {"Distribution": distribution(STAGING, STAGING_DOMAIN, config("/releases/1.0.0", staging=True)),
                    "ETag": "ES1"},
                   {"PrimaryDistributionId": PRIMARY, "Staging": True, "IfMatch": "E1", "CallerReference": ANY})
    s.add_response("get_distribution_config",
                   {"DistributionConfig": config("/releases/1.0.0", staging=True), "ETag": "ES1"}, {"Id": STAGING})
    s.add_response("update_distribution",
                   {"Distribution": distribution(STAGING, STAGING_DOMAIN, config("/releases/2.0.0", staging=True)),
                    "ETag": "ES2"},
                   {"Id": STAGING, "IfMatch": "ES1", "DistributionConfig": config("/releases/2.0.0", staging=True)})
    s.add_response("create_continuous_deployment_policy", policy_response(policy(0.05)),
                   {"ContinuousDeploymentPolicyConfig": policy(0.05)})
    s.add_response("update_distribution",
                   {"Distribution": distribution(PRIMARY, "dprimary.cloudfront.net", config("/releases/1.0.0", POLICY)),
                    "ETag": "E2"},
                   {"Id": PRIMARY, "IfMatch": "E1", "DistributionConfig": config("/releases/1.0.0", POLICY)})

    changes = apply([SetStagingWeight(PRIMARY, "web", "/releases/2.0.0", 5)], with_cloudfront(cf))
    assert len(changes) == 1 and "staging copy ESTAGING" in changes[0] and "at 5%" in changes[0]


def _existing(s: Stubber, weight: float, staged_path: str = "/releases/2.0.0", enabled: bool = True) -> None:
    s.add_response("get_distribution_config",
                   {"DistributionConfig": config("/releases/1.0.0", POLICY), "ETag": "E2"}, {"Id": PRIMARY})
    s.add_response("get_continuous_deployment_policy", policy_response(policy(weight, enabled)), {"Id": POLICY})
    s.add_response("list_distributions",
                   listing((PRIMARY, "dprimary.cloudfront.net", "/releases/1.0.0"), (STAGING, STAGING_DOMAIN, staged_path)),
                   {"MaxItems": "100"})


def test_changing_the_weight_updates_only_the_policy(stub: tuple[Any, Stubber]) -> None:
    cf, s = stub
    _existing(s, 0.05)
    s.add_response("get_distribution_config",
                   {"DistributionConfig": config("/releases/2.0.0", staging=True), "ETag": "ES2"}, {"Id": STAGING})
    s.add_response("update_continuous_deployment_policy", policy_response(policy(0.15)),
                   {"Id": POLICY, "IfMatch": "EPOL", "ContinuousDeploymentPolicyConfig": policy(0.15)})
    assert apply([SetStagingWeight(PRIMARY, "web", "/releases/2.0.0", 15)], with_cloudfront(cf)) == ["staging weight 15%"]


def test_the_same_weight_again_writes_nothing(stub: tuple[Any, Stubber]) -> None:
    cf, s = stub
    _existing(s, 0.15)
    s.add_response("get_distribution_config",
                   {"DistributionConfig": config("/releases/2.0.0", staging=True), "ETag": "ES2"}, {"Id": STAGING})
    assert apply([SetStagingWeight(PRIMARY, "web", "/releases/2.0.0", 15)], with_cloudfront(cf)) == []


def test_a_weight_above_fifteen_percent_is_refused_before_any_call(stub: tuple[Any, Stubber]) -> None:
    cf, _ = stub
    with pytest.raises(AwsEffectError) as err:
        apply([SetStagingWeight(PRIMARY, "web", "/releases/2.0.0", 20)], with_cloudfront(cf))
    assert err.value.reason == "StagingWeightTooHigh"


def test_promotion_copies_the_staging_config_onto_the_primary(stub: tuple[Any, Stubber]) -> None:
    cf, s = stub
    _existing(s, 0.15)
    s.add_response("get_distribution_config",
                   {"DistributionConfig": config("/releases/2.0.0", staging=True), "ETag": "ES2"}, {"Id": STAGING})
    s.add_response("update_distribution_with_staging_config",
                   {"Distribution": distribution(PRIMARY, "dprimary.cloudfront.net", config("/releases/2.0.0", POLICY)),
                    "ETag": "E3"},
                   {"Id": PRIMARY, "StagingDistributionId": STAGING, "IfMatch": "E2, ES2"})
    assert apply([PromoteStaging(PRIMARY)], with_cloudfront(cf)) == [f"promoted staging {STAGING} onto {PRIMARY}"]


def test_promotion_already_done_writes_nothing(stub: tuple[Any, Stubber]) -> None:
    cf, s = stub
    _existing(s, 0.15, staged_path="/releases/1.0.0")
    s.add_response("get_distribution_config",
                   {"DistributionConfig": config("/releases/1.0.0", staging=True), "ETag": "ES2"}, {"Id": STAGING})
    assert apply([PromoteStaging(PRIMARY)], with_cloudfront(cf)) == []


def test_disable_turns_the_policy_off_once(stub: tuple[Any, Stubber]) -> None:
    cf, s = stub
    s.add_response("get_distribution_config",
                   {"DistributionConfig": config("/releases/2.0.0", POLICY), "ETag": "E3"}, {"Id": PRIMARY})
    s.add_response("get_continuous_deployment_policy", policy_response(policy(0.15)), {"Id": POLICY})
    s.add_response("update_continuous_deployment_policy", policy_response(policy(0.15, enabled=False)),
                   {"Id": POLICY, "IfMatch": "EPOL", "ContinuousDeploymentPolicyConfig": policy(0.15, enabled=False)})
    s.add_response("get_distribution_config",
                   {"DistributionConfig": config("/releases/2.0.0", POLICY), "ETag": "E3"}, {"Id": PRIMARY})
    s.add_response("get_continuous_deployment_policy", policy_response(policy(0.15, enabled=False)), {"Id": POLICY})

    action = DisableStaging(PRIMARY)
    assert len(apply([action], with_cloudfront(cf))) == 1
    assert apply([action], with_cloudfront(cf)) == []


def test_observation_reports_the_staging_distribution(
    clients: AwsClients, world: WorldIds, stub: tuple[Any, Stubber]
) -> None:
    """ECS, ALB and SSM from moto; CloudFront stubbed, as moto has no continuous deployment."""
    cf, s = stub
    primary = copy.deepcopy(config("/releases/1.0.0", POLICY))
    s.add_response("get_distribution", {"Distribution": distribution(world.distribution_id, "dprimary.cloudfront.net",
                                                                     primary), "ETag": "E2"},
                   {"Id": world.distribution_id})
    s.add_response("get_continuous_deployment_policy", policy_response(policy(0.05)), {"Id": POLICY})
    s.add_response("list_distributions",
                   listing((world.distribution_id, "dprimary.cloudfront.net", "/releases/1.0.0"),
                           (STAGING, STAGING_DOMAIN, "/releases/2.0.0")),
                   {"MaxItems": "100"})
    spec = spec_of(world, frontend={
        "version": "2.0.0",
        "cloudfront": {"distributionId": world.distribution_id, "originId": "web"},
        "canary": {"steps": [{"setWeight": 5}]},
    })
    obs = Observer(dataclasses.replace(clients, cloudfront=cf)).observe(KEY, spec)
    assert obs.errors == ()
    assert obs.frontend is not None and obs.frontend.origin_path == "/releases/1.0.0"
    staging = obs.frontend.staging
    assert staging is not None
    assert (staging.distribution_id, staging.origin_path, staging.policy_id, staging.policy_enabled,
            staging.weight_percent) == (STAGING, "/releases/2.0.0", POLICY, True, 5)


# ------------------------------------------------- over HTTP, against the local moto process
# moto itself has no continuous deployment; the local environment's moto process adds it
# (controller.testing.local_cloudfront), so these tests also fail if that stand-in breaks.


def _staging_of(clients: AwsClients, world: WorldIds) -> Any:
    return Observer(clients).observe(KEY, spec_of(world, frontend={
        "version": "2.0.0", "cloudfront": {"distributionId": world.distribution_id, "originId": "web"},
        "canary": {"steps": [{"setWeight": 5}]},
    })).frontend


def _writes(clients: AwsClients) -> list[str]:
    return [op for op in clients.calls.snapshot() if not op.split(":")[-1].startswith(("Get", "List", "Describe"))]


def test_a_preview_stages_the_new_frontend_behind_the_header(clients: AwsClients, world: WorldIds) -> None:
    header = SetStagingHeader(world.distribution_id, "web", "/releases/2.0.0", "aws-cf-cd-release-preview", "2.0.0")
    changes = apply([header], clients)
    assert len(changes) == 1 and "staging copy" in changes[0] and "by header aws-cf-cd-release-preview" in changes[0]

    frontend = _staging_of(clients, world)
    assert frontend is not None and frontend.origin_path == world.origin_path  # the primary is untouched
    staging = frontend.staging
    assert staging is not None and staging.distribution_id not in ("", world.distribution_id)
    assert (staging.origin_path, staging.traffic_type, staging.header_name, staging.header_value,
            staging.policy_enabled, staging.weight_percent) == (
        "/releases/2.0.0", "SingleHeader", "aws-cf-cd-release-preview", "2.0.0", True, 0)
    assert staging.routes_header("AWS-CF-CD-Release-Preview", "2.0.0", "/releases/2.0.0")
    assert not staging.routes_header("aws-cf-cd-release-preview", "2.0.1", "/releases/2.0.0")

    clients.calls.reset()
    assert apply([header], clients) == []  # idempotent: read, nothing written
    assert _writes(clients) == []


def test_the_preview_header_changes_in_place_and_clears_back_to_an_idle_weight_policy(
    clients: AwsClients, world: WorldIds
) -> None:
    apply([SetStagingHeader(world.distribution_id, "web", "/releases/2.0.0", "aws-cf-cd-release-preview", "2.0.0")],
          clients)
    first = _staging_of(clients, world).staging
    assert apply([SetStagingHeader(world.distribution_id, "web", "/releases/2.1.0", "aws-cf-cd-release-preview",
                                   "2.1.0")], clients) == [
        "staging origin web -> /releases/2.1.0; staging by header aws-cf-cd-release-preview"]
    second = _staging_of(clients, world).staging
    assert (second.distribution_id, second.policy_id) == (first.distribution_id, first.policy_id)  # no second copy
    assert (second.origin_path, second.header_value) == ("/releases/2.1.0", "2.1.0")

    cleared = apply([ClearStagingHeader(world.distribution_id)], clients)
    assert len(cleared) == 1 and "header routing off" in cleared[0]
    idle = _staging_of(clients, world).staging
    assert (idle.traffic_type, idle.policy_enabled, idle.weight_percent, idle.header_routed) == (
        "SingleWeight", False, 0, False)
    assert apply([ClearStagingHeader(world.distribution_id)], clients) == []

    # The frontend canary starts from there: a weight re-enables the same policy, no new copy.
    assert apply([SetStagingWeight(world.distribution_id, "web", "/releases/2.1.0", 5)], clients) == ["staging weight 5%"]
    weighted = _staging_of(clients, world).staging
    assert (weighted.policy_id, weighted.traffic_type, weighted.policy_enabled, weighted.weight_percent) == (
        first.policy_id, "SingleWeight", True, 5)


def test_clearing_a_weight_policy_or_no_policy_changes_nothing(clients: AwsClients, world: WorldIds) -> None:
    assert apply([ClearStagingHeader(world.distribution_id)], clients) == []
    apply([SetStagingWeight(world.distribution_id, "web", "/releases/2.0.0", 10)], clients)
    assert apply([ClearStagingHeader(world.distribution_id)], clients) == []
    assert _staging_of(clients, world).staging.weight_percent == 10


def test_a_header_cloudfront_cannot_route_by_is_refused_before_any_call(clients: AwsClients, world: WorldIds) -> None:
    with pytest.raises(AwsEffectError) as err:
        apply([SetStagingHeader(world.distribution_id, "web", "/releases/2.0.0", "X-Release-Preview", "2.0.0")], clients)
    assert err.value.reason == "InvalidPreviewHeader"
    assert clients.calls.snapshot() == {}


def test_promotion_after_a_weighted_canary_over_http(clients: AwsClients, world: WorldIds) -> None:
    """The whole frontend canary against the local moto: stage, promote, disable."""
    apply([SetStagingWeight(world.distribution_id, "web", "/releases/2.0.0", 15)], clients)
    assert apply([PromoteStaging(world.distribution_id)], clients)
    assert apply([PromoteStaging(world.distribution_id)], clients) == []
    assert apply([DisableStaging(world.distribution_id)], clients)
    frontend = _staging_of(clients, world)
    assert frontend.origin_path == "/releases/2.0.0"
    assert frontend.staging is not None and not frontend.staging.policy_enabled
