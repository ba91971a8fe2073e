"""mypy over the package: strict for the API models, the planner and the verdict (pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lint  # not in `make test-fast`: `make lint` runs mypy

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_passes() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
