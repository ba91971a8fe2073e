"""The example GitHub Actions workflows in examples/ci/ are valid, and call verbs that exist.

actionlint is built from its Go module (github.com/rhysd/actionlint, pinned) through
controller.testing.binaries and cached like etcd; it checks the workflow schema, expressions,
action inputs (actions/checkout's, ...) and script injection through untrusted contexts.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import typer
import yaml

from controller.cli import app
from controller.testing.binaries import ensure_go_tool

ACTIONLINT_VERSION = "v1.7.12"
ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / "examples/ci").glob("*.yaml"))


@pytest.fixture(scope="module")
def actionlint() -> Path:
    return ensure_go_tool("actionlint", "github.com/rhysd/actionlint/cmd/actionlint", ACTIONLINT_VERSION,
                          module="github.com/rhysd/actionlint")


def test_there_is_a_backend_and_a_frontend_workflow() -> None:
    assert {p.name for p in WORKFLOWS} >= {"backend-release.yaml", "frontend-release.yaml"}


def test_actionlint_passes_every_example(actionlint: Path) -> None:
    proc = subprocess.run([str(actionlint), "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_would_catch_a_broken_workflow(actionlint: Path, tmp_path: Path) -> None:
    broken = WORKFLOWS[0].read_text().replace("fetch-depth: 0", "fetch-dept: 0")
    (tmp_path / "broken.yaml").write_text(broken)
    proc = subprocess.run([str(actionlint), "-no-color", str(tmp_path / "broken.yaml")], capture_output=True,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 1 and 'input "fetch-dept" is not defined' in proc.stdout


def _release_controller_calls(path: Path) -> list[list[str]]:
    body = yaml.safe_load(path.read_text())
    scripts = [step.get("run", "") for job in body["jobs"].values() for step in job["steps"]]
    return [line.split() for s in scripts for line in re.findall(r"release-controller [^\n|;&)]*", s)]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_the_workflows_call_verbs_and_options_the_cli_has(path: Path) -> None:
    def name(c: typer.models.CommandInfo) -> str:
        return c.name or c.callback.__name__.replace("_", "-")  # type: ignore[union-attr]

    commands = {name(c): c for c in app.registered_commands}
    groups = {g.name: g.typer_instance for g in app.registered_groups}
    calls = _release_controller_calls(path)
    assert calls
    for call in calls:
        verb, rest = call[1], call[2:]
        if verb in groups:
            sub = {name(c): c for c in groups[verb].registered_commands}  # type: ignore[union-attr]
            assert rest[0] in sub, call
            func, rest = sub[rest[0]].callback, rest[1:]
        else:
            assert verb in commands, call
            func = commands[verb].callback
        # Each --option used exists as a parameter of the verb.
        params = {p.replace("_", "-") for p in func.__code__.co_varnames[: func.__code__.co_argcount]}  # type: ignore[union-attr]
        for option in (a for a in rest if a.startswith("--")):
            assert option[2:] in params, f"{call}: {option}"
