"""What the end-to-end tests share: reading moto's AWS as a user would see it, changing it by hand,
watching it in a thread, waiting, the Releases in the API server, and the CLI.

One home for these so that every e2e file calls them the same way (`wait_for(what, predicate,
timeout)` everywhere, `wait_passes(operator, namespace, name, n)` where a test means "after n passes";
readers take `(aws, world)`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess

CLI = str(Path(sys.executable).parent / "release-controller")


# --------------------------------------------------------------------------- waiting


def wait_for(what: str, predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> float:
    """Poll until `predicate()`; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s")


def checks(operator: OperatorProcess, namespace: str, name: str) -> float:
    """How many times `operator` has checked the Release and finished (its passes, and the resync
    rounds that found it as its last pass left it): `release_controller_release_checks_total`."""
    for family in text_string_to_metric_families(operator.metrics()):
        if family.name == "release_controller_release_checks":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels == {"namespace": namespace, "name": name}:
                    return sample.value
    return 0.0


def wait_passes(operator: OperatorProcess, namespace: str, name: str, passes: int = 2, timeout: float | None = None,
                *, others: Sequence[tuple[str, str]] = ()) -> float:
    """Wait until `operator` has checked the Release (and each of `others`, (namespace, name) pairs)
    `passes` more times; returns the seconds it took.

    For a negative check ("nothing moves"): what the operator would have done, it has done by then.
    A check under way at the call counts; call this once the state those passes must see is in place
    (after a wait on a status a pass wrote), or ask one pass more.
    """
    keys = [(namespace, name), *others]
    start = {key: checks(operator, *key) for key in keys}
    bound = timeout if timeout is not None else 30 + 10 * passes

    def done() -> bool:
        return all(checks(operator, *key) >= start[key] + passes for key in keys)

    return wait_for(f"{passes} passes of the operator over {', '.join('/'.join(k) for k in keys)}", done, bound,
                    interval=0.25)


def hold_for_passes(operator: OperatorProcess, namespace: str, name: str, passes: int, check: Callable[[], None],
                    timeout: float | None = None) -> None:
    """Run `check` (it asserts) over and over until `operator` has checked the Release `passes` more
    times: something that must stay true while the operator keeps looking, not for a span of clock."""
    start = checks(operator, namespace, name)
    deadline = time.monotonic() + (timeout if timeout is not None else 30 + 10 * passes)
    while True:
        check()
        if checks(operator, namespace, name) >= start + passes:
            check()
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{namespace}/{name}: {passes} passes of the operator not within the bound")
        time.sleep(0.5)


# --------------------------------------------------------------------------- reading AWS


def listener_weights(aws: AwsClients, world: WorldIds) -> dict[str, int]:
    listener = aws.elbv2.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]
    groups = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    return {g["TargetGroupArn"]: int(g.get("Weight", 0)) for g in groups}


def live_task_sets(aws: AwsClients, world: WorldIds) -> list[dict[str, Any]]:
    service = aws.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]
    return [t for t in service.get("taskSets", []) if t["status"] != "DRAINING"]


_images: dict[str, str] = {}


def image_of(aws: AwsClients, task_definition: str) -> str:
    if task_definition not in _images:
        td = aws.ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
        _images[task_definition] = td["containerDefinitions"][0]["image"]
    return _images[task_definition]


def target_group_of(task_set: dict[str, Any]) -> str:
    return str(task_set["loadBalancers"][0]["targetGroupArn"])


def origin_path(aws: AwsClients, world: WorldIds) -> str:
    config = aws.cloudfront.get_distribution_config(Id=world.distribution_id)["DistributionConfig"]
    return str(config["Origins"]["Items"][0].get("OriginPath", ""))


def invalidated_paths(aws: AwsClients, world: WorldIds) -> list[list[str]]:
    """The paths of every invalidation of the world's distribution, one list per invalidation."""
    listing = aws.cloudfront.list_invalidations(DistributionId=world.distribution_id)["InvalidationList"]
    out = []
    for item in listing.get("Items", []):
        inv = aws.cloudfront.get_invalidation(DistributionId=world.distribution_id, Id=item["Id"])["Invalidation"]
        out.append(list(inv["InvalidationBatch"]["Paths"].get("Items", [])))
    return out


