"""preRollout `ecsTask` hooks end to end: the operator, the local ECS, and a data plane as its agent,
which runs the hook's one-off task (RunTask) as a real local process and reports its exit code.

- exit 0: the task runs the new image once, and only then does the canary get weight;
- exit 3: the rollout rolls back with "exit code 3" in the condition, the canary never gets weight;
- the operator SIGKILLed while the task runs: the next operator finds the task by its startedBy and
  waits for it; the task is never started twice.

Weights are polled from the listener in moto every 0.1 s; the task's own command writes the moment
it ran into its working directory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.dataplane import DataPlane, write_behaviour
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Releases, condition, listener_weights, wait_for, wait_passes

pytestmark = pytest.mark.timeout(300)

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 30}, {"pause": {"duration": "1s"}}]}}
NAME = "app"


@dataclass
class Watch:
    """The canary target group's weight over time: (time.time(), weight) samples."""

    aws: AwsClients
    world: WorldIds
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "Watch":
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), listener_weights(self.aws, self.world).get(
                self.world.canary_target_group_arn, 0)))
            time.sleep(0.1)

    def first_weight(self) -> float | None:
        return next((t for t, w in self.samples if w > 0), None)


@pytest.fixture()
def plane(world: WorldIds, env_vars: dict[str, str], tmp_path: Path) -> Iterator[DataPlane]:
    behaviour = tmp_path / "behaviour.json"
    write_behaviour(behaviour, {"default": {"error_rate": 0.0, "latency_ms": 2}})
    dp = DataPlane(env_vars["AWS_ENDPOINT_URL"], env_vars["AWS_REGION"], world.cluster, world.service,
                   world.listener_arn, tmp_path / "dataplane", None, behaviour)
    dp.start()
    try:
        dp.wait_serving({"1.0.0"}, timeout=30)
        yield dp
    finally:
        dp.stop()


def body(world: WorldIds, namespace: str, version: str, command: list[str], **task: Any) -> dict[str, Any]:
    return release_for(world, name=NAME, namespace=namespace, version=version, strategy=CANARY,
                       rollback={"window": "1s"},
                       hooks={"preRollout": [{"name": "migrate", "ecsTask": {"command": command, **task}}]})


def one_off_tasks(aws: AwsClients, world: WorldIds) -> list[dict[str, Any]]:
    """Every task RunTask started in the world's cluster (a service's tasks aside), running or stopped."""
    arns = [a for desired in ("RUNNING", "STOPPED")
            for a in aws.ecs.list_tasks(cluster=world.cluster, desiredStatus=desired)["taskArns"]]
    tasks = aws.ecs.describe_tasks(cluster=world.cluster, tasks=arns)["tasks"] if arns else []
    return [t for t in tasks if not str(t.get("group", "")).startswith("service:")]


def image_of_task(aws: AwsClients, task: dict[str, Any], container: str) -> str:
    td = aws.ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    return str(next(c["image"] for c in td["containerDefinitions"] if c["name"] == container))


def test_a_pre_rollout_task_runs_the_new_image_once_before_the_canary_gets_weight(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
    plane: DataPlane,
) -> None:
    migrate = ["sh", "-c", "sleep 1; date +%s.%N > ran"]
    releases.apply(body(world, namespace, "1.0.0", migrate))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)  # adopted: what runs needs no migration
    assert one_off_tasks(aws, world) == []

    with Watch(aws, world) as watch:
        releases.apply(body(world, namespace, "2.0.0", migrate))
        status = releases.wait(namespace, NAME, lambda s: s.get("phase") == "Succeeded"
                               and s.get("backend", {}).get("stableVersion") == "2.0.0", 120, "2.0.0 promoted")
    [task] = one_off_tasks(aws, world)
    assert image_of_task(aws, task, world.container_name) == world.image.replace("1.0.0", "2.0.0")
    [ran] = plane.one_off_tasks()
    assert ran.exit_code == 0 and ran.directory is not None
    ran_at = float((ran.directory / "ran").read_text())
    first = watch.first_weight()
    assert first is not None and ran_at < first, (ran_at, first)
    assert [h.get("passedAt") is not None for h in status.get("hooks", []) if h["point"] == "preRollout"] == [True]


def test_a_pre_rollout_task_exiting_3_rolls_back_and_the_canary_never_gets_weight(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
    plane: DataPlane,
) -> None:
    migrate = ["sh", "-c", "exit 3"]
    releases.apply(body(world, namespace, "1.0.0", migrate))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    with Watch(aws, world) as watch:
        releases.apply(body(world, namespace, "2.0.0", migrate))
        status = releases.wait(namespace, NAME, lambda s: s.get("phase") == "RolledBack", 90, "rolled back")
        wait_passes(operator, namespace, NAME, 1)  # the watch sees a pass after it, too
    ready = condition(status, "Ready")
    assert "exit code 3" in ready["message"], ready
    assert watch.samples and watch.first_weight() is None, watch.samples[-5:]
    assert listener_weights(aws, world).get(world.stable_target_group_arn) == 100
    [task] = one_off_tasks(aws, world)  # run once; a failed migration is not retried
    assert next(c for c in task["containers"] if c["name"] == world.container_name)["exitCode"] == 3


def test_sigkill_of_the_operator_while_the_task_runs_does_not_start_it_twice(
    own_namespace: str, releases: Releases, world: WorldIds, aws: AwsClients, env_vars: dict[str, str],
    plane: DataPlane, tmp_path: Path,
) -> None:
    ns = own_namespace
    log = tmp_path / "operator.log"
    go = tmp_path / "go"
    migrate = ["sh", "-c", 'while [ ! -e "$GO" ]; do sleep 0.1; done']

    def operator() -> OperatorProcess:
        return OperatorProcess(env_vars, namespaces=(ns,), resync=3.0, log_path=log).start()

    proc = operator()
    try:
        releases.apply(body(world, ns, "1.0.0", migrate, environment={"GO": str(go)}))
        releases.wait_phase(ns, NAME, "Succeeded", 60, generation=1)
        releases.apply(body(world, ns, "2.0.0", migrate, environment={"GO": str(go)}))
        wait_for("the hook's task running", lambda: [t.last_status for t in plane.one_off_tasks()] == ["RUNNING"], 60)
        proc.kill()
        proc = operator()
        # The new operator has passes enough to have started a second task, were it going to.
        wait_passes(proc, ns, NAME, 3)
        assert len(one_off_tasks(aws, world)) == 1 and len(plane.one_off_tasks()) == 1
        assert releases.status(ns, NAME).get("phase") == "Progressing"
        go.touch()
        releases.wait(ns, NAME, lambda s: s.get("phase") == "Succeeded"
                      and s.get("backend", {}).get("stableVersion") == "2.0.0", 120, "2.0.0 promoted")
    finally:
        proc.stop()
    assert len(one_off_tasks(aws, world)) == 1
    [ran] = plane.one_off_tasks()
    assert ran.exit_code == 0
