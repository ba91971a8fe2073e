"""The claims of a backend tier of several services: every service, listener and target group it
moves (docs/many-services.md, section 4), so a Release that does not hold all of them changes none."""

from __future__ import annotations

from controller.api.release import ReleaseSpec
from controller.kube.claims import resources_of
from tests.planner.sim import BLUE, GREEN, LISTENER, make_spec, tier_arns, tier_spec


def test_a_single_service_release_claims_what_it_always_did() -> None:
    spec: ReleaseSpec = make_spec("1.0.0")
    assert resources_of(spec) == ("ecs-service:prod/backend", f"elbv2-listener:{LISTENER}",
                                  f"elbv2-target-group:{BLUE}", f"elbv2-target-group:{GREEN}")


def test_a_tier_claims_every_service_and_each_ones_listener_and_groups() -> None:
    keys = resources_of(tier_spec("1.0.0"))
    want = []
    for name, traffic in (("api", True), ("mcp", True), ("worker", False)):
        want.append(f"ecs-service:prod/{name}")
        if traffic:
            listener, blue, green = tier_arns(name)
            want += [f"elbv2-listener:{listener}", f"elbv2-target-group:{blue}", f"elbv2-target-group:{green}"]
    assert keys == tuple(want)
