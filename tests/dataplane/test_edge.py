"""The local CloudFront edge serves each viewer from the primary or the staging distribution as the
continuous deployment policy moto holds routes it (controller/testing/dataplane/edge.py).

Each test seeds moto with a distribution whose origin serves frontend 1.0.0 from S3, changes the
policy through the effectors the controller uses (controller/aws/cloudfront.py), and sends real
requests through the edge over time: which frontend answers is what a viewer sees.
"""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest

from controller.aws.apply import apply
from controller.aws.clients import AwsClients
from controller.planner.actions import (
    ClearStagingHeader,
    DisableStaging,
    PromoteStaging,
    SetStagingHeader,
    SetStagingWeight,
)
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.dataplane.edge import EDGE_HEADER, Edge
from controller.testing.moto import MotoServer

pytestmark = pytest.mark.timeout(120)

HEADER = "aws-cf-cd-release-preview"


@pytest.fixture()
def world(moto_server: MotoServer) -> tuple[AwsClients, WorldIds]:
    moto_server.reset()
    clients = AwsClients.for_endpoint(moto_server.endpoint, "eu-west-1")
    ids = seed_world(clients)
    for version in ("1.0.0", "2.0.0"):
        clients.s3.put_object(Bucket=ids.bucket, Key=f"releases/{version}/index.html",
                              Body=f"<html>frontend {version}</html>".encode(), ContentType="text/html")
        clients.s3.put_object(Bucket=ids.bucket, Key=f"releases/{version}/app.js",
                              Body=f"const version = '{version}';".encode(), ContentType="application/javascript")
    return clients, ids


@pytest.fixture()
def edge(world: tuple[AwsClients, WorldIds], moto_server: MotoServer) -> Iterator[Edge]:
    with Edge(moto_server.endpoint, world[1].distribution_id) as running:
        yield running


def get(edge: Edge, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    req = urllib.request.Request(edge.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode(), resp.headers.get(EDGE_HEADER, "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers.get(EDGE_HEADER, "")


def versions(edge: Edge, n: int, headers: dict[str, str] | None = None, path: str = "/") -> Counter[str]:
    """Which frontend `n` consecutive viewer requests got (by the content, as a viewer sees it)."""
    seen: Counter[str] = Counter()
    for _ in range(n):
        status, body, _ = get(edge, path, headers)
        assert status == 200, body
        seen["2.0.0" if "2.0.0" in body else "1.0.0" if "1.0.0" in body else body] += 1
    return seen


def test_without_a_policy_every_viewer_gets_the_primary(edge: Edge) -> None:
    assert versions(edge, 20) == {"1.0.0": 20}
    assert versions(edge, 20, {HEADER: "2.0.0"}) == {"1.0.0": 20}
    assert get(edge, "/app.js")[1] == "const version = '1.0.0';"
    assert get(edge, "/missing.css")[0] == 404


def test_a_single_header_policy_serves_staging_to_that_header_and_value_only(
    edge: Edge, world: tuple[AwsClients, WorldIds]
) -> None:
    clients, ids = world
    apply([SetStagingHeader(ids.distribution_id, "web", "/releases/2.0.0", HEADER, "2.0.0")], clients)
    for _ in range(3):  # over time, interleaved: the routing is per request, not per client
        assert versions(edge, 10, {HEADER: "2.0.0"}) == {"2.0.0": 10}
        assert versions(edge, 10, {"AWS-CF-CD-Release-Preview": "2.0.0"}) == {"2.0.0": 10}  # names without case
        assert versions(edge, 10) == {"1.0.0": 10}
        assert versions(edge, 10, {HEADER: "2.0.1"}) == {"1.0.0": 10}  # the value exactly
        assert versions(edge, 5, {"X-Release-Preview": "2.0.0"}) == {"1.0.0": 5}
    assert get(edge, "/app.js", {HEADER: "2.0.0"})[1:] == ("const version = '2.0.0';", "staging")

    apply([ClearStagingHeader(ids.distribution_id)], clients)
    assert versions(edge, 20, {HEADER: "2.0.0"}) == {"1.0.0": 20}


def test_a_single_weight_policy_sends_its_share_to_staging_whatever_the_headers(
    edge: Edge, world: tuple[AwsClients, WorldIds]
) -> None:
    clients, ids = world
    apply([SetStagingWeight(ids.distribution_id, "web", "/releases/2.0.0", 10)], clients)
    assert versions(edge, 100) == {"1.0.0": 90, "2.0.0": 10}
    apply([SetStagingWeight(ids.distribution_id, "web", "/releases/2.0.0", 15)], clients)
    seen = versions(edge, 100, {HEADER: "2.0.0"})
    assert seen["2.0.0"] in (14, 15, 16) and sum(seen.values()) == 100  # a new share starts a new sequence
    apply([DisableStaging(ids.distribution_id)], clients)
    assert versions(edge, 30) == {"1.0.0": 30}


def test_promotion_serves_every_viewer_the_staged_frontend(edge: Edge, world: tuple[AwsClients, WorldIds]) -> None:
    clients, ids = world
    apply([SetStagingHeader(ids.distribution_id, "web", "/releases/2.0.0", HEADER, "2.0.0")], clients)
    apply([ClearStagingHeader(ids.distribution_id), SetStagingWeight(ids.distribution_id, "web", "/releases/2.0.0", 5)],
          clients)
    apply([PromoteStaging(ids.distribution_id), DisableStaging(ids.distribution_id)], clients)
    assert versions(edge, 30) == {"2.0.0": 30}
    assert versions(edge, 10, {HEADER: "2.0.0"}) == {"2.0.0": 10}
