"""The release process: one version everywhere, LICENSE and CHANGELOG, the release workflow (actionlint),
and `make dist`'s artifacts (docs/versioning.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

import controller
from controller.testing.dist import dist, sync_versions
from controller.testing.image import IMAGE
from tests.gitops.test_ci_examples import actionlint  # noqa: F401  (a fixture)
from tests.ship.conftest import ROOT
from tests.ship.test_chart import helm  # noqa: F401  (a fixture)

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def test_one_version_everywhere() -> None:
    chart = yaml.safe_load((ROOT / "charts" / "release-controller" / "Chart.yaml").read_text())
    base = yaml.safe_load((ROOT / "manifests" / "base" / "kustomization.yaml").read_text())
    install = (ROOT / "docs" / "install.md").read_text()
    cli = subprocess.run([str(Path(sys.executable).parent / "release-controller"), "--version"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    found = {
        "chart version": chart["version"], "chart appVersion": chart["appVersion"],
        "manifests/base image tag": base["images"][0]["newTag"], "make image's tag": IMAGE.rsplit(":", 1)[1],
        "release-controller --version": cli[-1], "controller.__version__": controller.__version__,
    }
    installs = re.findall(r"--version (\S+)|\?ref=v([\w.+-]+)", install)
    assert installs, "docs/install.md installs no version"
    found |= {f"docs/install.md #{i}": a or b for i, (a, b) in enumerate(installs)}
    assert {k: v for k, v in found.items() if v != VERSION} == {}, f"pyproject.toml says {VERSION}"


def test_sync_writes_pyprojects_version_and_nothing_else(tmp_path: Path) -> None:
    """`make chart` rewrites the copies; on a tree where they agree it changes nothing."""
    files = [ROOT / "charts/release-controller/Chart.yaml", ROOT / "manifests/base/kustomization.yaml",
             ROOT / "docs/install.md"]
    before = {p: p.read_text() for p in files}
    assert sync_versions() == VERSION
    assert {p: p.read_text() for p in files} == before


def test_license_is_the_apache_license_the_package_declares() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 170  # the full text
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == {"text": "Apache-2.0"}
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in (ROOT / "Dockerfile").read_text()


def test_changelog_keeps_a_changelog_with_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "keepachangelog.com" in text and "## [Unreleased]" in text
    assert re.search(rf"^## \[{re.escape(VERSION)}\] - (\d{{4}}-\d{{2}}-\d{{2}}|Unreleased)$", text, re.M), VERSION
    assert re.search(rf"^\[{re.escape(VERSION)}\]: https://", text, re.M)


def test_the_release_workflow_passes_actionlint(actionlint: Path) -> None:  # noqa: F811
    proc = subprocess.run([str(actionlint), "-no-color", str(WORKFLOW)], capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_release_workflow_publishes_what_the_docs_promise() -> None:
    body = yaml.safe_load(WORKFLOW.read_text())
    assert body[True]["push"]["tags"] == ["v*.*.*"]  # YAML 1.1 reads `on` as true
    steps = {job: job_body["steps"] for job, job_body in body["jobs"].items()}
    build = next(s for s in steps["image"] if s.get("uses", "").startswith("docker/build-push-action"))["with"]
    assert build["platforms"] == "linux/amd64,linux/arm64" and build["sbom"] is True
    assert build["provenance"] == "mode=max" and build["push"] is True
    assert body["jobs"]["image"]["permissions"]["id-token"] == "write"
    assert any("cosign sign --yes" in s.get("run", "") for s in steps["image"])
    assert any('helm push' in s.get("run", "") and "oci://ghcr.io/" in s.get("run", "") for s in steps["chart"])
    assert any("gh release create" in s.get("run", "") and "install.yaml" in s.get("run", "")
               for s in steps["github-release"])
    # The chart goes where docs/install.md installs it from.
    assert "oci://ghcr.io/pratiko/charts/release-controller" in (ROOT / "docs" / "install.md").read_text()


@pytest.mark.timeout(1500)
def test_make_dist_writes_the_release_artifacts(helm: Path, tmp_path: Path) -> None:  # noqa: F811
    paths = dist(tmp_path, helm)
    assert sorted(p.name for p in paths) == sorted([
        f"release-controller-{VERSION}.oci.tar", f"release-controller-{VERSION}.tgz", "install.yaml",
        f"release-controller-{VERSION}.cdx.json", "SHA256SUMS"])

    with tarfile.open(tmp_path / f"release-controller-{VERSION}.oci.tar") as archive:
        index = json.load(archive.extractfile("index.json"))  # type: ignore[arg-type]
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == f"release-controller:{VERSION}"

    with tarfile.open(tmp_path / f"release-controller-{VERSION}.tgz") as chart:
        meta = yaml.safe_load(chart.extractfile("release-controller/Chart.yaml"))  # type: ignore[arg-type]
    assert (meta["version"], meta["appVersion"]) == (VERSION, VERSION)

    objs = [o for o in yaml.safe_load_all((tmp_path / "install.yaml").read_text()) if o]
    kinds = [o["kind"] for o in objs]
    assert kinds[:2] == ["CustomResourceDefinition"] * 2, "install.yaml starts with the CRDs"
    assert sorted(o["metadata"]["name"] for o in objs if o["kind"] == "CustomResourceDefinition") == [
        "releasepolicies.delivery.pratiko.ai", "releases.delivery.pratiko.ai"]  # ours only: no kopf.dev peering
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"ghcr.io/pratiko/release-controller:{VERSION}"

    bom = json.loads((tmp_path / f"release-controller-{VERSION}.cdx.json").read_text())
    assert bom["bomFormat"] == "CycloneDX"
    components = {c["name"].lower(): c["version"] for c in bom["components"]}
    assert components.get("release-controller") == VERSION, "the SBOM lacks the package itself"
    for dependency in ("kopf", "boto3", "pydantic", "kubernetes"):
        assert re.fullmatch(r"\d+(\.\d+)+", components.get(dependency, "")), f"the SBOM lacks {dependency}'s version"

    sums = dict(line.split("  ")[::-1] for line in (tmp_path / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {p.name for p in paths if p.name != "SHA256SUMS"}
