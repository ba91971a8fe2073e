"""Argo CD's own tests of our Release customization (health_test.yaml, actions/action_test.yaml),
run in gopher-lua the way Argo CD runs a script from argocd-cm: base, table and package libraries,
a safe os module, nothing else (controller/testing/go/argocd-lua).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from controller.testing.gitops import ARGOCD_RELEASE, argo_health, argocd_lua_binary, render_argocd_cm, run_argocd_tests

pytestmark = pytest.mark.timeout(900)  # the first run builds the runner from its Go module


def test_every_health_and_action_case_passes() -> None:
    proc = run_argocd_tests(ARGOCD_RELEASE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = re.search(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.MULTILINE)
    assert summary, proc.stdout
    health = yaml.safe_load((ARGOCD_RELEASE / "health_test.yaml").read_text())["tests"]
    actions = yaml.safe_load((ARGOCD_RELEASE / "actions" / "action_test.yaml").read_text())
    expected = len(health) + len(actions["discoveryTests"]) + len(actions["actionTests"])
    assert (int(summary[1]), int(summary[2])) == (expected, 0), proc.stdout


def test_every_testdata_object_has_a_health_case() -> None:
    listed = {t["inputPath"] for t in yaml.safe_load((ARGOCD_RELEASE / "health_test.yaml").read_text())["tests"]}
    on_disk = {f"testdata/{p.name}" for p in (ARGOCD_RELEASE / "testdata").glob("*.yaml")}
    assert listed == on_disk


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    """The runner really compares: a copy of the suite with one verdict changed fails that case."""
    copy = tmp_path / "Release"
    shutil.copytree(ARGOCD_RELEASE, copy)
    suite = yaml.safe_load((copy / "health_test.yaml").read_text())
    suite["tests"][0]["healthStatus"]["status"] = "Degraded"
    (copy / "health_test.yaml").write_text(yaml.safe_dump(suite))
    actions = yaml.safe_load((copy / "actions" / "action_test.yaml").read_text())
    actions["discoveryTests"][0]["result"][0]["disabled"] = not actions["discoveryTests"][0]["result"][0]["disabled"]
    (copy / "actions" / "action_test.yaml").write_text(yaml.safe_dump(actions))
    proc = run_argocd_tests(copy)
    assert proc.returncode == 1
    assert proc.stdout.count("FAIL ") == 2 and proc.stdout.rstrip().endswith(" 2 failed"), proc.stdout


@pytest.mark.parametrize("library", ["string.format('%d', 1)", "math.floor(1.5)", "io.write('x')"])
def test_only_argo_cds_default_libraries_are_open(tmp_path: Path, library: str) -> None:
    """A script reaching for string, math or io fails here as it fails in Argo CD (without useOpenLibs)."""
    script = tmp_path / "health.lua"
    script.write_text(f"local x = {library}\nreturn {{status = 'Healthy'}}\n")
    with pytest.raises(RuntimeError, match="attempt to index a non-table object"):
        argo_health({"metadata": {"name": "x"}}, script)


def test_the_safe_os_module_has_time_and_date_only(tmp_path: Path) -> None:
    script = tmp_path / "health.lua"
    script.write_text("local os = require('os')\n"
                      "return {status = 'Healthy', message = tostring(os.execute) .. ' ' .. os.date('!%Y')}\n")
    verdict = argo_health({"metadata": {"name": "x"}}, script)
    assert verdict.status == "Healthy" and re.fullmatch(r"nil \d{4}", verdict.message), verdict


def test_the_runner_is_built_from_the_pinned_gopher_lua() -> None:
    gomod = (Path(__file__).resolve().parents[2] / "controller/testing/go/argocd-lua/go.mod").read_text()
    assert "github.com/yuin/gopher-lua v1.1.1" in gomod  # the version Argo CD v2.x/v3.x requires
    assert argocd_lua_binary().is_file()


def test_the_argocd_cm_snippet_carries_the_scripts_verbatim() -> None:
    """integrations/argocd/argocd-cm.yaml is what a user installs: the same scripts these tests run."""
    text = (ARGOCD_RELEASE.parents[2] / "argocd-cm.yaml").read_text()
    assert text == render_argocd_cm(), "regenerate: python -m controller.testing.gitops > integrations/argocd/argocd-cm.yaml"
    data = yaml.safe_load(text)["data"]
    assert data["resource.customizations.health.delivery.pratiko.ai_Release"] == (ARGOCD_RELEASE / "health.lua").read_text()
    actions = yaml.safe_load(data["resource.customizations.actions.delivery.pratiko.ai_Release"])
    assert actions["discovery.lua"] == (ARGOCD_RELEASE / "actions" / "discovery.lua").read_text()
    on_disk = {p.parent.name: p.read_text() for p in (ARGOCD_RELEASE / "actions").glob("*/action.lua")}
    assert {d["name"]: d["action.lua"] for d in actions["definitions"]} == on_disk
