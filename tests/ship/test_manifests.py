"""manifests/: each overlay renders to what `kubectl apply -k` needs, the operator's pod meets the
"restricted" Pod Security Standard, RBAC grants only what the controller uses, and the monitoring
objects name metrics the controller really exports.

The server-side dry-run and the RBAC identity run against the real kube-apiserver live with the
end-to-end tests; these checks need only kubectl (for kustomize) and promtool.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from tests.ship.conftest import OVERLAYS, ROOT, find, kustomize, one

BASE_KINDS = {
    "Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
    "Deployment", "PodDisruptionBudget", "Service", "NetworkPolicy",
}
MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
ADMISSION_KINDS = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}  # manifests/admission
EXPECTED_KINDS = {
    "development": BASE_KINDS | ADMISSION_KINDS | {"RoleBinding"},
    "staging": BASE_KINDS | ADMISSION_KINDS | {"RoleBinding"} | MONITORING_KINDS,
    "production": BASE_KINDS | ADMISSION_KINDS | {"RoleBinding"} | MONITORING_KINDS,
}

# (apiGroup, resource) -> verbs: what controller/kube/client.py, controller/contract/check.py, controller/operator/
# and kopf call. NAMESPACED_RULES are needed wherever Releases are watched; CLUSTER_RULES always,
# cluster-wide (kopf's resource and namespace observers). Nothing of kopf.dev: kopf runs without peering.
NAMESPACED_RULES = {
    ("delivery.pratiko.ai", "releases"): {"get", "list", "watch", "patch"},
    ("delivery.pratiko.ai", "releases/status"): {"patch"},
    ("", "events"): {"create"},
    ("", "configmaps"): {"get"},  # the API-contract gate's `apiContract.configMap`
    ("", "secrets"): {"get"},  # by name: gitops.secretRef (write-back), a notification's urlSecretRef
    # Its own RoleBinding, by name: the finalizer that keeps it while the namespace is being deleted
    # (controller/kube/bindings.py); the admission policy allows nothing else.
    ("rbac.authorization.k8s.io", "rolebindings[release-controller]"): {"patch"},
}
CLUSTER_RULES = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("", "namespaces"): {"list", "watch"},
    ("delivery.pratiko.ai", "releasepolicies"): {"get", "list", "watch"},  # tenancy (controller/tenancy)
}
# In the operator's own namespace only: controller/kube/claims.py (one Lease per claimed AWS resource:
# read, created, rewritten, listed by holder) and controller/operator/leadership.py (the leader
# Lease: read, created, renewed). Nothing deletes, watches or patches a Lease.
CLAIM_RULES = {("coordination.k8s.io", "leases"): {"get", "list", "create", "update"}}
# (group, resource) -> verbs; a rule restricted to named objects as (group, "resource[name]").
Grants = dict[tuple[str, str], set[str]]


def _rules(role: dict[str, Any]) -> Grants:
    granted: Grants = {}
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for named in [f"{resource}[{n}]" for n in rule["resourceNames"]] if "resourceNames" in rule else [resource]:
                    granted.setdefault((group, named), set()).update(rule["verbs"])
    return granted


def effective_grants(objs: list[dict[str, Any]], subject: dict[str, str]) -> tuple[Grants, dict[str, Grants]]:
    """What `subject` may do: (cluster-wide grants, namespace -> grants from RoleBindings)."""
    roles = {o["metadata"]["name"]: _rules(o) for o in find(objs, "ClusterRole")}

    def merge(into: Grants, grants: Grants) -> None:
        for key, verbs in grants.items():
            into.setdefault(key, set()).update(verbs)

    cluster: Grants = {}
    namespaced: dict[str, Grants] = {}
    for binding in find(objs, "ClusterRoleBinding") + find(objs, "RoleBinding"):
        assert binding["subjects"] == [subject], f"{binding['metadata']['name']} binds {binding['subjects']}"
        assert binding["roleRef"]["kind"] == "ClusterRole" and binding["roleRef"]["name"] in roles, binding["roleRef"]
        grants = roles[binding["roleRef"]["name"]]
        if binding["kind"] == "ClusterRoleBinding":
            merge(cluster, grants)
        else:
            merge(namespaced.setdefault(binding["metadata"]["namespace"], {}), grants)
    return cluster, namespaced


def controller_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_expected_kinds(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    kinds = {o["kind"] for o in rendered[overlay]}
    assert kinds == EXPECTED_KINDS[overlay]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_crd_is_the_generated_one(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    generated = yaml.safe_load((ROOT / "crds" / "release.yaml").read_text())
    shipped = one(rendered[overlay], "CustomResourceDefinition", "releases.delivery.pratiko.ai")
    assert shipped["spec"] == generated["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_meets_the_restricted_pod_security_standard(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    """The "restricted" profile, field by field (kubernetes.io/docs/concepts/security/pod-security-standards)."""
    namespace = one(rendered[overlay], "Namespace", "release-controller")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = one(rendered[overlay], "Deployment", "release-controller")["spec"]["template"]["spec"]
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(host), host
    pod_sc = pod.get("securityContext", {})
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
    for volume in pod.get("volumes", []):
        assert set(volume) - {"name"} <= allowed_volumes, volume
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container.get("securityContext", {})
        assert sc.get("privileged") in (None, False)
        assert sc.get("allowPrivilegeEscalation") is False
        assert sc.get("capabilities", {}).get("drop") == ["ALL"]
        assert set(sc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True
        assert sc.get("runAsUser", pod_sc.get("runAsUser", 1)) != 0
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
        assert seccomp.get("type") in ("RuntimeDefault", "Localhost")
        assert sc.get("readOnlyRootFilesystem") is True  # beyond the profile: the image writes only /tmp
        assert all(not p.get("hostPort") for p in container.get("ports", []))
    mounts = {m["mountPath"] for m in controller_container({"spec": {"template": {"spec": pod}}})["volumeMounts"]}
    assert "/tmp" in mounts


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_resources_and_ports(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    container = controller_container(one(rendered[overlay], "Deployment", "release-controller"))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz" and ports.get(get["port"], get["port"]) == 8080, probe
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    args = container["args"]
    assert args[args.index("--liveness-port") + 1] == "8080"
    assert args[args.index("--metrics-port") + 1] == "9090"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_args_parse_with_the_real_cli_and_name_no_deprecated_flag(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """The Deployment's args are accepted by `release-controller run`, with none of the flags that
    are only still parsed for the Deployments of earlier releases (kopf peering's)."""
    from controller.cli import app

    objs = rendered[overlay]
    deployment = one(objs, "Deployment", "release-controller")
    run = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    params = run.make_context("run", list(controller_container(deployment)["args"])).params
    assert params["peering"] is None and params["priority"] is None, "--peering and --priority are deprecated"
    assert bool(params["all_namespaces"]) != bool(params["namespace"]), "exactly one watch scope"
    replicas = deployment["spec"]["replicas"]
    pdb = one(objs, "PodDisruptionBudget", "release-controller")["spec"]
    if replicas == 1:
        assert pdb.get("minAvailable") is None, "minAvailable with one replica blocks every node drain"
    else:
        assert pdb["minAvailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_and_service_account_line_up(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    objs = rendered[overlay]
    deployment = one(objs, "Deployment", "release-controller")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        obj = one(objs, kind)
        selector = obj["spec"]["selector" if kind == "PodDisruptionBudget" else "podSelector"]["matchLabels"]
        assert selector.items() <= pod_labels.items(), kind
    service = one(objs, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    sa_name = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    sa = one(objs, "ServiceAccount", sa_name)
    role_arn = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    # The role Terraform creates for this environment (terraform/main.tf, module controller_iam).
    assert re.fullmatch(rf"arn:aws:iam::\d{{12}}:role/release-controller-{overlay}", role_arn), role_arn
    subject = {"kind": "ServiceAccount", "name": sa_name, "namespace": deployment["metadata"]["namespace"]}
    for binding in find(objs, "ClusterRoleBinding") + find(objs, "RoleBinding"):
        assert binding["subjects"] == [subject], binding["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rbac_grants_only_what_the_controller_uses(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    """Cluster-wide: only kopf's observers (plus everything, with --all-namespaces); the
    namespaced rules only in the namespaces the Deployment's args watch."""
    from controller.cli import app

    objs = rendered[overlay]
    assert not find(objs, "Role"), "roles are ClusterRoles, bound per namespace by RoleBindings"
    deployment = one(objs, "Deployment", "release-controller")
    subject = {"kind": "ServiceAccount", "name": "release-controller", "namespace": deployment["metadata"]["namespace"]}
    cluster, namespaced = effective_grants(objs, subject)
    run = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    params = run.make_context("run", list(controller_container(deployment)["args"])).params
    own = deployment["metadata"]["namespace"]
    if params["all_namespaces"]:
        assert cluster == {**CLUSTER_RULES, **NAMESPACED_RULES}
        assert namespaced == {own: CLAIM_RULES}
    else:
        assert cluster == CLUSTER_RULES
        assert namespaced == {ns: NAMESPACED_RULES for ns in params["namespace"]} | {own: CLAIM_RULES}


def _metric_names() -> set[str]:
    from controller import metrics

    names: set[str] = set()
    for family in metrics.REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    # Counters without samples yet still export *_total; histograms export *_bucket/_sum/_count.
    for family in metrics.REGISTRY.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def _promql_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\b(release_controller_[a-z_]+)\b", expr))


def test_alert_rules_are_valid_promql_over_real_metrics(tmp_path: Path) -> None:
    rule = yaml.safe_load((ROOT / "manifests" / "monitoring" / "prometheusrule.yaml").read_text())
    groups = rule["spec"]["groups"]
    alerts = {r["alert"] for g in groups for r in g["rules"]}
    # The seed's alerts: API error rate, rollback, canary trouble, drift, controller down.
    assert {"ReleaseControllerAPIErrorRate", "ReleaseRollbackTriggered", "ReleaseCanaryAnalysisInconclusive",
            "ReleaseDriftDetected", "ReleaseControllerDown"} <= alerts
    exported = _metric_names()
    for g in groups:
        for r in g["rules"]:
            unknown = _promql_metrics(r["expr"]) - exported
            assert not unknown, f"{r['alert']} uses metrics controller/metrics.py does not export: {unknown}"
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) checks the rules' PromQL"
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dashboard_panels_cover_phases_weights_analysis_and_rollbacks() -> None:
    dashboard = json.loads((ROOT / "manifests" / "monitoring" / "dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = set().union(*(_promql_metrics(e) for e in exprs))
    assert {"release_controller_release_phase", "release_controller_canary_weight",
            "release_controller_analysis_total", "release_controller_rollbacks_total"} <= used
    assert not used - _metric_names(), used - _metric_names()


def test_service_monitor_scrapes_the_metrics_service(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objs = rendered["production"]
    monitor = one(objs, "ServiceMonitor")
    service = one(objs, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    # The alert rules match on job=<Service name>, the Prometheus Operator's default job label.
    rules = one(objs, "PrometheusRule")
    assert any(f'job="{service["metadata"]["name"]}"' in r["expr"] for g in rules["spec"]["groups"] for r in g["rules"])
    dashboard = one(objs, "ConfigMap", "release-controller-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    json.loads(dashboard["data"]["release-controller.json"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_ships_the_flags_policy_cluster_scoped(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    """The ValidatingAdmissionPolicy of manifests/admission, bound, with no namespace (it is
    cluster-scoped; kustomize would give it base's namespace if it lived there)."""
    shipped = {o["kind"]: o for o in rendered[overlay] if o["kind"] in ADMISSION_KINDS}
    source = {d["kind"]: d for d in yaml.safe_load_all((ROOT / "manifests" / "admission" / "release-flags-policy.yaml").read_text())}
    assert shipped.keys() == source.keys() == ADMISSION_KINDS
    for kind, obj in shipped.items():
        assert "namespace" not in obj["metadata"], kind
        assert obj["spec"] == source[kind]["spec"], kind
    policy, binding = shipped["ValidatingAdmissionPolicy"], shipped["ValidatingAdmissionPolicyBinding"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"] and policy["spec"]["failurePolicy"] == "Fail"


def test_crds_apply_on_their_own() -> None:
    """`kubectl apply -k manifests/crds` installs every CRD before the objects that use them."""
    kinds = {(o["kind"], o["metadata"]["name"]) for o in kustomize(ROOT / "manifests" / "crds")}
    assert kinds == {
        ("CustomResourceDefinition", "releases.delivery.pratiko.ai"),
        ("CustomResourceDefinition", "releasepolicies.delivery.pratiko.ai"),
    }


def kopf_dev_in(objs: list[dict[str, Any]]) -> list[str]:
    """Everything of kopf.dev among `objs`: its objects (KopfPeering...), CRDs of its group, and RBAC
    rules that name the group (or every group)."""
    found = [f"{o['kind']} {o['metadata']['name']}" for o in objs if o.get("apiVersion", "").startswith("kopf.dev/")]
    found += [f"CRD {o['metadata']['name']}" for o in find(objs, "CustomResourceDefinition")
              if o["spec"]["group"] == "kopf.dev"]
    found += [f"{o['kind']} {o['metadata']['name']}: {r}" for o in find(objs, "ClusterRole") + find(objs, "Role")
              for r in o.get("rules", []) if {"kopf.dev", "*"} & set(r.get("apiGroups", []))]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nothing_of_kopf_peering_is_shipped(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    """kopf runs without peering (controller/operator/main.py): an install applies no KopfPeering or
    ClusterKopfPeering, no kopf.dev CRD, and grants no right on kopf.dev, and the pod's args name no
    --peering (still parsed, deprecated, for the Deployments of earlier releases)."""
    objs = rendered[overlay]
    assert kopf_dev_in(objs) == []
    args = controller_container(one(objs, "Deployment", "release-controller"))["args"]
    assert not {"--peering", "--priority"} & set(args), args
