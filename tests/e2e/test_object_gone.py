"""A worker acts only for the Release that exists: not for one deleted, nor for an old copy of one
re-created under the same name, however late the operator learns of it.

The operator is frozen (SIGSTOP: what a long GC pause, a node hiccup or a debugger does) while a
Release is created, deleted and created again with another version. When it resumes (SIGCONT), kopf
delivers the old events first: a worker starts for the deleted object with its old body. That worker
must stop before its first AWS write, and only the Release that exists rolls out.

Runs its own operator in its own namespace, so freezing it disturbs no other test.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases
from tests.e2e.helpers import AwsWatch, assert_serving_only, task_definition_images, wait_converged, wait_passes

pytestmark = pytest.mark.timeout(240)


def test_a_release_deleted_and_recreated_while_the_operator_is_frozen(
    own_namespace: str, releases: Releases, kubectl: Kubectl, world: WorldIds, aws: AwsClients,
    env_vars: dict[str, str], tmp_path: Path,
) -> None:
    ns = own_namespace
    other = seed_world(aws, name=f"{world.name}b", image="repo/pratiko-backend:1.0.0")
    log = tmp_path / "operator.log"
    proc = OperatorProcess(env_vars, namespaces=(ns,), resync=2.0, log_path=log).start()
    try:
        releases.apply(release_for(world, name="live", namespace=ns, version="1.0.0"))
        releases.wait_phase(ns, "live", "Succeeded", 60, generation=1)
        with AwsWatch(env_vars, world) as live_watch, AwsWatch(env_vars, other) as ghost_watch:
            assert proc.process is not None
            os.killpg(proc.process.pid, signal.SIGSTOP)
            try:
                # Meanwhile a Release asks for 2.0.0 on a service nobody manages yet and is deleted
                # (kopf, frozen, cannot hold it with its finalizer); then a new object of the same
                # name asks for 3.0.0.
                releases.apply(release_for(other, name="ghost", namespace=ns, version="2.0.0"))
                kubectl("delete", "release", "ghost", "-n", ns, "--wait=true", "--timeout=20s")
                releases.apply(release_for(other, name="ghost", namespace=ns, version="3.0.0"))
                # Frozen a while longer with all of that queued (a window, not a wait for anything: no
                # process can act meanwhile, so there is no state to wait on).
                time.sleep(3)
            finally:
                os.killpg(proc.process.pid, signal.SIGCONT)
            status = wait_converged(releases, aws, other, ns, "ghost", "3.0.0", generation=1)
            wait_passes(proc, ns, "ghost", 2)  # two more passes: any worker of the old object would have acted by now
    finally:
        proc.stop()

    # Nothing was ever asked of AWS for the deleted object's 2.0.0: no task definition, no task set.
    assert task_definition_images(aws, other) == [other.image, other.image.replace("1.0.0", "3.0.0")]
    images = {t["taskDefinition"] for s in ghost_watch.samples for t in s.task_sets}
    assert len(images) <= 2, images
    assert_serving_only(aws, other, "3.0.0")
    # The other Release's listener never moved.
    assert live_watch.weights_of(world.stable_target_group_arn) == [100]
    assert_serving_only(aws, world, "1.0.0")
    assert status["history"][-1]["backendVersion"] == "3.0.0"
