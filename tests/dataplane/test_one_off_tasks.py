"""The ecsTask hook runner (controller/aws/tasks.py) against the local ECS with the data plane as its
agent: RunTask's task really runs the command as a local process, and its exit code comes back.

No operator: the runner is called as the reconciler calls it. The world is tests/dataplane's seeded
EXTERNAL service (1.4.0 primary in blue, 1.5.0 in green); the hook's task runs the rollout's new
image, 1.6.0, which these tests push to the emulator's ECR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.api.release import Hook, ReleaseSpec, ReleaseStatus
from controller.aws.tasks import EcsTaskHooks, task_identity
from controller.planner.decision import HookResult
from controller.testing.aws_world import push_image
from controller.testing.dataplane import DataPlane
from controller.testing.ports import wait_until
from controller.testing.specs import release_spec
from tests.dataplane.conftest import REGION, World, pid_alive
from tests.dataplane.test_dataplane import make_plane

UID = "6a1f9f0e-2b7c-4d0a-9c3e-0f1e2d3c4b5a"
NEW_IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/pratiko-backend:1.6.0"
POINT = "preRollout"


def spec_for(world: World, image: str = NEW_IMAGE) -> ReleaseSpec:
    return ReleaseSpec.model_validate(release_spec(version=image.rsplit(":", 1)[1], image=image, cluster=world.cluster,
                                                   service=world.service, container_name=world.ids.container_name))


def status(revision: int = 3) -> ReleaseStatus:
    return ReleaseStatus.model_validate({"phase": "Progressing", "revision": revision})


def hook(command: list[str], **more: Any) -> Hook:
    return Hook.model_validate({"name": "migrate", "ecsTask": {"command": command, **more}})


def call(world: World, runner: EcsTaskHooks, h: Hook, revision: int = 3, image: str = NEW_IMAGE) -> HookResult:
    return runner("production", "pratiko", UID, spec_for(world, image), status(revision), POINT, h)


def tasks_started(world: World, revision: int = 3) -> list[dict[str, Any]]:
    """Every task ECS holds for the hook's identity, running or stopped."""
    ecs = world.clients.ecs
    started_by = task_identity(UID, revision, POINT, "migrate")
    arns = [a for desired in ("RUNNING", "STOPPED")
            for a in ecs.list_tasks(cluster=world.cluster, startedBy=started_by, desiredStatus=desired)["taskArns"]]
    return ecs.describe_tasks(cluster=world.cluster, tasks=arns, include=["TAGS"])["tasks"] if arns else []


def until_final(world: World, runner: EcsTaskHooks, h: Hook, revision: int = 3, image: str = NEW_IMAGE,
                timeout: float = 20.0) -> HookResult:
    results: list[HookResult] = []

    def done() -> bool:
        results.append(call(world, runner, h, revision, image))
        return results[-1].passed or results[-1].final

    wait_until(done, timeout, f"the hook's task to stop (last: {results[-1:]})")
    return results[-1]


def test_exit_0_passes_running_the_new_image_in_the_services_network(world: World, tmp_path: Path) -> None:
    push_image(world.clients, NEW_IMAGE)
    runner = EcsTaskHooks(world.clients.ecs)
    with make_plane(world, tmp_path) as plane:
        first = call(world, runner, hook(["sh", "-c", 'test "$MIGRATION" = yes && echo migrated > done'],
                                         environment={"MIGRATION": "yes"}))
        assert not first.passed and not first.final and "started" in first.message
        result = until_final(world, runner, hook(["sh", "-c", "unused: the first task is read"]))
        assert result.passed and not result.final, result
        assert (result.point, result.name, result.revision) == (POINT, "migrate", 3)
        [ran] = plane.one_off_tasks()
        assert ran.exit_code == 0 and ran.directory is not None
        assert (ran.directory / "done").read_text() == "migrated\n"  # the command really ran, with its environment

    [task] = tasks_started(world)
    assert task["lastStatus"] == "STOPPED" and task["stoppedReason"] == "Essential container in task exited"
    td = world.clients.ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    images = {c["name"]: c["image"] for c in td["containerDefinitions"]}
    assert images[world.ids.container_name] == NEW_IMAGE
    assert td["family"] == world.ids.task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
    subnet = next(d["value"] for a in task["attachments"] for d in a["details"] if d["name"] == "subnetId")
    assert subnet in world.ids.network.subnet_ids
    tags = {t["key"]: t["value"] for t in task.get("tags", [])}
    assert tags["release-controller/release-uid"] == UID and tags["release-controller/hook"] == "preRollout/migrate"


def test_a_non_zero_exit_code_fails_for_good_with_the_code_and_reason(world: World, tmp_path: Path) -> None:
    push_image(world.clients, NEW_IMAGE)
    # A sidecar first in the task definition (1.5.0's): the command runs in, and the code is read
    # from, the backend container.
    world.clients.ecs.update_service_primary_task_set(cluster=world.cluster, service=world.service,
                                                      primaryTaskSet=world.task_sets["1.5.0"])
    runner = EcsTaskHooks(world.clients.ecs)
    with make_plane(world, tmp_path):
        result = until_final(world, runner, hook(["sh", "-c", "exit 3"]))
    assert not result.passed and result.final
    assert result.message.startswith("exit code 3: Essential container in task exited"), result.message
    [task] = tasks_started(world)
    exit_codes = {c["name"]: c.get("exitCode") for c in task["containers"]}
    assert exit_codes == {"otel": None, world.ids.container_name: 3}


