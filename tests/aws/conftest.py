"""The AWS tier: one moto server over HTTP for the session, reset before each test.

Every test talks to moto through `AwsClients` exactly as the controller talks to AWS (the same
factory, retries and call counting), and seeds its own world with `seed_world`.
"""

from __future__ import annotations


import pytest

from controller.api.release import ReleaseSpec
from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.moto import MotoServer

KEY = ("production", "pratiko")


@pytest.fixture(scope="session")
def moto_endpoint(moto_server: MotoServer) -> MotoServer:
    return moto_server


@pytest.fixture()
def clients(moto_endpoint: MotoServer) -> AwsClients:
    moto_endpoint.reset()
    return AwsClients.for_endpoint(moto_endpoint.endpoint)


@pytest.fixture()
def world(clients: AwsClients) -> WorldIds:
    ids = seed_world(clients)
    clients.calls.reset()  # tests count the controller's calls, not the seeding's
    return ids


def spec_of(world: WorldIds, **kwargs: object) -> ReleaseSpec:
    return ReleaseSpec.model_validate(world.spec(**kwargs))  # type: ignore[arg-type]
