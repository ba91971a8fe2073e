"""`release-controller validate --policy FILE`: a Release judged against ReleasePolicies offline."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from controller.cli import app
from tests.tenancy.test_policy import TEAM_A, spec


def write(path: Path, *docs: object) -> Path:
    path.write_text(yaml.safe_dump_all(list(docs)))
    return path


def release(namespace: str, **over: object) -> dict[str, object]:
    return {"apiVersion": "delivery.pratiko.ai/v1alpha1", "kind": "Release",
            "metadata": {"name": "api", "namespace": namespace}, "spec": spec(**over).to_wire()}


def test_validate_judges_against_policy_files(tmp_path: Path) -> None:
    policy = write(tmp_path / "policy.yaml", {"apiVersion": "delivery.pratiko.ai/v1alpha1", "kind": "ReleasePolicy", **TEAM_A})
    ok = write(tmp_path / "ok.yaml", release("team-a"))
    elsewhere = write(tmp_path / "elsewhere.yaml", release("team-b"))
    evil = write(tmp_path / "evil.yaml", release("team-a", backend={"ecs": {"cluster": "prod", "service": "api"}}))
    runner = CliRunner()
    assert runner.invoke(app, ["validate", str(ok), "--policy", str(policy)]).exit_code == 0
    assert runner.invoke(app, ["validate", str(evil)]).exit_code == 0  # without --policy: schema only
    out = runner.invoke(app, ["validate", str(ok), str(elsewhere), str(evil), "--policy", str(policy)])
    assert out.exit_code == 1
    assert "team-b/api: NotPermitted: no ReleasePolicy covers namespace team-b" in out.output
    assert "team-a/api: NotPermitted: spec.backend.ecs 'prod/api' is not allowed for namespace team-a" in out.output
    assert str(ok) not in out.output
    bad = write(tmp_path / "bad.yaml", {"kind": "ReleasePolicy", "metadata": {"name": "x"}, "spec": {"roleArn": "no"}})
    assert runner.invoke(app, ["validate", str(ok), "--policy", str(bad)]).exit_code == 2
    assert runner.invoke(app, ["validate", str(ok), "--policy", str(ok)]).exit_code == 2  # no policy in it