def test_the_same_identity_finds_its_task_and_never_starts_a_second(world: World, tmp_path: Path) -> None:
    push_image(world.clients, NEW_IMAGE)
    go = tmp_path / "go"
    waiting = hook(["sh", "-c", 'while [ ! -e "$GO" ]; do sleep 0.05; done'], environment={"GO": str(go)})
    with make_plane(world, tmp_path) as plane:
        first = call(world, EcsTaskHooks(world.clients.ecs), waiting)
        assert "started" in first.message and not first.final
        wait_until(lambda: [t.last_status for t in plane.one_off_tasks()] == ["RUNNING"], 15, "the task running")
        # A new runner, as after an operator restart: nothing remembered but what ECS holds.
        again = call(world, EcsTaskHooks(world.clients.ecs), waiting)
        task_id = tasks_started(world)[0]["taskArn"].rsplit("/", 1)[-1]
        assert (again.passed, again.final, again.message) == (False, False, f"task {task_id} RUNNING")
        assert len(tasks_started(world)) == 1 and len(plane.one_off_tasks()) == 1
        go.touch()
        wait_until(lambda: [t.last_status for t in plane.one_off_tasks()] == ["STOPPED"], 15, "the task stopped")
        wait_until(lambda: tasks_started(world)[0]["lastStatus"] == "STOPPED", 15, "ECS says STOPPED")
        # After it stopped, a call reads its result; it does not run the command again.
        after = call(world, EcsTaskHooks(world.clients.ecs), waiting)
        assert after.passed and after.message == f"task {task_id} exited with exit code 0"
        assert len(tasks_started(world)) == 1 and len(plane.one_off_tasks()) == 1
        # Another revision is another rollout: its own task.
        other = call(world, EcsTaskHooks(world.clients.ecs), waiting, revision=4)
        assert "started" in other.message and len(tasks_started(world, revision=4)) == 1


def test_an_image_missing_from_ecr_fails_with_cannot_pull_and_no_exit_code(world: World, tmp_path: Path) -> None:
    missing = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/pratiko-backend:9.9.9"
    with make_plane(world, tmp_path):
        result = until_final(world, EcsTaskHooks(world.clients.ecs), hook(["true"]), image=missing)
    assert not result.passed and result.final
    assert result.message.startswith("no exit code: CannotPullContainerError"), result.message


def test_two_agents_on_one_cluster_run_a_task_once(world: World, tmp_path: Path) -> None:
    push_image(world.clients, NEW_IMAGE)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    counter = tmp_path / "runs"
    with make_plane(world, tmp_path / "a") as a, make_plane(world, tmp_path / "b") as b:
        result = until_final(world, EcsTaskHooks(world.clients.ecs),
                             hook(["sh", "-c", f'echo ran >> "{counter}"']))
        assert result.passed, result
        assert len(a.one_off_tasks()) + len(b.one_off_tasks()) == 1
    assert counter.read_text() == "ran\n"


def test_an_aws_error_is_not_final_and_names_the_error(world: World, tmp_path: Path) -> None:
    spec = ReleaseSpec.model_validate(release_spec(version="1.6.0", image=NEW_IMAGE, cluster="no-such-cluster",
                                                   service=world.service, container_name=world.ids.container_name))
    result = EcsTaskHooks(world.clients.ecs)("production", "pratiko", UID, spec, status(), POINT, hook(["true"]))
    assert not result.passed and not result.final
    assert result.message.startswith("ClusterNotFound"), result.message
    assert world.clients.ecs.list_tasks(cluster=world.cluster, desiredStatus="RUNNING", startedBy=task_identity(
        UID, 3, POINT, "migrate"))["taskArns"] == []


def test_a_plane_that_stops_kills_the_tasks_it_runs_and_ecs_says_they_stopped(world: World, tmp_path: Path) -> None:
    push_image(world.clients, NEW_IMAGE)
    plane: DataPlane
    with make_plane(world, tmp_path) as plane:
        call(world, EcsTaskHooks(world.clients.ecs), hook(["sleep", "600"]))
        wait_until(lambda: [t.last_status for t in plane.one_off_tasks()] == ["RUNNING"], 15, "the task running")
        [running] = plane.one_off_tasks()
    assert running.pid is not None and not pid_alive(running.pid)
    result = call(world, EcsTaskHooks(world.clients.ecs), hook(["sleep", "600"]))
    assert not result.passed and result.final
    assert result.message.startswith("exit code 137: Host of the task stopped"), result.message


def test_without_an_agent_a_run_task_waits_provisioning_with_every_container_and_no_exit_code(world: World) -> None:
    """moto itself would say RUNNING at once, exit code 0, first container only (LEAVES MOTO'S PUBLIC API)."""
    push_image(world.clients, NEW_IMAGE)
    # The 1.5.0 task set's definition has a sidecar first: the new revision, and the task, keep it.
    world.clients.ecs.update_service_primary_task_set(cluster=world.cluster, service=world.service,
                                                      primaryTaskSet=world.task_sets["1.5.0"])
    result = call(world, EcsTaskHooks(world.clients.ecs), hook(["true"]))
    assert not result.passed and not result.final and result.message.endswith("PROVISIONING")
    [task] = tasks_started(world)
    assert task["lastStatus"] == "PROVISIONING" and task["desiredStatus"] == "RUNNING"
    td = world.clients.ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    assert [c["name"] for c in task["containers"]] == ["otel", world.ids.container_name]
    assert {c["name"]: c["image"] for c in td["containerDefinitions"]}[world.ids.container_name] == NEW_IMAGE
    assert all("exitCode" not in c for c in task["containers"])
    assert task["overrides"]["containerOverrides"] == [{"name": world.ids.container_name, "command": ["true"]}]
