"""Takeover through the front door: whenever a Release takes a service over (an admin's handover, or
its owner deleted), its first change goes through its strategy (canary steps), never as a drift
revert that puts all the traffic on its version at once.

`old` released 1.0.0 (Succeeded), was handed over to `new` (2.0.0), and waits in Conflict with its
Succeeded status at 1.0.0. Handed back, it sees 2.0.0 running: before the fix it took that for drift
and reverted it in one step; now it rolls 1.0.0 out as its canary says, and stops at the first step.
"""

from __future__ import annotations

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Releases, cli, condition, wait_converged, weights_by_colour

pytestmark = pytest.mark.timeout(300)

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}


def test_a_handed_back_service_is_taken_over_through_the_strategy(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
    env_vars: dict[str, str],
) -> None:
    releases.apply(release_for(world, name="old", namespace=namespace, version="1.0.0", strategy=CANARY))
    releases.wait_phase(namespace, "old", "Succeeded", 90, generation=1)
    releases.apply(release_for(world, name="new", namespace=namespace, version="2.0.0",
                               strategy={"type": "Fast"}))
    releases.wait(namespace, "new", lambda s: condition(s, "Ready").get("reason") == "Conflict", 30, "Conflict")
    cli(env_vars, "handover", "old", "-n", namespace, "--to", f"{namespace}/new")
    wait_converged(releases, aws, world, namespace, "new", "2.0.0", generation=1, timeout=120)
    releases.wait(namespace, "old", lambda s: condition(s, "Ready").get("reason") == "Conflict", 30, "Conflict")
    assert releases.status(namespace, "old")["phase"] == "Succeeded"  # what it remembers: 1.0.0 at rest

    cli(env_vars, "handover", "new", "-n", namespace, "--to", f"{namespace}/old")
    # Its first change is the canary's first step: 20% on 1.0.0, then the indefinite pause holds it.
    status = releases.wait(namespace, "old", lambda s: s.get("phase") == "Paused", 90, "Paused at the first step")
    assert status["backend"]["stableVersion"] == "2.0.0", status["backend"]  # adopted what ran
    assert sorted(weights_by_colour(aws, world).values()) == [20, 80], weights_by_colour(aws, world)
    reasons = [e["reason"] for e in releases.events(namespace, "old")]
    assert "DriftDetected" not in reasons, reasons
