"""The package's layering, checked by import-linter with the contracts in pyproject.toml: a pure
planner, kopf only in operator/, each part importing only the parts below it, and no import cycles."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lint  # not in `make test-fast`: `make lint` runs import-linter

ROOT = Path(__file__).resolve().parents[2]
LINTER = Path(sys.executable).with_name("lint-imports")


def lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINTER)], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_import_contracts_hold() -> None:
    proc = lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_a_new_import_cycle_breaks_the_contracts(tmp_path: Path) -> None:
    # A copy of the package where the pure shape parsers import the observer, which imports them.
    shutil.copytree(ROOT / "controller", tmp_path / "controller", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shapes = tmp_path / "controller" / "aws" / "shapes.py"
    shapes.write_text(shapes.read_text() + "\nfrom controller.aws import observe  # noqa: E402,F401\n")
    proc = lint(tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert "No import cycles between sibling modules BROKEN" in proc.stdout
    assert "No cycles are allowed in controller.aws." in proc.stdout and "- .shapes -> .observe" in proc.stdout, proc.stdout
