"""One owner per ECS service: a second Release that points at a claimed service changes nothing in
AWS and says who owns it, in its own namespace or another; the owner's deletion frees the claim and
the waiting Release takes over on its next pass."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases, condition, drop_namespace
from tests.e2e.helpers import assert_serving_only, cli, snapshot, task_definition_images, wait_converged, wait_passes

pytestmark = pytest.mark.timeout(240)


@pytest.fixture()
def second_namespace(kubectl: Kubectl, crd_installed: None) -> Iterator[str]:
    name = f"test-{os.getpid()}-other-{time.monotonic_ns() % 100_000}"
    kubectl("create", "namespace", name)
    yield name
    drop_namespace(kubectl, name)


def in_conflict(releases: Releases, namespace: str, name: str, owner: str) -> dict[str, object]:
    """Waiting in Conflict; the owner is named only to a Release of its own namespace."""
    status = releases.wait(namespace, name, lambda s: condition(s, "Ready").get("reason") == "Conflict", 30,
                           "Ready=False/Conflict")
    ready = condition(status, "Ready")
    assert ready["status"] == "False"
    said = f"owned by Release {owner}" if owner.startswith(f"{namespace}/") else "owned by a Release in another namespace"
    assert said in ready["message"] and (said != "owned by a Release in another namespace"
                                         or owner not in ready["message"]), ready
    stalled, reconciling = condition(status, "Stalled"), condition(status, "Reconciling")
    assert (stalled["status"], stalled["reason"]) == ("True", "Conflict") and reconciling["status"] == "False"
    assert said in stalled["message"]
    return status


def test_a_second_release_on_a_claimed_service_waits_for_the_owner(
    operator: OperatorProcess, releases: Releases, kubectl: Kubectl, namespace: str, second_namespace: str,
    world: WorldIds, aws: AwsClients,
) -> None:
    releases.apply(release_for(world, name="owner", namespace=namespace, version="1.0.0"))
    releases.wait_phase(namespace, "owner", "Succeeded", 60, generation=1)
    before = snapshot(aws, world, namespace, "owner")

    releases.apply(release_for(world, name="intruder", namespace=namespace, version="2.0.0"))
    releases.apply(release_for(world, name="intruder", namespace=second_namespace, version="3.0.0"))
    in_conflict(releases, namespace, "intruder", f"{namespace}/owner")
    in_conflict(releases, second_namespace, "intruder", f"{namespace}/owner")
    wait_passes(operator, namespace, "intruder", 2, others=[(second_namespace, "intruder")])  # both: nothing moves
    assert snapshot(aws, world, namespace, "owner") == before
    assert task_definition_images(aws, world) == [world.image]
    warnings = [e for e in releases.events(namespace, "intruder") if e["reason"] == "Conflict"]
    assert warnings and warnings[0]["type"] == "Warning" and f"{namespace}/owner" in warnings[0]["message"]
    assert releases.status(namespace, "owner")["phase"] == "Succeeded"

    # The other namespace's claimant gives up; the owner goes: the first claimant takes over.
    kubectl("delete", "release", "intruder", "-n", second_namespace, "--wait=true", "--timeout=30s")
    kubectl("delete", "release", "owner", "-n", namespace, "--wait=true", "--timeout=30s")
    wait_converged(releases, aws, world, namespace, "intruder", "2.0.0", generation=1, timeout=90)
    assert_serving_only(aws, world, "2.0.0")


def test_a_handover_gives_the_service_to_another_release(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
    env_vars: dict[str, str],
) -> None:
    releases.apply(release_for(world, name="old", namespace=namespace, version="1.0.0"))
    releases.wait_phase(namespace, "old", "Succeeded", 60, generation=1)
    releases.apply(release_for(world, name="new", namespace=namespace, version="2.0.0"))
    in_conflict(releases, namespace, "new", f"{namespace}/old")

    out = cli(env_vars, "handover", "old", "-n", namespace, "--to", f"{namespace}/new").stdout
    assert "handed" in out and "ecs-service:" in out, out
    wait_converged(releases, aws, world, namespace, "new", "2.0.0", generation=1, timeout=90)
    in_conflict(releases, namespace, "old", f"{namespace}/new")  # the old owner now changes nothing
    assert_serving_only(aws, world, "2.0.0")
