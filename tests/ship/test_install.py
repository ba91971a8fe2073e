"""docs/install.md, run as written against a new, empty API server: once with Helm, once with kustomize.

Each marked block (`<!-- install: NAME -->` above a fence) is run by bash -euo pipefail, or written
where its first comment line says, with only what is published swapped for this checkout:
`oci://ghcr.io/pratiko/charts/release-controller --version V` becomes charts/release-controller,
`https://github.com/pratiko/release-controller//PATH?ref=V` becomes PATH here, and the image
repository becomes the one `make image` tags (localhost/release-controller), whose tag is the same
version. Nothing else is added: a doc that forgets a step fails here.

Each install gets an API server of its own (etcd + kube-apiserver, controller/testing/kube.py), so
nothing another test installed can make a step pass that would fail on a new cluster. There is no
kubelet: the test checks what the API server holds (every object, the image reference, the IRSA
role, the admission policy that refuses an out-of-bounds flag).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.testing.image import IMAGE, REPOSITORY, version
from controller.testing.kube import KubeApiServer
from controller.testing.ports import wait_until
from tests.e2e.helpers import Kubectl
from tests.ship.conftest import PUBLISHED_IMAGE, ROOT
from tests.ship.test_chart import helm  # noqa: F401  (a fixture)
from tests.ship.test_cluster import PROMETHEUS_OPERATOR_CRDS

pytestmark = [pytest.mark.servers, pytest.mark.timeout(600)]

DOC = ROOT / "docs" / "install.md"
PUBLISHED_CHART = re.compile(r"oci://ghcr\.io/pratiko/charts/release-controller --version \S+")
PUBLISHED_TREE = re.compile(r"https://github\.com/pratiko/release-controller//([\w/.-]+)\?ref=[\w.-]+")
ROLE = "arn:aws:iam::111122223333:role/release-controller"


def block(name: str, relative_to: Path | None = None) -> str:
    """The fenced block under `<!-- install: name -->`, with the published sources made local
    (relative to `relative_to` when given: kustomize refuses absolute paths inside a kustomization)."""
    match = re.search(rf"<!-- install: {re.escape(name)} -->\n```\w+\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"docs/install.md has no block marked install: {name}"
    text = PUBLISHED_CHART.sub(str(ROOT / "charts" / "release-controller"), match.group(1))
    return PUBLISHED_TREE.sub(
        lambda m: os.path.relpath(ROOT / m.group(1), relative_to) if relative_to else str(ROOT / m.group(1)), text)


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Kubectl]:
    """A new, empty API server of this test's own."""
    server = KubeApiServer(tmp_path / "kube")
    kubeconfig = server.start(timeout=240)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBECONFIG")}
        yield Kubectl({**env, "KUBECONFIG": str(kubeconfig)})
    finally:
        server.stop()


def run(script: str, kubectl: Kubectl, cwd: Path, path_extra: Path | None = None) -> str:
    env = dict(kubectl.env)
    if path_extra is not None:
        env["PATH"] = f"{path_extra}:{env['PATH']}"
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, text=True,
                         capture_output=True, timeout=240, check=False)
    assert out.returncode == 0, f"{script}\n--- exit {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def get(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json").stdout)
    return found


def refuses_a_flag_out_of_bounds(kubectl: Kubectl, namespace: str) -> str:
    """A Release whose feature flag rolls out to 150% is refused by the admission policy (the CRD's
    schema cannot type flags, so only the policy can refuse it); returns the refusal."""
    body = yaml.safe_load((ROOT / "manifests" / "examples" / "canary.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    body["spec"]["featureFlags"] = {"new-checkout": {"enabled": True, "rolloutPercent": 150}}
    refusal: list[str] = []

    def refused() -> bool:
        out = kubectl("create", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(body), check=False)
        refusal[:] = [out.stderr if out.returncode != 0 else ""]
        return bool(refusal[0])

    # A policy just installed is enforced once the API server's policy informer has it (about a
    # second after its binding is created): wait for that, bounded, then report what was said.
    try:
        wait_until(refused, 20, "the admission policy to be enforced", interval=0.5)
    except TimeoutError:
        pass
    return refusal[0]


def test_helm_install_as_the_docs_say(cluster: Kubectl, helm: Path, tmp_path: Path) -> None:  # noqa: F811
    script = block("helm")
    assert "helm install" in script
    # The image `make image` tags, under the published repository's name.
    script = script.replace("--namespace release-controller", f"--namespace release-controller --set image.repository={REPOSITORY}", 1)
    run(script, cluster, tmp_path, path_extra=helm.parent)

    deployment = get(cluster, "deployment", "release-controller", "-n", "release-controller")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    account = get(cluster, "serviceaccount", "release-controller", "-n", "release-controller")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == ROLE
    for crd in ("releases.delivery.pratiko.ai", "releasepolicies.delivery.pratiko.ai"):
        assert get(cluster, "crd", crd)["metadata"]["name"] == crd
    assert "kopf.dev" not in cluster("get", "crd", "-o", "name").stdout, "kopf runs without peering: no CRD of its"
    cluster("create", "namespace", "shop")
    assert "featureFlags" in refuses_a_flag_out_of_bounds(cluster, "shop")
    # `kubectl explain` answers from the CRD's descriptions (the API server publishes them shortly
    # after the CRD is established).
    wait_until(lambda: "How the new version is judged" in cluster("explain", "release.spec.analysis", check=False).stdout,
               60, "kubectl explain release.spec.analysis to print the field's description")
    failure_limit = cluster("explain", "release.spec.analysis.failureLimit").stdout
    assert "Failed measurements tolerated" in failure_limit, failure_limit


def test_kustomize_install_as_the_docs_say(cluster: Kubectl, tmp_path: Path) -> None:
    # The docs keep the monitoring component where the Prometheus Operator's CRDs exist: here,
    # stand-ins of them (test_cluster.py says why).
    cluster("apply", "-f", "-", stdin=yaml.safe_dump_all(PROMETHEUS_OPERATOR_CRDS))
    run(block("kustomize-crds"), cluster, tmp_path)

    where = block("kustomize-overlay").splitlines()[0].removeprefix("#").strip()
    overlay = block("kustomize-overlay", relative_to=(tmp_path / where).parent)
    doc = yaml.safe_load(overlay)
    assert PUBLISHED_IMAGE not in overlay and "images" not in doc
    doc["images"] = [{"name": PUBLISHED_IMAGE, "newName": REPOSITORY, "newTag": version()}]
    (tmp_path / where).parent.mkdir(parents=True)
    (tmp_path / where).write_text(yaml.safe_dump(doc))
    run(block("kustomize-apply"), cluster, tmp_path)

    deployment = get(cluster, "deployment", "release-controller", "-n", "release-controller")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    account = get(cluster, "serviceaccount", "release-controller", "-n", "release-controller")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == f"{ROLE}-production"
    assert "kopf.dev" not in cluster("get", "crd", "-o", "name").stdout, "kopf runs without peering: no CRD of its"
    assert get(cluster, "servicemonitor", "release-controller", "-n", "release-controller")
    assert "featureFlags" in refuses_a_flag_out_of_bounds(cluster, "production")
