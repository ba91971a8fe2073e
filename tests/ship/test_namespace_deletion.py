"""Deleting a watched namespace mid-canary, with the shipped namespaced RBAC, on the real kube-apiserver.

The production overlay is applied for real (tests/ship/test_cluster.py `production`) and its
Deployment is played by two operator processes with the ServiceAccount's own identity, watching two
namespaces of their own (`doomed` and `kept`), each bound the way the overlay binds `production`:
a copy of manifests/overlays/production/rolebinding.yaml, finalizer included. Then `doomed` is
deleted while its Release stands at 30% on the canary.

The local environment has no kube-controller-manager, so the test plays the namespace controller:
it deletes every object in the namespace (the operator's RoleBinding with the Release, as the real
one does in one sweep), waits while finalizers hold objects, and finalizes the namespace (its
`finalize` subresource) once nothing is left. Meanwhile the listener's weights are sampled.

What must show: traffic never moves towards the canary again after the deletion and ends 100% on
stable, the canary task set is removed, the RoleBinding outlives the namespace's last Release (RBAC
honours it while it is being deleted), the namespace goes, and the operator goes on with a Release
of the other namespace (then that namespace, its Release settled, is deleted too: AWS left as it is). And the operator's right to patch its own binding cannot add a subject:
the admission policy refuses everything but the removal of finalizers.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.aws.clients import AwsClients
from controller.kube.bindings import FINALIZER
from controller.kube.client import load_api_client
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.env import LocalEnvironment
from controller.testing.ports import wait_until
from controller.testing.releases import release_for
from controller.testing.tenancy import policy_for
from tests.e2e.helpers import AwsWatch, Kubectl, Releases, assert_serving_only, live_task_sets, wait_converged
from tests.ship.conftest import ROOT
from tests.ship.test_cluster import (  # noqa: F401 - fixtures
    CONTROLLER_NS, Replica, admin, as_sa, can_i, container_env, installed, leader_state, log_of, production,
    sa_kubeconfig,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

TAG = f"{os.getpid()}"
DOOMED = f"rc-doomed-{TAG}"
KEPT = f"rc-kept-{TAG}"
HOLD = "tests.pratiko.ai/hold"  # the test's own finalizer on the Release: the namespace waits for it
STRATEGY = {"type": "Canary", "canary": {"steps": [{"setWeight": 30}, {"pause": {"duration": "600s"}},
                                                   {"setWeight": 60}]}}
_worlds = itertools.count(1)


def _binding_for(namespace: str) -> dict[str, Any]:
    """The production overlay's RoleBinding, for another watched namespace (as a user binds each)."""
    docs = list(yaml.safe_load_all((ROOT / "manifests" / "overlays" / "production" / "rolebinding.yaml").read_text()))
    (binding,) = docs
    binding["metadata"]["namespace"] = namespace
    assert FINALIZER in binding["metadata"]["finalizers"], "the shipped binding has no finalizer"
    return dict(binding)


def _get(admin: Kubectl, *args: str) -> dict[str, Any] | None:
    out = admin("get", *args, "-o", "json", check=False)
    if out.returncode != 0:
        assert "NotFound" in out.stderr, out.stderr
        return None
    found: dict[str, Any] = json.loads(out.stdout)
    return found


