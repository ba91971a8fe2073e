"""charts/release-controller: `helm lint`, `helm template` with the real helm (built from its Go
module, controller/testing/helm.py), and the chart against the kustomize output it must equal.

`charts/release-controller/ci/<overlay>-values.yaml` says, in chart values, what each kustomize
overlay says in patches. The chart rendered with them must give the same objects as
`kubectl kustomize manifests/overlays/<overlay>`: the same kinds and names, the same RBAC grants,
the same pod and container settings, the same CRDs, alert rules and dashboard. Only labels and
annotations may differ, and only by what Helm adds (instance, chart, managed-by) and by the
wording of checkov's skip reasons. So a change to one side that the other lacks fails here.

The server-side dry-run of the rendered chart on the local kube-apiserver (restricted Pod
Security) is in test_chart_cluster.py, with the other tests that need servers.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from controller.testing.helm import HELM_VERSION, ensure_helm
from tests.ship.conftest import OVERLAYS, ROOT, find, kustomize, one
from tests.ship.test_manifests import controller_container, effective_grants, kopf_dev_in

CHART = ROOT / "charts" / "release-controller"
RELEASE_NS = "release-controller"
# Labels Helm (or our chart for Helm's sake) adds, and kustomize's managed-by: not compared.
HELM_LABELS = {"helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by"}
# Copies the chart keeps of files that live elsewhere (helm reads only files inside the chart).
COPIES = {
    "crds/release.yaml": ROOT / "crds" / "release.yaml",
    "crds/releasepolicy.yaml": ROOT / "crds" / "releasepolicy.yaml",
    "files/dashboard.json": ROOT / "manifests" / "monitoring" / "dashboard.json",
    "files/prometheusrule.yaml": ROOT / "manifests" / "monitoring" / "prometheusrule.yaml",
    "files/release-flags-policy.yaml": ROOT / "manifests" / "admission" / "release-flags-policy.yaml",
    "files/rolebinding-policy.yaml": ROOT / "manifests" / "admission" / "rolebinding-policy.yaml",
}

Objects = list[dict[str, Any]]


@pytest.fixture(scope="session")
def helm() -> Path:
    return ensure_helm()


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120, check=False)


def template(helm: Path, *args: str) -> Objects:
    """`helm template` of the chart into the release-controller namespace, CRDs included."""
    out = run_helm(helm, "template", "release-controller", str(CHART), "--namespace", RELEASE_NS, "--include-crds", *args)
    assert out.returncode == 0, f"helm template {' '.join(args)} failed:\n{out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def values_of(overlay: str) -> str:
    return str(CHART / "ci" / f"{overlay}-values.yaml")


@pytest.fixture(scope="session")
def charted(helm: Path) -> dict[str, Objects]:
    return {overlay: template(helm, "-f", values_of(overlay)) for overlay in OVERLAYS}


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def test_helm_is_the_pinned_release(helm: Path) -> None:
    out = run_helm(helm, "version", "--short")
    assert out.returncode == 0 and out.stdout.startswith(HELM_VERSION), out.stdout + out.stderr


@pytest.mark.parametrize("values", ["defaults", *OVERLAYS])
def test_helm_lint_is_clean(helm: Path, values: str) -> None:
    args = [] if values == "defaults" else ["-f", values_of(values)]
    out = run_helm(helm, "lint", "--strict", str(CHART), "--namespace", RELEASE_NS, *args)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout, out.stdout


def test_the_chart_keeps_exact_copies_of_the_shared_files() -> None:
    """`make chart` refreshes them; an edit to manifests/ or a `make crds` without it fails here."""
    for inside, source in COPIES.items():
        assert (CHART / inside).read_text() == source.read_text(), f"{inside} differs from {source}; run `make chart`"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_chart_renders_what_the_overlay_renders(
    charted: dict[str, Objects], rendered: dict[str, Objects], overlay: str
) -> None:
    chart = {_key(o): o for o in charted[overlay]}
    kust = {_key(o): o for o in rendered[overlay]}
    assert sorted(chart) == sorted(kust), "the chart and the overlay render different objects"
    for key, ours in chart.items():
        theirs = kust[key]
        if key[0] == "CustomResourceDefinition":  # helm applies crds/ as they are, unlabelled
            assert ours["spec"] == theirs["spec"], key
            continue
        wanted = {k: v for k, v in theirs["metadata"].get("labels", {}).items() if k not in HELM_LABELS}
        labels = ours["metadata"].get("labels", {})
        assert wanted.items() <= labels.items(), f"{key}: labels {labels} lack {wanted}"

        def annotations(obj: dict[str, Any]) -> dict[str, str]:
            found = obj["metadata"].get("annotations", {})
            return {k: v for k, v in found.items() if not k.startswith("checkov.io/")}

        assert annotations(ours) == annotations(theirs), key
        strip = {k: v for k, v in ours.items() if k != "metadata"}
        assert strip == {k: v for k, v in theirs.items() if k != "metadata"}, f"{key} differs"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_chart_grants_the_same_rbac_and_runs_the_same_container(
    charted: dict[str, Objects], rendered: dict[str, Objects], overlay: str
) -> None:
    """The two things a reviewer of an install cares most about, said on their own."""
    subject = {"kind": "ServiceAccount", "name": "release-controller", "namespace": RELEASE_NS}
    assert effective_grants(charted[overlay], subject) == effective_grants(rendered[overlay], subject)
    ours = one(charted[overlay], "Deployment", "release-controller")
    theirs = one(rendered[overlay], "Deployment", "release-controller")
    assert controller_container(ours) == controller_container(theirs)
    pod_ours, pod_theirs = ours["spec"]["template"]["spec"], theirs["spec"]["template"]["spec"]
    for field in ("securityContext", "serviceAccountName", "volumes", "automountServiceAccountToken"):
        assert pod_ours[field] == pod_theirs[field], field
    assert ours["spec"]["replicas"] == theirs["spec"]["replicas"]


def test_defaults_watch_everything_with_two_replicas(helm: Path) -> None:
    from controller.cli import app

    objs = template(helm)
    deployment = one(objs, "Deployment", "release-controller")
    assert deployment["spec"]["replicas"] == 2
    assert one(objs, "PodDisruptionBudget", "release-controller")["spec"]["minAvailable"] == 1
    run = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    params = run.make_context("run", list(controller_container(deployment)["args"])).params
    assert params["all_namespaces"] and params["peering"] is None and params["priority"] is None
    assert params["log_format"] == "json" and params["resync"] == 30
    assert not find(objs, "ServiceMonitor") and not find(objs, "PrometheusRule") and not find(objs, "ConfigMap")


def test_a_shard_gets_its_own_names_and_selector(helm: Path) -> None:
    """Two Helm releases of the chart can shard one cluster's Releases (docs/sharding.md)."""
    from controller.cli import app

    objs = template(helm, "--set", "name=rc-payments", "--set", "watch.selector=team=payments")
    deployment = one(objs, "Deployment", "rc-payments")
    run = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    params = run.make_context("run", list(controller_container(deployment)["args"])).params
    assert params["selector"] == "team=payments" and params["peering"] is None
    cluster_scoped = [o["metadata"]["name"] for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    assert cluster_scoped and all(name.startswith("rc-payments") for name in cluster_scoped), cluster_scoped
    # Its alert rules watch its own scrape job (the metrics Service's name).
    monitored = template(helm, "--set", "name=rc-payments", "--set", "monitoring.prometheusRule.enabled=true")
    rules = json.dumps(one(monitored, "PrometheusRule", "rc-payments")["spec"])
    assert 'job=\\"rc-payments-metrics\\"' in rules and "release-controller-metrics" not in rules
    assert one(monitored, "Service", "rc-payments-metrics")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--set", "replicas=0"], "replicas"),
        (["--set", "logFormat=xml"], "logFormat"),
        (["--set", "aws.roleArn=role/x"], "roleArn"),
        (["--set", "image.tag=latest"], "tag"),
        # A production install must name its IAM role: the default is a placeholder account.
        (["--set", "production=true"], "roleArn"),
        (["--set", "resync=-1"], "resync"),
        (["--set", "unknownKey=1"], "unknownKey"),
        (["--set", "watch.allNamespaces=false"], "watch: set allNamespaces: true or list the namespaces"),
        # Removed with kopf peering: an upgrade that still sets it is told why, before anything changes.
        (["--set", "peering=release-controller"], "peering: removed (kopf peering is gone"),
        (["--set", "peering="], "peering: removed (kopf peering is gone"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(helm: Path, args: list[str], complaint: str) -> None:
    out = run_helm(helm, "template", "release-controller", str(CHART), "--namespace", RELEASE_NS, *args)
    assert out.returncode != 0, out.stdout
    assert complaint in out.stderr, out.stderr


def test_a_production_install_with_its_own_role_renders(helm: Path) -> None:
    role = "arn:aws:iam::111122223333:role/release-controller"
    objs = template(helm, "--set", "production=true", "--set", f"aws.roleArn={role}")
    assert one(objs, "ServiceAccount")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role
    assert one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"].endswith(
        ":" + yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


def test_the_admission_policy_follows_the_clusters_version(helm: Path) -> None:
    """kubeVersion admits 1.29, where admissionregistration.k8s.io/v1 policies are not served: the
    chart refuses to render one there, with the value to set, and renders none when it is off."""
    policy_kinds = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.29.0-0"
    old = run_helm(helm, "template", "release-controller", str(CHART), "--kube-version", "1.29.4")
    assert old.returncode != 0 and "admissionPolicy.enabled=false" in old.stderr, old.stderr
    off = template(helm, "--kube-version", "1.29.4", "--set", "admissionPolicy.enabled=false")
    assert not {o["kind"] for o in off} & policy_kinds and find(off, "Deployment")
    on = template(helm, "--kube-version", "1.30.0")
    assert policy_kinds <= {o["kind"] for o in on}


def test_the_binding_policy_and_rule_follow_the_releases_name(helm: Path) -> None:
    """Another release name: the operator may patch that release's RoleBinding, the admission
    policy judges that release's ServiceAccount, and the operator is told the binding's name."""
    objs = template(helm, "--set", "name=rc-b", "--set", "watch.allNamespaces=false", "--set", "watch.namespaces={apps}")
    binding = one(objs, "RoleBinding", "rc-b")
    assert binding["metadata"]["finalizers"] == ["delivery.pratiko.ai/releases-gone"]
    rules = one(objs, "ClusterRole", "rc-b")["rules"]
    assert {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": ["patch"],
            "resourceNames": ["rc-b"]} in rules
    policy = one(objs, "ValidatingAdmissionPolicy", "rc-b-bindings")
    assert [c["expression"] for c in policy["spec"]["matchConditions"]] == [
        f"request.userInfo.username == 'system:serviceaccount:{RELEASE_NS}:rc-b'"]
    assert one(objs, "ValidatingAdmissionPolicyBinding", "rc-b-bindings")["spec"]["policyName"] == "rc-b-bindings"
    env = {e["name"]: e.get("value") for e in controller_container(one(objs, "Deployment", "rc-b"))["env"]}
    assert env["RELEASE_CONTROLLER_ROLEBINDING"] == "rc-b"


def test_without_the_admission_policy_the_binding_has_no_finalizer_and_no_patch_right(helm: Path) -> None:
    """admissionPolicy.enabled=false (Kubernetes 1.29): nothing would stop the operator from adding
    subjects to its binding, so it gets neither the right to patch it nor the finalizer."""
    objs = template(helm, "--set", "admissionPolicy.enabled=false", "--set", "watch.allNamespaces=false",
                    "--set", "watch.namespaces={apps}")
    assert "finalizers" not in one(objs, "RoleBinding", "release-controller")["metadata"]
    rules = one(objs, "ClusterRole", "release-controller")["rules"]
    assert not [r for r in rules if "rolebindings" in r["resources"]], rules


@pytest.mark.parametrize("values", [
    [],
    ["--set", "watch.allNamespaces=false", "--set", "watch.namespaces={apps,shop}"],
    ["--set", "name=rc-payments", "--set", "watch.selector=team=payments"],
    ["--set", "admissionPolicy.enabled=false", "--set", "monitoring.serviceMonitor.enabled=true",
     "--set", "monitoring.prometheusRule.enabled=true", "--set", "monitoring.dashboard.enabled=true"],
])
def test_nothing_of_kopf_peering_is_rendered(helm: Path, values: list[str]) -> None:
    """Whatever the scope: no KopfPeering or ClusterKopfPeering, no kopf.dev CRD in crds/ (helm
    installs them all, --include-crds here), no right on kopf.dev, no --peering in the args."""
    objs = template(helm, *values)
    assert kopf_dev_in(objs) == []
    assert not list((CHART / "crds").glob("kopf*")), "helm would install every file of crds/"
    args = controller_container(one(objs, "Deployment"))["args"]
    assert not {"--peering", "--priority"} & set(args), args
