"""The controller's IAM policy (terraform/modules/controller-iam) allows exactly the AWS actions its
code calls: nothing missing (a release would fail in production with AccessDenied, which moto
never raises) and nothing extra (least privilege).

The calls are collected statically: every `RECEIVER.operation(...)` in controller/ (testing/ aside,
which seeds emulators) whose receiver names one of the clients of `AwsClients` (`clients.ecs`,
`self._ecs`, a parameter called `ecs`, `cf` for CloudFront, ...) and whose method is an operation
of that service in botocore's model, plus `get_paginator("operation")`. Operation names become IAM
actions (ELBv2 is `elasticloadbalancing:`, S3's HeadObject is s3:GetObject), and an action IAM
evaluates together with another (RegisterTaskDefinition passes roles: iam:PassRole) adds it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import botocore.session
from botocore import xform_name

from tests.ship.conftest import ROOT
from tests.ship.hcl import doubly_labelled, load_dir, unq

SOURCES = ROOT / "controller"
EXCLUDED = {SOURCES / "testing"}
POLICY_MODULE = ROOT / "terraform" / "modules" / "controller-iam" / "policy"

# boto3 client name -> IAM action prefix (as in controller/aws/clients.py SERVICES).
IAM_PREFIX = {
    "ecs": "ecs",
    "elbv2": "elasticloadbalancing",
    "cloudfront": "cloudfront",
    "s3": "s3",
    "ssm": "ssm",
    "cloudwatch": "cloudwatch",
    "ecr": "ecr",
    "events": "events",
}
# Names a client is held under in the code -> the client.
RECEIVERS = {
    "ecs": "ecs", "_ecs": "ecs",
    "elbv2": "elbv2", "_elbv2": "elbv2", "elb": "elbv2", "_elb": "elbv2", "alb": "elbv2", "_alb": "elbv2",
    "cloudfront": "cloudfront", "_cloudfront": "cloudfront", "cf": "cloudfront", "_cf": "cloudfront",
    "s3": "s3", "_s3": "s3",
    "ssm": "ssm", "_ssm": "ssm",
    "cloudwatch": "cloudwatch", "_cloudwatch": "cloudwatch", "cw": "cloudwatch", "_cw": "cloudwatch",
    "ecr": "ecr", "_ecr": "ecr",
    "events": "events", "events_client": "events",
}
# Generic names: the service is the one whose model has the operation (it must be unique).
GENERIC_RECEIVERS = {"client", "_client"}
# S3 operations whose IAM action has another name.
S3_ACTIONS = {"HeadObject": "GetObject", "ListObjectsV2": "ListBucket", "ListObjects": "ListBucket", "HeadBucket": "ListBucket"}
# Actions IAM also checks when the first one is called.
DEPENDENT = {
    # The revision names the execution and task roles; tags given on creation are ecs:TagResource.
    "ecs:RegisterTaskDefinition": {"iam:PassRole", "ecs:TagResource"},
    "ecs:RunTask": {"iam:PassRole", "ecs:TagResource"},  # the task assumes its roles; the task is tagged
    "cloudfront:CopyDistribution": {"cloudfront:CreateDistribution", "cloudfront:GetDistribution"},
}


def _operations() -> dict[str, dict[str, str]]:
    """client name -> {snake_case method: OperationName} from botocore's service models."""
    session = botocore.session.get_session()
    return {
        client: {xform_name(op): op for op in session.get_service_model(client).operation_names}
        for client in IAM_PREFIX
    }


OPERATIONS = _operations()


