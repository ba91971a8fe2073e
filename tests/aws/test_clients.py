"""The client factory: region and endpoint from the standard environment, retries, call counting."""

from __future__ import annotations

import pytest

from controller.aws.clients import AwsClients, MissingRegion
from controller.testing.moto import MotoServer

FAKE = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def test_aws_region_wins_over_the_default_region() -> None:
    clients = AwsClients.from_env({**FAKE, "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-2"})
    assert clients.region == "eu-west-1"
    assert {c.meta.region_name for c in (clients.ecs, clients.elbv2, clients.ssm, clients.s3)} == {"eu-west-1"}
    assert AwsClients.from_env({**FAKE, "AWS_DEFAULT_REGION": "us-east-2"}).ecs.meta.region_name == "us-east-2"


def test_no_region_is_refused() -> None:
    with pytest.raises(MissingRegion):
        AwsClients.from_env(FAKE)


def test_endpoint_and_retries_come_from_the_factory() -> None:
    clients = AwsClients.from_env(
        {**FAKE, "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
         "AWS_ENDPOINT_URL_SSM": "http://127.0.0.1:2"}
    )
    assert clients.ecs.meta.endpoint_url == "http://127.0.0.1:1"
    assert clients.ssm.meta.endpoint_url == "http://127.0.0.1:2"  # the service-specific one wins
    assert clients.ecs.meta.config.retries["mode"] == "adaptive"
    assert clients.ecs.meta.config.connect_timeout == 5.0


def test_calls_are_counted_once_per_call_by_iam_action(moto_endpoint: MotoServer) -> None:
    clients = AwsClients.for_endpoint(moto_endpoint.endpoint)
    clients.ecs.list_clusters()
    clients.ecs.list_clusters()
    clients.elbv2.describe_load_balancers()
    clients.cloudwatch.list_metrics()
    assert clients.calls.snapshot() == {
        "ecs:ListClusters": 2,
        "elasticloadbalancing:DescribeLoadBalancers": 1,
        "cloudwatch:ListMetrics": 1,
    }
    assert clients.calls.total("ecs:") == 2