def flags_published(aws: AwsClients, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        value = aws.ssm.get_parameter(Name=f"/release-controller/{namespace}/{name}/flags")["Parameter"]["Value"]
    except aws.ssm.exceptions.ParameterNotFound:
        return None
    found: dict[str, Any] = json.loads(value)
    return found


def task_definition_images(aws: AwsClients, world: WorldIds) -> list[str]:
    """The image of every revision in the world's task definition family, oldest first."""
    arns = aws.ecs.list_task_definitions(familyPrefix=f"{world.name}-backend", sort="ASC")["taskDefinitionArns"]
    return [image_of(aws, arn) for arn in arns]


def snapshot(aws: AwsClients, world: WorldIds, namespace: str, name: str) -> dict[str, Any]:
    """What a Release could change in AWS: task sets, task definitions, weights, origin, flags."""
    service = aws.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]
    return {
        "task_sets": sorted((t["id"], t["status"], t["scale"]["value"], t["taskDefinition"])
                            for t in service.get("taskSets", [])),
        "service_task_definition": service.get("taskDefinition"),
        "deployments": sorted(d["id"] for d in service.get("deployments", [])),
        "task_definitions": task_definition_images(aws, world),
        "weights": listener_weights(aws, world),
        "origin_path": origin_path(aws, world),
        "invalidations": len(invalidated_paths(aws, world)),
        "flags": flags_published(aws, namespace, name),
    }


def weights_by_colour(aws: AwsClients, world: WorldIds) -> dict[str, int]:
    """The listener's weights in moto, by colour."""
    listener = aws.elbv2.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]
    groups = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    by_arn = {g["TargetGroupArn"]: int(g["Weight"]) for g in groups}
    return {"blue": by_arn.get(world.stable_target_group_arn, 0), "green": by_arn.get(world.canary_target_group_arn, 0)}


def live_versions(aws: AwsClients, world: WorldIds) -> set[str]:
    """The versions of the task sets that are not draining away."""
    service = aws.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]
    out = set()
    for ts in service["taskSets"]:
        if ts["status"] != "DRAINING":
            td = aws.ecs.describe_task_definition(taskDefinition=ts["taskDefinition"])["taskDefinition"]
            out.add(td["containerDefinitions"][0]["image"].rsplit(":", 1)[1])
    return out


# --------------------------------------------------------------------------- changing AWS by hand


def set_weights(aws: AwsClients, world: WorldIds, stable: int) -> None:
    aws.elbv2.modify_listener(ListenerArn=world.listener_arn, DefaultActions=[{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": world.stable_target_group_arn, "Weight": stable},
            {"TargetGroupArn": world.canary_target_group_arn, "Weight": 100 - stable}]}}])


def set_origin(aws: AwsClients, world: WorldIds, path: str) -> None:
    got = aws.cloudfront.get_distribution_config(Id=world.distribution_id)
    config = got["DistributionConfig"]
    config["Origins"]["Items"][0]["OriginPath"] = path
    aws.cloudfront.update_distribution(Id=world.distribution_id, IfMatch=got["ETag"], DistributionConfig=config)


# --------------------------------------------------------------------------- watching AWS


@dataclass(frozen=True)
class Sample:
    at: float
    weights: dict[str, int]  # target group ARN -> weight
    task_sets: tuple[dict[str, Any], ...]  # live (not DRAINING) task sets, as DescribeServices says
    # The same, read just before the listener: capacity grows before traffic moves onto it and shrinks
    # after traffic moved off it, so a weight is backed by the scale read before or the one read after.
    task_sets_before: tuple[dict[str, Any], ...] = ()


