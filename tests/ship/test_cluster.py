"""The shipped manifests against the real local kube-apiserver, and the operator run with exactly
the identity and the RBAC they ship.

- `kubectl apply -k manifests/crds` for real, then every overlay, pinned to the image `make image`
  builds by a kustomization of images, passes `kubectl apply -k --dry-run=server` (admission, schema and RBAC-object validation by the API server), and the
  operator's pod passes the "restricted" Pod Security admission that its namespace enforces.
- The production overlay is applied for real. Its Deployment cannot run here (no kubelet), so the
  test plays the kubelet: it starts `replicas` operator processes with the live Deployment's args
  and env, each with a client certificate for `system:serviceaccount:release-controller:
  release-controller` (controller/testing/kube.py) instead of the admin kubeconfig, so every
  request is authorised by the shipped ClusterRoles and bindings only. They drive a Fast Release
  in the `production` namespace from 1.0.0 to 2.0.0 against a seeded moto world, one replica
  active through the leader Lease in the operator's namespace (controller/operator/leadership.py),
  the standby taking over when the active one stops.
- What the ServiceAccount was not granted is refused: `kubectl auth can-i` and real requests.
- The cluster-wide scope (development overlay) grants the same rules in every namespace.

The `production` and `staging` namespaces hold the overlays' objects; the session operator only
watches `test-*` namespaces (tests/e2e/conftest.py), so no other operator touches these Releases.
The ServiceMonitor and PrometheusRule kinds come from minimal stand-in CRDs installed here (the
Prometheus Operator's own CRDs cannot be downloaded); they accept any spec, so the dry-run proves
only that the objects are well-formed and land in the right namespace. Their PromQL is checked by
promtool in test_manifests.py.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.env import LocalEnvironment
from controller.testing.image import IMAGE, REPOSITORY, version
from controller.testing.kubectl import wait_established
from controller.testing.operator import OperatorProcess
from controller.testing.ports import wait_until
from controller.testing.releases import release_for
from controller.testing.tenancy import policy_for
from tests.e2e.helpers import Kubectl, Releases
from tests.ship.conftest import OVERLAYS, PUBLISHED_IMAGE, ROOT, kustomize, one
from tests.ship.test_iam_actions import S3_ACTIONS, actions_in_code, actions_in_policy

pytestmark = pytest.mark.e2e

OVERLAY_DIR = ROOT / "manifests" / "overlays"
CONTROLLER_NS = "release-controller"
SERVICE_ACCOUNT = "release-controller"
WATCHED = "production"  # the namespace the production overlay's operator watches
OTHER = "staging"  # a namespace it must not touch

# Stand-ins for the Prometheus Operator's CRDs: same group, names and scope, any spec.
PROMETHEUS_OPERATOR_CRDS: list[dict[str, Any]] = [
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": plural[:-1], "listKind": f"{kind}List"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}},
            }],
        },
    }
    for kind, plural in (("ServiceMonitor", "servicemonitors"), ("PrometheusRule", "prometheusrules"))
]


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@pytest.fixture(scope="module")
def admin(local_env: LocalEnvironment) -> Kubectl:
    return Kubectl({**os.environ, **local_env.env_vars()})


@pytest.fixture(scope="module")
def installed(admin: Kubectl) -> None:
    """The CRDs applied as the docs say, and the namespaces the overlays put objects in."""
    admin("apply", "-k", str(ROOT / "manifests" / "crds"))
    admin("apply", "-f", "-", stdin=yaml.safe_dump_all(PROMETHEUS_OPERATOR_CRDS))
    names = [o["metadata"]["name"] for o in kustomize(ROOT / "manifests" / "crds")]
    names += [c["metadata"]["name"] for c in PROMETHEUS_OPERATOR_CRDS]
    wait_established(admin.env, 60, tuple(f"crd/{n}" for n in names))  # not `kubectl wait`: a CRD with no status yet fails it
    # The operator's namespace as shipped (it carries the Pod Security labels), and the
    # application namespaces the overlays watch: they exist before the operator is installed.
    shipped_ns = one(kustomize(OVERLAY_DIR / "production"), "Namespace", CONTROLLER_NS)
    admin("apply", "-f", "-", stdin=yaml.safe_dump_all([shipped_ns, _namespace(WATCHED), _namespace(OTHER)]))


def with_local_image(overlay: Path, into: Path) -> Path:
    """A kustomization over `overlay` that runs the image `make image` builds, as a user pins an image
    with kustomize's `images:` (the published one cannot be pulled here)."""
    into.mkdir(parents=True, exist_ok=True)
    (into / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(overlay, into)],
        "images": [{"name": PUBLISHED_IMAGE, "newName": REPOSITORY, "newTag": version()}],
    }))
    return into


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_a_server_side_dry_run(admin: Kubectl, installed: None, overlay: str, tmp_path: Path) -> None:
    local = with_local_image(OVERLAY_DIR / overlay, tmp_path / overlay)
    out = admin("apply", "-k", str(local), "--dry-run=server", "-o", "json", check=False)
    assert out.returncode == 0, f"kubectl apply -k overlays/{overlay} --dry-run=server:\n{out.stderr}"
    # The namespace warns on workloads whose pods would break the "restricted" profile.
    assert "PodSecurity" not in out.stderr, out.stderr
    applied = json.loads(out.stdout)
    applied = applied.get("items", [applied])
    rendered = kustomize(OVERLAY_DIR / overlay)
    assert len(applied) == len(rendered), f"the API server saw {[o['kind'] for o in applied]}"
    (deployment,) = [o for o in applied if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


def _pod_from(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": deployment["metadata"]["namespace"], "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }


def test_restricted_pod_security_admits_the_pod_and_refuses_a_weaker_one(admin: Kubectl, installed: None) -> None:
    """The namespace *enforces* "restricted" on pods: the Deployment's pod is admitted, and the
    same pod allowed to escalate privileges is refused (so the admission really is on)."""
    deployment = one(kustomize(OVERLAY_DIR / "production"), "Deployment", "release-controller")
    pod = _pod_from(deployment, "psa-check")
    ok = admin("create", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(pod), check=False)
    assert ok.returncode == 0, ok.stderr
    weaker = json.loads(json.dumps(pod))
    weaker["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    refused = admin("create", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(weaker), check=False)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr


# --------------------------------------------------------------------------- production, for real


@pytest.fixture(scope="module")
def production(admin: Kubectl, installed: None) -> dict[str, Any]:
    """`kubectl apply -k manifests/overlays/production` for real; returns the live Deployment."""
    admin("apply", "-k", str(OVERLAY_DIR / "production"))
    out = admin("get", "deployment", "release-controller", "-n", CONTROLLER_NS, "-o", "json").stdout
    deployment: dict[str, Any] = json.loads(out)
    return deployment


@pytest.fixture(scope="module")
def sa_kubeconfig(local_env: LocalEnvironment, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig that authenticates as the shipped ServiceAccount (a CA-signed client cert)."""
    path = tmp_path_factory.mktemp("sa") / "kubeconfig"
    return local_env.kube_server().service_account_kubeconfig(CONTROLLER_NS, SERVICE_ACCOUNT, path)


@pytest.fixture(scope="module")
def as_sa(admin: Kubectl, sa_kubeconfig: Path) -> Kubectl:
    return Kubectl({**admin.env, "KUBECONFIG": str(sa_kubeconfig)})


def can_i(kubectl: Kubectl, *args: str) -> bool:
    out = kubectl("auth", "can-i", *args, check=False)
    assert out.stdout.strip() in {"yes", "no"}, out.stdout + out.stderr
    return out.stdout.strip() == "yes"


GRANTED = [
    ("get", "releases.delivery.pratiko.ai", "-n", WATCHED),
    ("watch", "releases.delivery.pratiko.ai", "-n", WATCHED),
    ("patch", "releases.delivery.pratiko.ai", "-n", WATCHED),
    ("patch", "releases.delivery.pratiko.ai", "--subresource=status", "-n", WATCHED),
    ("create", "events", "-n", WATCHED),
    ("get", "configmaps", "-n", WATCHED),
    ("get", "secrets", "-n", WATCHED),  # the GitOps write-back's secretRef, by name
    # Its own binding's finalizer, once the namespace being deleted holds no Release (controller/kube/bindings.py).
    ("patch", "rolebindings.rbac.authorization.k8s.io/release-controller", "-n", WATCHED),
    # Claims (controller/kube/claims.py) and the leader Lease (controller/operator/leadership.py).
    ("get", "leases.coordination.k8s.io", "-n", CONTROLLER_NS),
    ("create", "leases.coordination.k8s.io", "-n", CONTROLLER_NS),
    ("update", "leases.coordination.k8s.io", "-n", CONTROLLER_NS),
    ("list", "leases.coordination.k8s.io", "-n", CONTROLLER_NS),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("list", "namespaces"),
    ("watch", "releasepolicies.delivery.pratiko.ai"),  # tenancy: what each namespace may move
]
REFUSED = [
    ("delete", "releases.delivery.pratiko.ai", "-n", WATCHED),
    ("create", "releases.delivery.pratiko.ai", "-n", WATCHED),
    ("update", "releases.delivery.pratiko.ai", "-n", WATCHED),
    ("list", "secrets", "-n", WATCHED),
    ("get", "secrets", "-n", CONTROLLER_NS),
    ("create", "configmaps", "-n", WATCHED),
    ("list", "configmaps", "-n", WATCHED),
    ("patch", "events", "-n", WATCHED),
    ("create", "leases.coordination.k8s.io", "-n", WATCHED),  # claims live in the operator's namespace only
    ("watch", "leases.coordination.k8s.io", "-n", CONTROLLER_NS),
    ("delete", "leases.coordination.k8s.io", "-n", CONTROLLER_NS),  # claims stay, released; nothing deletes one
    ("patch", "leases.coordination.k8s.io", "-n", CONTROLLER_NS),
    ("get", "pods", "-n", WATCHED),
    ("patch", "deployments.apps", "-n", CONTROLLER_NS),
    ("get", "rolebindings.rbac.authorization.k8s.io", "-n", WATCHED),
    ("patch", "rolebindings.rbac.authorization.k8s.io/other", "-n", WATCHED),
    ("patch", "rolebindings.rbac.authorization.k8s.io/release-controller", "-n", OTHER),
    ("create", "rolebindings.rbac.authorization.k8s.io", "-n", WATCHED),
    # The namespaced rules are bound in `production` only.
    ("list", "releases.delivery.pratiko.ai", "-n", OTHER),
    ("patch", "releases.delivery.pratiko.ai", "--subresource=status", "-n", OTHER),
    ("get", "configmaps", "-n", OTHER),
    ("list", "releases.delivery.pratiko.ai", "--all-namespaces"),
    # kopf runs without peering: nothing of kopf.dev.
    ("patch", "kopfpeerings.kopf.dev", "-n", WATCHED),
    ("list", "kopfpeerings.kopf.dev", "-n", WATCHED),
    ("patch", "clusterkopfpeerings.kopf.dev"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "releasepolicies.delivery.pratiko.ai"),  # written by cluster admins only
    ("patch", "releasepolicies.delivery.pratiko.ai"),
]


def test_the_service_account_may_do_only_what_it_was_granted(production: dict[str, Any], as_sa: Kubectl) -> None:
    who = as_sa("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout
    assert who == f"system:serviceaccount:{CONTROLLER_NS}:{SERVICE_ACCOUNT}"
    assert [g for g in GRANTED if not can_i(as_sa, *g)] == []
    assert [r for r in REFUSED if can_i(as_sa, *r)] == []


def test_requests_outside_the_grant_are_refused(production: dict[str, Any], admin: Kubectl, as_sa: Kubectl,
                                                world: WorldIds) -> None:
    body = release_for(world, name="guarded", namespace=WATCHED, version="1.0.0")
    admin("apply", "-f", "-", stdin=yaml.safe_dump(body))
    try:
        assert as_sa("get", "release", "guarded", "-n", WATCHED).returncode == 0  # granted: a real 200
        deleted = as_sa("delete", "release", "guarded", "-n", WATCHED, check=False)
        assert deleted.returncode != 0 and "Forbidden" in deleted.stderr, deleted.stderr
        assert admin("get", "release", "guarded", "-n", WATCHED, check=False).returncode == 0, "it was deleted"
        secrets = as_sa("get", "secrets", "-n", WATCHED, check=False)
        assert secrets.returncode != 0 and "Forbidden" in secrets.stderr, secrets.stderr
        elsewhere = as_sa("get", "releases", "-n", OTHER, check=False)
        assert elsewhere.returncode != 0 and "Forbidden" in elsewhere.stderr, elsewhere.stderr
    finally:
        admin("delete", "release", "guarded", "-n", WATCHED, "--wait=true", "--timeout=30s", check=False)


# --------------------------------------------------------------------------- the operator, as the SA


@dataclass
class Replica(OperatorProcess):
    """One pod of the Deployment, as the kubelet would start it: the container's args, with the
    health and metrics ports moved to free ones (several replicas share this host)."""

    args: Sequence[str] = ()

    def command(self) -> list[str]:
        args = list(self.args)
        for flag, port in (("--liveness-port", self.liveness_port), ("--metrics-port", self.metrics_port)):
            assert flag in args, f"the Deployment's args lack {flag}"
            args[args.index(flag) + 1] = str(port)
        return [sys.executable, "-m", "controller.cli", "run", *args]


def container_env(container: dict[str, Any], pod_name: str, pod_namespace: str = CONTROLLER_NS) -> dict[str, str]:
    """The container's env as the kubelet resolves it (values, the pod's name and namespace fields)."""
    env: dict[str, str] = {}
    fields = {"metadata.name": pod_name, "metadata.namespace": pod_namespace}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            field_path = item["valueFrom"]["fieldRef"]["fieldPath"]
            assert field_path in fields, f"this test resolves only the pod's name and namespace, not {field_path}"
            env[item["name"]] = fields[field_path]
    return env


_worlds = itertools.count(1)


@pytest.fixture()
def world(local_env: LocalEnvironment) -> WorldIds:
    aws = AwsClients.from_env(local_env.env_vars())
    return seed_world(aws, name=f"rbac{os.getpid()}x{next(_worlds)}", image="repo/pratiko-backend:1.0.0")


@pytest.fixture()
def replicas(production: dict[str, Any], local_env: LocalEnvironment, sa_kubeconfig: Path,
             tmp_path: Path) -> Iterator[list[Replica]]:
    """`spec.replicas` operator processes under the ServiceAccount's identity, started together."""
    container = production["spec"]["template"]["spec"]["containers"][0]
    started: list[Replica] = []
    try:
        for index in range(production["spec"]["replicas"]):
            pod = f"release-controller-{index}"
            env = {
                **local_env.env_vars(),  # moto and fake credentials stand in for IRSA
                **container_env(container, pod),
                "KUBECONFIG": str(sa_kubeconfig),
            }
            replica = Replica(env, log_path=tmp_path / f"{pod}.log", args=tuple(container["args"]))
            started.append(replica)
            replica.start(timeout=120)
        yield started
    finally:
        for replica in started:
            replica.stop()


def aws_actions(metrics_text: str) -> set[str]:
    """IAM actions of the AWS calls an operator made (its release_controller_aws_calls_total)."""
    found = set()
    for name, value in re.findall(r'^release_controller_aws_calls_total\{operation="([^"]+)"\} (\S+)$', metrics_text, re.M):
        if float(value) > 0:
            prefix, operation = name.split(":", 1)
            found.add(f"{prefix}:{S3_ACTIONS.get(operation, operation) if prefix == 's3' else operation}")
    return found


def log_of(replica: Replica) -> str:
    assert replica.log_path is not None
    return replica.log_path.read_text() if replica.log_path.exists() else ""


def leader_state(replica: Replica) -> str | None:
    """`leading` or `standby`, as the replica's release_controller_leader metric says."""
    found = re.search(r'^release_controller_leader\{reason="[^"]*",state="([^"]+)"\} 1\.0$', replica.metrics(), re.M)
    return found.group(1) if found else None


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    wait_until(check, timeout, what, interval=0.5)


def test_replicas_under_the_service_account_roll_a_release_and_hand_over(
    production: dict[str, Any], admin: Kubectl, replicas: list[Replica], world: WorldIds, local_env: LocalEnvironment
) -> None:
    releases = Releases(admin)
    assert len(replicas) == 2, "the production overlay runs two replicas"
    # Exactly one replica works: the one holding the leader Lease; the other stands by.
    wait_for("one replica leads, the other stands by",
             lambda: sorted(str(leader_state(r)) for r in replicas) == ["leading", "standby"], 60)
    active = next(r for r in replicas if leader_state(r) == "leading")
    standby = next(r for r in replicas if r is not active)

    # The shipped operator runs --tenancy strict: the admin first writes the namespace's ReleasePolicy.
    policy = policy_for(world, f"{WATCHED}-{world.name}", [WATCHED])
    admin("apply", "-f", "-", stdin=yaml.safe_dump(policy))
    releases.apply(release_for(world, name="app", namespace=WATCHED, version="1.0.0", frontend_version="1.0.0"))
    status = releases.wait_phase(WATCHED, "app", "Succeeded", 120)
    assert status["backend"]["stableVersion"] == "1.0.0"
    recorded = aws_actions(active.metrics())
    assert recorded, "the active replica made no AWS call"
    assert not aws_actions(standby.metrics()), "the paused replica called AWS"

    # A rolling update or a drain stops the active pod (SIGTERM): it hands the Lease back and the
    # standby takes over at once, and rolls the next version.
    active.stop()
    wait_for("the standby to take over", lambda: leader_state(standby) == "leading", 30)
    releases.apply(release_for(world, name="app", namespace=WATCHED, version="2.0.0", frontend_version="2.0.0"))
    status = releases.wait_phase(WATCHED, "app", "Succeeded", 120, generation=2)
    assert status["backend"]["stableVersion"] == "2.0.0"
    aws = AwsClients.from_env(local_env.env_vars())
    service = aws.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]
    live_sets = [t for t in service["taskSets"] if t["status"] != "DRAINING"]
    assert len(live_sets) == 1
    image = aws.ecs.describe_task_definition(taskDefinition=live_sets[0]["taskDefinition"])["taskDefinition"][
        "containerDefinitions"][0]["image"]
    assert image.endswith(":2.0.0")
    recorded |= aws_actions(standby.metrics())

    # The Events the controller writes were admitted (ReleaseApi.event would swallow a 403).
    reasons = {e["reason"] for e in releases.events(WATCHED, "app")}
    assert "Accepted" in reasons, reasons
    # Nothing the operator or kopf asked for was refused (kopf degrades quietly on some 403s).
    for replica in replicas:
        log = log_of(replica)
        for refused in ("Forbidden", "Not enough permissions", " 403"):
            assert refused not in log, f"{replica.log_path}: {refused!r} in the operator log"

    # The AWS calls of a real run are allowed by the Terraform policy and seen by the static
    # collector of test_iam_actions.py (which checks the policy against the whole code).
    assert recorded - actions_in_policy() == set(), "AWS calls the IAM policy would deny"
    assert recorded - set(actions_in_code()) == set(), "calls the static collector misses"


def test_the_cluster_wide_scope_grants_the_namespaced_rules_everywhere(
    production: dict[str, Any], admin: Kubectl, as_sa: Kubectl
) -> None:
    """The development overlay (--all-namespaces) applied on top: the same ServiceAccount may now
    work in any namespace, and is still refused the rest (nothing of kopf.dev either). Removed
    again afterwards, back to the production grants."""
    objs = kustomize(OVERLAY_DIR / "development")
    scope = [o for o in objs if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    in_production = {(o["kind"], o["metadata"]["name"]) for o in kustomize(OVERLAY_DIR / "production")}
    added = [o for o in scope if (o["kind"], o["metadata"]["name"]) not in in_production]
    assert added, "the cluster-wide scope adds no binding"
    admin("apply", "-f", "-", stdin=yaml.safe_dump_all(scope))
    try:
        for verb in (("list", "releases.delivery.pratiko.ai", "--all-namespaces"),
                     ("watch", "releases.delivery.pratiko.ai", "--all-namespaces"),
                     ("patch", "releases.delivery.pratiko.ai", "--subresource=status", "-n", OTHER),
                     ("create", "events", "-n", OTHER),
                     ("get", "configmaps", "-n", OTHER)):
            assert can_i(as_sa, *verb), verb
        for verb in (("delete", "releases.delivery.pratiko.ai", "-n", OTHER),
                     ("list", "secrets", "--all-namespaces"),
                     ("list", "configmaps", "-n", OTHER),
                     ("patch", "clusterkopfpeerings.kopf.dev"),
                     ("patch", "kopfpeerings.kopf.dev", "-n", OTHER)):
            assert not can_i(as_sa, *verb), verb
    finally:
        for obj in added:
            admin("delete", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found", check=False)
    assert not can_i(as_sa, "list", "releases.delivery.pratiko.ai", "--all-namespaces")
