"""The first rollout of a Release created on a service that already runs another version: what ran
before is its revision 1, the way back, kept warm for the window like every later rollout's."""

from __future__ import annotations

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Releases, assert_serving_only, condition, live_task_sets, wait_converged, wait_passes

pytestmark = pytest.mark.timeout(180)

BLUE_GREEN = {"type": "BlueGreen", "blueGreen": {"previewDuration": "0s", "scaleDownDelay": "15s"}}


def test_a_first_bluegreen_rollout_keeps_the_old_task_set_warm(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", strategy=BLUE_GREEN))
    status = releases.wait(namespace, "app", lambda s: s.get("phase") == "Succeeded", 90, "Succeeded")
    assert condition(status, "Progressing")["reason"] == "RollbackWindow"
    assert [(h["revision"], h["backendVersion"]) for h in status["history"]] == [(1, "1.0.0"), (2, "2.0.0")]
    warm = [t["taskSetArn"] for t in live_task_sets(aws, world)]
    assert world.initial_task_set_arn in warm and len(warm) == 2
    wait_passes(operator, namespace, "app", 2)  # two passes: the old version is the way back, not drift
    assert world.initial_task_set_arn in [t["taskSetArn"] for t in live_task_sets(aws, world)]
    assert "DriftDetected" not in {e["reason"] for e in releases.events(namespace, "app")}
    wait_converged(releases, aws, world, namespace, "app", "2.0.0", generation=1, timeout=60)
    assert_serving_only(aws, world, "2.0.0")
