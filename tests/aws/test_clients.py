"""The client factory: region and endpoint from the standard environment, retries, call counting."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.utils import parse_timestamp

from controller.aws.clients import AwsClients, MissingRegion, fast_timestamp
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


def test_the_batched_reads_retry_in_standard_mode_and_everything_else_adaptive() -> None:
    """The read twin drops adaptive mode's rate limiter (its CPU per call; benchmarks/README.md),
    keeps the same attempts and the endpoints; clients it shares with the full set stay adaptive."""
    clients = AwsClients.from_env({**FAKE, "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
                                  lean_reads=True)
    assert clients.reads is not None
    for name in ("ecs", "elbv2", "cloudfront", "ssm"):
        read = getattr(clients.reads, name)
        assert read is not getattr(clients, name)
        assert read.meta.config.retries["mode"] == "standard"
        assert read.meta.config.retries["total_max_attempts"] == getattr(clients, name).meta.config.retries["total_max_attempts"]
        assert read.meta.endpoint_url == "http://127.0.0.1:1"
        assert getattr(clients, name).meta.config.retries["mode"] == "adaptive"
    assert clients.reads.events is clients.events  # nothing to trim: shared, adaptive


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


@pytest.mark.parametrize("value", [
    "2026-11-27T03:21:08Z", "2026-11-27T03:21:08.123456Z", "2026-11-27T03:21:08.123+01:00",
    "Fri, 27 Nov 2026 03:21:08 GMT", "2026-11-27T03:21:08", "1764213668", 1764213668.5,
])
def test_the_fast_timestamp_parser_reads_what_botocore_reads(value: str | float) -> None:
    assert fast_timestamp(value) == parse_timestamp(value)
    assert fast_timestamp(value).utcoffset() == parse_timestamp(value).utcoffset()


def test_response_timestamps_are_aware_datetimes(moto_endpoint: MotoServer) -> None:
    clients = AwsClients.for_endpoint(moto_endpoint.endpoint)
    clients.ssm.put_parameter(Name="/timestamps/probe", Value="{}", Type="String")
    [param] = clients.ssm.get_parameters(Names=["/timestamps/probe"])["Parameters"]
    modified = param["LastModifiedDate"]
    assert isinstance(modified, dt.datetime) and modified.utcoffset() is not None
    assert abs((dt.datetime.now(dt.timezone.utc) - modified).total_seconds()) < 300
