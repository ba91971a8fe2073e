"""The resync of settled Releases (`Reconciler.resync`): one batched read, a pass only where needed.

Real parts, no operator process: the reconciler is driven in-process against the local
kube-apiserver and moto, so each test can count the AWS calls of one round exactly. The operator's
resync loop hands its settled Releases to this same method (controller/operator/runtime.py); the
drift tests in test_tiers.py show the whole loop reverting hand-made changes.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client as k8s

from controller import metrics
from controller.api.release import GROUP, PLURAL, VERSION
from controller.operator.app import build_reconciler
from controller.aws.clients import AwsClients
from controller.kube.client import ReleaseApi
from controller.reconciler.driver import Reconciler
from controller.reconciler.ports import Outcome
from controller.testing.aws_world import WorldIds
from controller.testing.releases import release_for
from tests.e2e.helpers import listener_weights, set_weights

READS = {"ecs:DescribeServices", "elasticloadbalancing:DescribeListeners", "cloudfront:GetDistribution",
         "ssm:GetParameters"}


def unchanged_total() -> float:
    return metrics.REGISTRY.get_sample_value("release_controller_reconcile_total", {"result": "unchanged"}) or 0.0


class Driver:
    """Reads the Release from the API server and runs passes the way a worker does."""

    def __init__(self, custom: k8s.CustomObjectsApi, reconciler: Reconciler, namespace: str, name: str) -> None:
        self.custom, self.reconciler, self.namespace, self.name = custom, reconciler, namespace, name

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def obj(self) -> dict[str, Any]:
        got: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name)
        return got

    def settle(self, passes: int = 10) -> Outcome:
        """Fresh passes until one finds nothing to do (what a worker does before it waits for the resync),
        once the world is at rest: the local ECS still reports task starts for a moment after the
        seeding (and shows the old figures for 1 s after a change), and a world that moves rightly
        costs a pass."""
        spec = self.reconciler._mem(self.key).parsed_spec(self.obj())
        assert spec is not None
        deadline = time.monotonic() + 30
        last = None
        while True:
            seen = self.reconciler.observer.observe_many([(self.key, spec)]).get(self.key)
            self.reconciler.observer.forget(self.key)
            if seen is not None and seen == last:
                break
            assert time.monotonic() < deadline, "the world never came to rest"
            last = seen
            time.sleep(1.5)
        for _ in range(passes):
            outcome = self.reconciler.reconcile(self.obj(), fresh=True)
            if outcome.requeue_after is None and not outcome.actions and not outcome.wrote_status:
                return outcome
        raise AssertionError(f"not settled after {passes} passes: {outcome}")


@pytest.fixture()
def driver(own_namespace: str, world: WorldIds, kube_api: Any, local_env: Any) -> tuple[Driver, AwsClients]:
    custom = k8s.CustomObjectsApi(kube_api)
    body = release_for(world, name="app", namespace=own_namespace, version="1.0.0", frontend_version="1.0.0",
                       featureFlags={"new_chat_interface": True})
    custom.create_namespaced_custom_object(GROUP, VERSION, own_namespace, PLURAL, body)
    clients = AwsClients.from_env(local_env.env_vars())  # its own call counter
    reconciler, _ = build_reconciler(clients, ReleaseApi(kube_api), api_client=kube_api)
    return Driver(custom, reconciler, own_namespace, "app"), clients


def test_a_settled_release_costs_one_batched_read_and_no_pass(driver: tuple[Driver, AwsClients]) -> None:
    d, clients = driver
    assert d.settle().phase == "Succeeded"
    obj = d.obj()
    before = unchanged_total()
    clients.calls.reset()

    assert d.reconciler.resync([(d.key, obj)]) == []
    assert clients.calls.snapshot() == {op: 1 for op in READS}  # the world read once, nothing written
    assert unchanged_total() == before + 1
    assert d.obj()["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]  # no status write

    # Round after round, the same.
    for _ in range(3):
        assert d.reconciler.resync([(d.key, d.obj())]) == []
    assert clients.calls.total() == 4 * len(READS)


def test_a_hand_made_change_gets_a_pass_on_the_snapshot_that_saw_it(
    driver: tuple[Driver, AwsClients], world: WorldIds,
) -> None:
    d, clients = driver
    d.settle()
    set_weights(clients, world, 60)

    assert d.reconciler.resync([(d.key, d.obj())]) == [d.key]
    clients.calls.reset()
    outcome = d.reconciler.reconcile(d.obj(), fresh=False)
    calls = clients.calls.snapshot()
    assert outcome.actions >= 1
    assert listener_weights(clients, world) == {world.stable_target_group_arn: 100, world.canary_target_group_arn: 0}
    # The pass decided from the round's snapshot: no second read of the world; only the listener
    # effector's read-modify-write of the one listener it puts back.
    assert calls == {"elasticloadbalancing:DescribeListeners": 1, "elasticloadbalancing:DescribeTargetGroups": 1,
                     "elasticloadbalancing:ModifyListener": 1}, calls

    d.settle()
    assert d.reconciler.resync([(d.key, d.obj())]) == []


def test_a_changed_object_gets_a_pass_even_when_aws_is_unchanged(driver: tuple[Driver, AwsClients]) -> None:
    d, _ = driver
    d.settle()
    d.custom.patch_namespaced_custom_object(GROUP, VERSION, d.namespace, PLURAL, d.name, {"spec": {"paused": True}})
    assert d.reconciler.resync([(d.key, d.obj())]) == [d.key]
    # An invalid spec is never settled by comparison: its own pass reports it.
    broken = {**d.obj(), "spec": {"environment": "nowhere"}}
    broken["metadata"] = {**broken["metadata"], "generation": 99}
    assert d.reconciler.resync([(d.key, broken)]) == [d.key]
