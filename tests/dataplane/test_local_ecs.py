"""The local ECS (controller.testing.local_ecs) as an AWS client sees it, with the data plane as its agent:
task states, stopped reasons and exit codes, target health and task-set figures from what really runs.
These also fail if a moto upgrade breaks one of the places local_ecs leaves moto's public API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.testing.dataplane import write_behaviour
from controller.testing.ports import wait_until
from tests.dataplane.conftest import World
from tests.dataplane.test_dataplane import make_plane


def task_set(world: World, version: str) -> dict[str, Any]:
    service = world.clients.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]
    ts: dict[str, Any] = next(t for t in service["taskSets"] if t["taskSetArn"] == world.task_sets[version])
    return ts


def healthy_targets(world: World, target_group: str) -> list[str]:
    got = world.clients.elbv2.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
    return [d["TargetHealth"]["State"] for d in got]


def test_task_sets_report_what_runs_and_its_health(world: World, tmp_path: Path) -> None:
    write_behaviour(tmp_path / "behaviour.json", {"default": {"error_rate": 0.0}, "1.5.0": {"start_seconds": 8.0}})
    with make_plane(world, tmp_path) as plane:
        # While a task is still starting (its target "initial"), the task set is STABILIZING. Not at
        # the very first sight of the target: for the stale moment after the agent's first report,
        # ECS (and so the local ECS) still shows the figures from before, STEADY_STATE included.
        def starting_and_stabilizing() -> bool:
            return ("initial" in healthy_targets(world, world.green)
                    and task_set(world, "1.5.0")["stabilityStatus"] == "STABILIZING")

        # The 8 s start leaves a wide window to see both at once; under load one poll can take a second.
        wait_until(starting_and_stabilizing, 20, "a 1.5.0 target in initial while its task set is STABILIZING")
        assert task_set(world, "1.5.0")["computedDesiredCount"] == 2
        wait_until(lambda: healthy_targets(world, world.green) == ["healthy", "healthy"], 30, "1.5.0 healthy")
        wait_until(lambda: task_set(world, "1.5.0")["stabilityStatus"] == "STEADY_STATE", 5, "1.5.0 steady")
        steady = task_set(world, "1.5.0")
        assert (steady["runningCount"], steady["pendingCount"]) == (2, 0)
        assert steady["stabilityStatusAt"] > steady["updatedAt"]
        assert plane.workloads()

        # A scale change: for a moment the old figures stand, reported before the change.
        world.scale("1.5.0", 50.0)
        moved = task_set(world, "1.5.0")
        assert moved["stabilityStatusAt"] <= moved["updatedAt"]
        wait_until(lambda: task_set(world, "1.5.0")["computedDesiredCount"] == 1, 10, "computed 1 task")


def test_a_crashing_container_is_stopped_with_its_exit_code_and_replaced(world: World, tmp_path: Path) -> None:
    write_behaviour(tmp_path / "behaviour.json", {"default": {"error_rate": 0.0}, "1.5.0": {"crash_on_start": True}})
    ecs = world.clients.ecs
    with make_plane(world, tmp_path):
        def stopped() -> list[dict[str, Any]]:
            arns = ecs.list_tasks(cluster=world.cluster, startedBy=task_set(world, "1.5.0")["id"],
                                  desiredStatus="STOPPED")["taskArns"]
            tasks = ecs.describe_tasks(cluster=world.cluster, tasks=arns)["tasks"] if arns else []
            # Not the stand-in's tasks, stopped when the data plane took over as the agent.
            return [t for t in tasks if t.get("stopCode") != "ServiceSchedulerInitiated"]

        # Replaced with back-off (1 s, 2 s, ...): two starts, each stopping its two tasks.
        wait_until(lambda: len(stopped()) >= 4, 20, "two rounds of stopped tasks")
        task = stopped()[0]
        assert task["lastStatus"] == "STOPPED" and task["stopCode"] == "EssentialContainerExited"
        assert task["stoppedReason"] == "Essential container in task exited"
        assert task["containers"][0]["exitCode"] == 3
        ts = task_set(world, "1.5.0")
        assert ts["runningCount"] == 0 and ts["stabilityStatus"] == "STABILIZING"
        assert "healthy" not in healthy_targets(world, world.green)


def test_an_image_missing_from_ecr_cannot_be_pulled(world: World, tmp_path: Path) -> None:
    write_behaviour(tmp_path / "behaviour.json", {"default": {"error_rate": 0.0}})
    world.add_task_set("1.6.0", world.green, scale=50.0)  # pushes it: the test deletes it from ECR
    ecr = world.clients.session.client("ecr", region_name=world.clients.region, endpoint_url=world.endpoint)
    ecr.batch_delete_image(repositoryName="pratiko-backend", imageIds=[{"imageTag": "1.6.0"}])
    ecs = world.clients.ecs
    with make_plane(world, tmp_path) as plane:
        def stopped() -> list[dict[str, Any]]:
            arns = ecs.list_tasks(cluster=world.cluster, startedBy=task_set(world, "1.6.0")["id"],
                                  desiredStatus="STOPPED")["taskArns"]
            tasks = ecs.describe_tasks(cluster=world.cluster, tasks=arns)["tasks"] if arns else []
            # Not the stand-in's tasks, stopped when the data plane took over as the agent.
            return [t for t in tasks if t.get("stopCode") != "ServiceSchedulerInitiated"]

        wait_until(lambda: bool(stopped()), 15, "a task that could not pull")
        task = stopped()[0]
        assert task["stopCode"] == "TaskFailedToStart"
        assert task["stoppedReason"].startswith("CannotPullContainerError:") and "1.6.0" in task["stoppedReason"]
        assert "1.6.0" not in {w.version for w in plane.workloads() if w.pid is not None}