@pytest.fixture()
def namespaces(admin: Kubectl, production: dict[str, Any]) -> Iterator[tuple[str, str]]:
    objs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in (DOOMED, KEPT)]
    objs += [_binding_for(n) for n in (DOOMED, KEPT)]
    admin("apply", "-f", "-", stdin=yaml.safe_dump_all(objs))
    try:
        yield DOOMED, KEPT
    finally:  # whatever is left (a failed test): finalizers off, then the namespaces as the controller would
        admin("delete", "releasepolicies.delivery.pratiko.ai", DOOMED, KEPT, "--ignore-not-found", check=False)
        for ns in (DOOMED, KEPT):
            for kind in ("releases.delivery.pratiko.ai", "rolebinding"):
                out = admin("get", kind, "-n", ns, "-o", "name", check=False)
                for name in out.stdout.split():
                    admin("patch", name, "-n", ns, "--type", "merge", "-p", '{"metadata":{"finalizers":null}}', check=False)
            admin("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
            _finalize(admin, ns, check=False)


def _finalize(admin: Kubectl, namespace: str, check: bool = True) -> None:
    """What the namespace controller does last: the namespace's `kubernetes` finalizer off."""
    ns = _get(admin, "namespace", namespace)
    if ns is None:
        return
    ns["spec"]["finalizers"] = []
    admin("replace", "--raw", f"/api/v1/namespaces/{namespace}/finalize", "-f", "-", stdin=json.dumps(ns), check=check)


def _contents(admin: Kubectl, namespace: str) -> list[str]:
    kinds = admin("api-resources", "--verbs=list,delete", "--namespaced", "-o", "name").stdout.split()
    out = admin("get", ",".join(kinds), "-n", namespace, "-o", "name", "--ignore-not-found", check=False)
    return out.stdout.split()


def play_namespace_controller(admin: Kubectl, namespace: str) -> None:
    """The namespace controller's sweep: delete everything in the namespace, without waiting; the
    finalizers decide when each object goes. The real one deletes kind after kind in an order of its
    own, within milliseconds; here the RoleBindings go first, the order in which the operator loses
    its rights before it has finished a Release (what happened before the binding's finalizer)."""
    admin("delete", "rolebindings.rbac.authorization.k8s.io", "--all", "-n", namespace, "--wait=false")
    kinds = admin("api-resources", "--verbs=list,delete", "--namespaced", "-o", "name").stdout.split()
    admin("delete", ",".join(kinds), "--all", "-n", namespace, "--wait=false", "--ignore-not-found")


@pytest.fixture()
def worlds(local_env: LocalEnvironment) -> tuple[WorldIds, WorldIds]:
    aws = AwsClients.from_env(local_env.env_vars())
    return tuple(  # type: ignore[return-value]
        seed_world(aws, name=f"nsdel{TAG}x{next(_worlds)}", image="repo/pratiko-backend:1.0.0") for _ in range(2))


@pytest.fixture()
def operators(production: dict[str, Any], local_env: LocalEnvironment, sa_kubeconfig: Path,  # noqa: F811
              namespaces: tuple[str, str], tmp_path: Path) -> Iterator[list[Replica]]:
    """The Deployment's replicas, as the ServiceAccount, watching both namespaces (its args with
    `--namespace production` replaced)."""
    container = production["spec"]["template"]["spec"]["containers"][0]
    args = list(container["args"])
    at = args.index("--namespace")
    assert args[at + 1] == "production"
    args[at:at + 2] = ["--namespace", namespaces[0], "--namespace", namespaces[1]]
    args[args.index("--resync") + 1] = "5"  # the sweep of the resync loop is only the second net here
    started: list[Replica] = []
    try:
        for index in range(production["spec"]["replicas"]):
            pod = f"release-controller-nsdel-{index}"
            env = {**local_env.env_vars(), **container_env(container, pod), "KUBECONFIG": str(sa_kubeconfig)}
            replica = Replica(env, log_path=tmp_path / f"{pod}.log", args=tuple(args))
            started.append(replica)
            replica.start(timeout=120)
        yield started
    finally:
        for replica in started:
            replica.stop()


def test_deleting_a_namespace_mid_canary_puts_traffic_back_and_spares_the_others(
    admin: Kubectl, as_sa: Kubectl, operators: list[Replica], namespaces: tuple[str, str],  # noqa: F811
    worlds: tuple[WorldIds, WorldIds], local_env: LocalEnvironment,
) -> None:
    doomed, kept = namespaces
    world, other = worlds
    releases = Releases(admin)
    aws = AwsClients.from_env(local_env.env_vars())
    wait_until(lambda: sorted(str(leader_state(r)) for r in operators) == ["leading", "standby"], 60,
               "one replica leads, the other stands by", interval=0.5)
    admin("apply", "-f", "-", stdin=yaml.safe_dump_all([
        policy_for(world, f"{doomed}", [doomed]), policy_for(other, f"{kept}", [kept])]))
    releases.apply(release_for(world, name="app", namespace=doomed, version="1.0.0", strategy=STRATEGY,
                               rollback={"window": "1s"}))
    releases.wait_phase(doomed, "app", "Succeeded", 120, generation=1)
    canary = world.canary_target_group_arn

    with AwsWatch(local_env.env_vars(), world) as watch:
        body = release_for(world, name="app", namespace=doomed, version="2.0.0", strategy=STRATEGY,
                           rollback={"window": "1s"})
        releases.apply(body)
        wait_until(lambda: watch.latest().weights.get(canary) == 30, 120, "30% on the canary", interval=0.5)
        # The test holds the Release with a finalizer of its own, so the namespace keeps a Release
        # after the operator is done with it: the binding must stay until that one goes too.
        admin("patch", "release", "app", "-n", doomed, "--type", "json",
              "-p", json.dumps([{"op": "add", "path": "/metadata/finalizers/-", "value": HOLD}]))

        admin("delete", "namespace", doomed, "--wait=false")
        deleted_at = time.monotonic()
        play_namespace_controller(admin, doomed)
        binding = _get(admin, "rolebinding", "release-controller", "-n", doomed)
        assert binding is not None and binding["metadata"].get("deletionTimestamp"), "the binding went in the sweep"
        # RBAC honours a binding being deleted: the operator may still read and patch the Release.
        assert can_i(as_sa, "patch", "releases.delivery.pratiko.ai", "-n", doomed)

        # The operator aborts the rollout and lets its finalizer go; the test's still holds the Release.
        def finalized() -> bool:
            obj = _get(admin, "release", "app", "-n", doomed)
            return obj is not None and obj["metadata"].get("finalizers") == [HOLD]
        wait_until(finalized, 120, "the operator to finish the Release's deletion", interval=0.5)
        wait_until(lambda: watch.latest().weights.get(canary, 0) == 0, 30, "all traffic on stable", interval=0.5)
        # A Release is left in the namespace: the binding stays, through several resync sweeps.
        held_at = time.monotonic()
        wait_until(lambda: time.monotonic() - held_at > 12, 20, "two resync sweeps", interval=1)
        binding = _get(admin, "rolebinding", "release-controller", "-n", doomed)
        assert binding is not None and FINALIZER in binding["metadata"]["finalizers"], binding
        assert _get(admin, "namespace", doomed) is not None

        # The last Release goes: so does the binding, and the namespace empties.
        admin("patch", "release", "app", "-n", doomed, "--type", "merge", "-p", '{"metadata":{"finalizers":null}}')
        wait_until(lambda: _get(admin, "rolebinding", "release-controller", "-n", doomed) is None, 60,
                   "the operator to let its RoleBinding go", interval=0.5)
        wait_until(lambda: _contents(admin, doomed) == [], 60, "the namespace to be empty", interval=1)
        _finalize(admin, doomed)
        wait_until(lambda: _get(admin, "namespace", doomed) is None, 30, "the namespace to go", interval=0.5)

        after = [s for s in watch.samples if s.at >= deleted_at]
    # Over time: from the deletion on, the canary's weight only fell, to 0; no sample after the
    # deletion sent more to the canary than it had then.
    canary_weights = [s.weights.get(canary, 0) for s in after]
    assert canary_weights and canary_weights[0] <= 30 and canary_weights[-1] == 0, canary_weights
    assert all(b <= a for a, b in zip(canary_weights, canary_weights[1:])), canary_weights
    assert after[-1].weights.get(world.stable_target_group_arn) == 100, after[-1].weights
    live = live_task_sets(aws, world)
    assert len(live) == 1, live  # the canary task set is removed
    images = {aws.ecs.describe_task_definition(taskDefinition=t["taskDefinition"])["taskDefinition"][
        "containerDefinitions"][0]["image"] for t in live}
    assert images == {"repo/pratiko-backend:1.0.0"}, images

    # The operator lives on: both replicas healthy, one leading, and a Release of the other namespace rolls.
    for replica in operators:
        assert replica.healthy(), log_of(replica)[-3000:]
    assert sorted(str(leader_state(r)) for r in operators) == ["leading", "standby"]
    releases.apply(release_for(other, name="web", namespace=kept, version="1.0.0", rollback={"window": "1s"}))
    releases.wait_phase(kept, "web", "Succeeded", 120, generation=1)
    releases.apply(release_for(other, name="web", namespace=kept, version="2.0.0", rollback={"window": "1s"}))
    wait_converged(releases, aws, other, kept, "web", "2.0.0", generation=2)
    assert_serving_only(aws, other, "2.0.0")

    # A namespace whose Release is settled: it goes at once, AWS left serving what it serves.
    admin("delete", "namespace", kept, "--wait=false")
    play_namespace_controller(admin, kept)
    wait_until(lambda: _get(admin, "rolebinding", "release-controller", "-n", kept) is None, 60,
               "the operator to let its RoleBinding go", interval=0.5)
    wait_until(lambda: _contents(admin, kept) == [], 60, "the namespace to be empty", interval=1)
    _finalize(admin, kept)
    wait_until(lambda: _get(admin, "namespace", kept) is None, 30, "the namespace to go", interval=0.5)
    assert_serving_only(aws, other, "2.0.0")
    for replica in operators:
        assert replica.healthy(), log_of(replica)[-3000:]
    for replica in operators:
        log = log_of(replica)
        for refused in ("Not enough permissions", "403 Forbidden"):
            assert refused not in log, f"{replica.log_path}: {refused!r} in the operator log"


def test_the_operator_may_only_remove_finalizers_from_its_binding(
    admin: Kubectl, as_sa: Kubectl, sa_kubeconfig: Path, namespaces: tuple[str, str],  # noqa: F811
) -> None:
    """RBAC lets the ServiceAccount patch its own binding (and no other); the admission policy
    release-controller-bindings refuses any change but removing a finalizer (server-side dry runs)."""
    _, kept = namespaces
    assert can_i(as_sa, "patch", "rolebindings.rbac.authorization.k8s.io/release-controller", "-n", kept)
    assert not can_i(as_sa, "patch", "rolebindings.rbac.authorization.k8s.io/other", "-n", kept)
    assert not can_i(as_sa, "get", "rolebindings.rbac.authorization.k8s.io", "-n", kept)
    assert not can_i(as_sa, "create", "rolebindings.rbac.authorization.k8s.io", "-n", kept)

    # As the operator does it: a PATCH with no read first (kubectl patch reads, which it may not).
    rbac = client.RbacAuthorizationV1Api(load_api_client(str(sa_kubeconfig)))

    def patch(body: Any, kind: str = "merge") -> str:
        """'' when admitted (a server-side dry run), else the API server's message."""
        try:
            rbac.patch_namespaced_role_binding("release-controller", kept, body, dry_run="All",
                                               _content_type=f"application/{kind}-patch+json")
        except ApiException as exc:
            assert exc.status in (403, 422), exc
            return str(json.loads(exc.body).get("message"))
        return ""

    more = {"subjects": [{"kind": "ServiceAccount", "name": "release-controller", "namespace": CONTROLLER_NS},
                         {"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}]}
    # The policy is in force once the API server has loaded it: wait for the first refusal.
    seen: list[str] = []

    def refused_subject() -> bool:
        seen.append(patch(more))
        return "may only remove finalizers" in seen[-1]
    try:
        wait_until(refused_subject, 60, "the policy to refuse a subject", interval=1)
    except TimeoutError:
        raise AssertionError(f"adding a subject: {seen[-1] or 'admitted'}") from None
    for body in ({"metadata": {"finalizers": [FINALIZER, "example.com/more"]}},
                 {"metadata": {"labels": {"app.kubernetes.io/name": "changed"}}},
                 {"metadata": {"annotations": {"note": "x"}}}):
        assert "may only remove finalizers" in patch(body), body
    assert patch({"metadata": {"$deleteFromPrimitiveList/finalizers": [FINALIZER]}}, kind="strategic-merge") == ""
    # And without the policy's help, RBAC: another binding of the namespace is not the operator's.
    admin("create", "rolebinding", "other", "-n", kept, "--clusterrole=view", "--user=alice")
    try:
        rbac.patch_namespaced_role_binding("other", kept, {"metadata": {"finalizers": []}}, dry_run="All",
                                           _content_type="application/merge-patch+json")
    except ApiException as exc:
        assert exc.status == 403, exc
    else:
        raise AssertionError("the operator patched another RoleBinding")
    binding = _get(admin, "rolebinding", "release-controller", "-n", kept)
    assert binding is not None and binding["metadata"]["finalizers"] == [FINALIZER]  # dry runs changed nothing
    assert [s["name"] for s in binding["subjects"]] == ["release-controller"]
