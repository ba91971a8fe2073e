"""SIGKILL the operator in the middle of a canary, start another: the rollout continues, nothing doubles.

This test runs its own operator, watching only its own namespace (outside the session operator's
`test-*` glob), so killing it disturbs no other test and no second operator acts on the Release.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import AwsWatch, Releases, assert_serving_only, task_definition_images, wait_converged, wait_for

pytestmark = pytest.mark.timeout(300)

STEPS = [{"setWeight": 20}, {"pause": {"duration": "4s"}}, {"setWeight": 50}, {"pause": {"duration": "4s"}}]
CANARY = {"type": "Canary", "canary": {"steps": STEPS}}


def test_a_killed_operator_resumes_the_canary_where_it_was(
    own_namespace: str, releases: Releases, world: WorldIds, aws: AwsClients, env_vars: dict[str, str],
    tmp_path: Path,
) -> None:
    ns = own_namespace
    log = tmp_path / "operator.log"

    def operator() -> OperatorProcess:
        return OperatorProcess(env_vars, namespaces=(ns,), resync=3.0, log_path=log).start()

    green = world.canary_target_group_arn
    proc = operator()
    try:
        releases.apply(release_for(world, name="app", namespace=ns, version="1.0.0", strategy=CANARY,
                                   rollback={"window": "1s"}))
        releases.wait_phase(ns, "app", "Succeeded", 60, generation=1)

        with AwsWatch(env_vars, world) as watch:
            releases.apply(release_for(world, name="app", namespace=ns, version="2.0.0", strategy=CANARY,
                                       rollback={"window": "1s"}))
            kills = []
            for weight in (20, 50):
                # Killed as soon as moto shows the step: mid-pause, its status maybe not written yet.
                wait_for(f"canary weight {weight}", lambda w=weight: watch.latest().weights[green] == w, 90)  # type: ignore[misc]
                proc.kill()
                kills.append(weight)
                proc = operator()
            status = wait_converged(releases, aws, world, ns, "app", "2.0.0", generation=2)
            wait_for("one live task set", lambda: len(watch.latest().task_sets) == 1, 20)
    finally:
        proc.stop()

    assert kills == [20, 50]
    # The canary's traffic only ever went up: no restart went back to the stable version.
    assert watch.weights_of(green) == [0, 20, 50, 100]
    # Never a second canary: at most stable + canary at any moment, one task set per external id.
    assert max(len(s.task_sets) for s in watch.samples) == 2
    ids_by_external: dict[str | None, set[str]] = defaultdict(set)
    for s in watch.samples:
        for t in s.task_sets:
            ids_by_external[t.get("externalId")].add(t["id"])
    assert len(ids_by_external) == 2 and all(len(ids) == 1 for ids in ids_by_external.values()), ids_by_external
    # One new task definition revision for 2.0.0, however many processes worked on it.
    assert task_definition_images(aws, world) == [world.image, world.image.replace("1.0.0", "2.0.0")]
    assert_serving_only(aws, world, "2.0.0")
    assert [h["result"] for h in status["history"]] == ["Succeeded", "Succeeded"]
    assert status["revision"] == 2