@dataclass
class AwsWatch:
    """Polls one world's listener (and task sets) in a thread while a test drives the operator.

    Each sample reads the task sets, the listener, then the task sets again: capacity grows before
    traffic moves onto it (the scale read after the listener backs its weight) and shrinks only after
    traffic moved off it (the scale read before does), whichever of a pass's changes fell between.
    """

    env: dict[str, str]
    world: WorldIds
    task_sets: bool = True
    interval: float = 0.2
    samples: list[Sample] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> "AwsWatch":
        clients = AwsClients.from_env(self.env)  # its own clients: the test's are used meanwhile
        self._thread = threading.Thread(target=self._run, args=(clients,), daemon=True)
        self._thread.start()
        wait_for("a first sample of the world", lambda: bool(self.samples), 20)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.errors:
            raise AssertionError(f"watching AWS failed: {self.errors[0]!r}")

    def _run(self, clients: AwsClients) -> None:
        while not self._stop.is_set():
            try:
                before = tuple(live_task_sets(clients, self.world)) if self.task_sets else ()
                weights = listener_weights(clients, self.world)
                live = tuple(live_task_sets(clients, self.world)) if self.task_sets else ()
                self.samples.append(Sample(time.monotonic(), weights, live, before))
            except Exception as exc:  # noqa: BLE001 - reported by stop()
                self.errors.append(exc)
                return
            self._stop.wait(self.interval)

    def weights_of(self, target_group: str) -> list[int]:
        """The weights `target_group` had, consecutive repeats collapsed: e.g. [0, 20, 60, 100]."""
        out: list[int] = []
        for s in list(self.samples):
            w = s.weights.get(target_group, 0)
            if not out or out[-1] != w:
                out.append(w)
        return out

    def latest(self) -> Sample:
        return self.samples[-1]


# --------------------------------------------------------------------------- Releases and the CLI


@dataclass(frozen=True)
class Kubectl:
    env: dict[str, str]

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["kubectl", *args], input=stdin, env=self.env, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc


def drop_namespace(kubectl: Kubectl, namespace: str) -> None:
    """A test's namespace goes as a namespace controller would take it: its Releases deleted first
    (the operator finishes each and lifts its finalizer), then the namespace, neither waited for.

    The local environment has no kube-controller-manager, so a deleted namespace alone stays
    Terminating with its Releases in it, and an operator watching it would go on resyncing every one
    of them for the rest of the session (dozens per worker, each pass a round of AWS reads).
    """
    kubectl("delete", "releases.delivery.pratiko.ai", "--all", "-n", namespace, "--wait=false", check=False)
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@dataclass(frozen=True)
class Releases:
    kubectl: Kubectl

    def apply(self, body: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        out = self.kubectl("get", "release", name, "-n", namespace, "-o", "json").stdout
        obj: dict[str, Any] = json.loads(out)
        return obj

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        return self.get(namespace, name).get("status") or {}

    def wait(self, namespace: str, name: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60,
             what: str = "condition") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status(namespace, name)
            if predicate(status):
                return status
            time.sleep(0.5)
        raise AssertionError(f"{namespace}/{name}: {what} not reached in {timeout}s; status: {json.dumps(status, indent=1)}")

    def wait_phase(self, namespace: str, name: str, phase: str, timeout: float = 60, generation: int | None = None) -> dict[str, Any]:
        return self.wait(
            namespace, name,
            lambda s: s.get("phase") == phase and (generation is None or s.get("observedGeneration") == generation),
            timeout, f"phase {phase}",
        )

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        out = self.kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}",
                           "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"release-controller {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc


def wait_converged(releases: Releases, aws: AwsClients, world: WorldIds, namespace: str, name: str,
                   version: str, generation: int, timeout: float = 120) -> dict[str, Any]:
    """Succeeded at `version`, the previous backend deleted; returns the status."""
    status = releases.wait(
        namespace, name,
        lambda s: s.get("phase") == "Succeeded" and s.get("observedGeneration") == generation
        and condition(s, "Progressing").get("reason") == "RolloutCompleted",
        timeout, f"Succeeded at {version} with the rollout completed",
    )
    assert status["backend"]["stableVersion"] == version
    assert condition(status, "Ready")["status"] == "True"
    return status


def assert_serving_only(aws: AwsClients, world: WorldIds, version: str) -> None:
    """Exactly one live task set, at `version`, primary, full scale, with all the traffic."""
    live = live_task_sets(aws, world)
    assert len(live) == 1, live
    only = live[0]
    assert image_of(aws, only["taskDefinition"]).endswith(f":{version}")
    assert only["status"] == "PRIMARY" and only["scale"]["value"] == 100.0
    weights = listener_weights(aws, world)
    assert weights[target_group_of(only)] == 100 and sum(weights.values()) == 100, weights