def _receiver_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _imported_names(tree: ast.Module) -> set[str]:
    """Module names bound by imports (`from controller.aws import ecs`): their functions are ours."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _calls(path: Path) -> Iterator[tuple[str, str, int]]:
    """(client, OperationName, line) for every AWS call in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imported = _imported_names(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = _receiver_name(node.func.value)
        if receiver is None or (isinstance(node.func.value, ast.Name) and receiver in imported):
            continue
        method = node.func.attr
        if method == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
            method = str(node.args[0].value)
        if receiver in RECEIVERS:
            client = RECEIVERS[receiver]
            if method in OPERATIONS[client]:
                yield client, OPERATIONS[client][method], node.lineno
        elif receiver in GENERIC_RECEIVERS:
            owners = [c for c, ops in OPERATIONS.items() if method in ops]
            assert len(owners) <= 1, f"{path}:{node.lineno}: {receiver}.{method} is ambiguous between {owners}; name the client"
            if owners:
                yield owners[0], OPERATIONS[owners[0]][method], node.lineno


def _iam_action(client: str, operation: str) -> str:
    if client == "s3":
        operation = S3_ACTIONS.get(operation, operation)
    return f"{IAM_PREFIX[client]}:{operation}"


def actions_in_code() -> dict[str, list[str]]:
    """IAM action -> where the code calls it."""
    found: dict[str, list[str]] = {}
    for path in sorted(SOURCES.rglob("*.py")):
        if any(parent in EXCLUDED for parent in path.parents):
            continue
        for client, operation, line in _calls(path):
            action = _iam_action(client, operation)
            where = f"{path.relative_to(ROOT)}:{line}"
            found.setdefault(action, []).append(where)
            for dependent in DEPENDENT.get(action, ()):
                found.setdefault(dependent, []).append(f"{where} (needed by {action})")
    return found


def actions_in_policy() -> set[str]:
    data = doubly_labelled(load_dir(POLICY_MODULE)["data"])
    document = data[("aws_iam_policy_document", "controller")]
    actions: set[str] = set()
    for statement in document["statement"]:
        assert unq(statement.get("effect", '"Allow"')) == "Allow"
        actions.update(unq(a) for a in statement["actions"])
    return actions


def test_the_collector_finds_calls_in_each_aws_surface() -> None:
    """Guards the check below against passing on an empty or partial scan."""
    found = actions_in_code()
    prefixes = {action.split(":")[0] for action in found}
    missing = {"ecs", "elasticloadbalancing", "cloudfront", "ssm", "cloudwatch"} - prefixes
    assert not missing, (
        f"no AWS calls found for {sorted(missing)} in controller/ (found {sorted(found)}): either the AWS layer "
        "(controller/aws/, controller/analysis/cloudwatch.py) is not written yet or it holds its clients under "
        f"names this collector does not know; known names: {sorted(RECEIVERS)} and {sorted(GENERIC_RECEIVERS)}"
    )


def test_policy_allows_exactly_the_actions_the_code_calls() -> None:
    in_code = actions_in_code()
    in_policy = actions_in_policy()
    missing = {a: in_code[a] for a in sorted(set(in_code) - in_policy)}
    extra = sorted(in_policy - set(in_code))
    assert not missing and not extra, (
        f"missing from the policy (AccessDenied in production): {missing}\n"
        f"allowed but never called (remove them): {extra}"
    )


def test_team_roles_get_the_same_actions_over_their_own_arns_and_trust_only_the_controller() -> None:
    """controller/aws/roles.py assumes a ReleasePolicy's roleArn (STS AssumeRole through botocore's
    credential fetcher, which the collector above does not see): the controller's role may assume
    exactly the module's team roles, each team role trusts only the controller's role, and its
    policy is the same document as the controller's, built from that team's ARNs."""
    module = load_dir(POLICY_MODULE.parent)
    data = doubly_labelled(module["data"])
    resources = doubly_labelled(module["resource"])
    assume = data[("aws_iam_policy_document", "assume_team_roles")]["statement"][0]
    assert [unq(a) for a in assume["actions"]] == ["sts:AssumeRole"]
    assert "aws_iam_role.team" in str(assume["resources"])
    trust = data[("aws_iam_policy_document", "team_trust")]["statement"][0]
    assert [unq(a) for a in trust["actions"]] == ["sts:AssumeRole"]
    assert "aws_iam_role.controller.arn" in str(trust["principals"]) and "*" not in str(trust["principals"])
    assert "team_trust" in str(resources[("aws_iam_role", "team")]["assume_role_policy"])
    team_policy = next(body for block in module["module"] for name, body in block.items() if unq(name) == "team_policy")
    assert unq(team_policy["source"]) == "./policy"
    assert "each.value.ecs_service_arns" in str(team_policy["ecs_service_arns"])
    assert "module.team_policy" in str(resources[("aws_iam_role_policy", "team")]["policy"])
