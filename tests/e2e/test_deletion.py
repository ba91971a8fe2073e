"""What deleting a Release means: mid-rollout, traffic goes back to the stable version and the
canary goes before the object does; settled, AWS is left exactly as it is; with the Orphan
annotation, AWS is left as it is even mid-rollout. Never is the serving task set deleted."""

from __future__ import annotations

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases
from tests.e2e.helpers import assert_serving_only, listener_weights, live_task_sets, snapshot, wait_for

pytestmark = pytest.mark.timeout(240)

HELD = {"type": "Canary", "canary": {"steps": [{"setWeight": 30}, {"pause": {}}]}}


def mid_canary(releases: Releases, aws: AwsClients, world: WorldIds, namespace: str) -> None:
    releases.apply(release_for(world, name="app", namespace=namespace, version="1.0.0"))
    releases.wait_phase(namespace, "app", "Succeeded", 60, generation=1)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", strategy=HELD))
    wait_for("canary at 30%", lambda: listener_weights(aws, world).get(world.canary_target_group_arn) == 30, 60)
    releases.wait_phase(namespace, "app", "Paused", 30, generation=2)


def test_deleting_mid_canary_puts_all_traffic_back_on_stable_first(
    operator: OperatorProcess, releases: Releases, kubectl: Kubectl, namespace: str, world: WorldIds,
    aws: AwsClients,
) -> None:
    mid_canary(releases, aws, world, namespace)
    kubectl("delete", "release", "app", "-n", namespace, "--wait=true", "--timeout=60s")
    assert kubectl("get", "release", "app", "-n", namespace, check=False).returncode != 0
    assert_serving_only(aws, world, "1.0.0")
    deleting = [e for e in releases.events(namespace, "app") if e["reason"] == "Deleting"]
    assert deleting and deleting[0]["type"] == "Warning"


def test_deleting_a_settled_release_leaves_aws_as_it_is(
    operator: OperatorProcess, releases: Releases, kubectl: Kubectl, namespace: str, world: WorldIds,
    aws: AwsClients,
) -> None:
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0"))
    releases.wait_phase(namespace, "app", "Succeeded", 90, generation=1)
    before = snapshot(aws, world, namespace, "app")
    kubectl("delete", "release", "app", "-n", namespace, "--wait=true", "--timeout=30s")
    assert snapshot(aws, world, namespace, "app") == before
    assert_serving_only(aws, world, "2.0.0")


def test_an_orphaned_release_leaves_its_canary_where_it_was(
    operator: OperatorProcess, releases: Releases, kubectl: Kubectl, namespace: str, world: WorldIds,
    aws: AwsClients,
) -> None:
    mid_canary(releases, aws, world, namespace)
    kubectl("annotate", "release", "app", "-n", namespace, "delivery.pratiko.ai/on-delete=Orphan")
    kubectl("delete", "release", "app", "-n", namespace, "--wait=true", "--timeout=30s")
    assert listener_weights(aws, world)[world.canary_target_group_arn] == 30
    assert len(live_task_sets(aws, world)) == 2
