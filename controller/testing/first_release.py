"""`release-controller dev world NAME`: an AWS world in the local moto, and a Release for it.

The README's "First Release" walk-through needs something for a Release to point at: this seeds
one ECS service running NAME's backend 1.0.0 behind an ALB with two target groups, and a CloudFront
distribution serving frontend 1.0.0 (controller/testing/aws_world.py), then prints a Canary Release
of exactly that, with an indefinite pause so that `promote` has something to do, after the
ReleasePolicy that lets the Release's namespace move exactly that world (`run --tenancy strict`, the
default, refuses a Release no policy allows). Dev tooling: the controller never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from controller.aws.clients import AwsClients
from controller.testing.aws_world import seed_world
from controller.testing.releases import release_for
from controller.testing.tenancy import policy_for

FIRST_STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "5s"}}]


def seed_and_manifest(name: str, namespace: str, version: str = "1.0.0",
                      env: Mapping[str, str] | None = None) -> str:
    """Seed the world `name` (running `version`) in the moto of `env`; its ReleasePolicy and the Release
    as YAML (two documents)."""
    aws = AwsClients.from_env(env)
    world = seed_world(aws, name=name, image=f"repo/{name}-backend:{version}", frontend_version=version)
    body = release_for(world, name=name, namespace=namespace, version=version, frontend_version=version,
                       strategy={"type": "Canary", "canary": {"steps": FIRST_STEPS}}, rollback={"window": "5s"})
    body["spec"]["frontend"]["requiresBackend"] = f">={version.split('.')[0]}"
    policy = policy_for(world, f"{namespace}-{name}", [namespace])
    return str(yaml.safe_dump_all([policy, body], sort_keys=False))
