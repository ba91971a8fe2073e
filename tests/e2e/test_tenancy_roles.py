"""A ReleasePolicy's `roleArn`: every AWS call for its namespaces' Releases is made with that role.

The operator runs against a moto server of its own that enforces IAM (INITIAL_NO_AUTH_ACTION_COUNT:
only the three calls that make the admin user and its key go unchecked; the shared moto accepts any
credentials). The operator's own IAM user may do nothing but `sts:AssumeRole`, so a Release that
rolls out at all has had every call of its passes (reads, the traffic check, the effectors) made with
its namespace's role: that is the evidence moto can give that the role was used (moto keeps no CloudTrail
of the calls it answers).

What moto cannot show: it evaluates ECS, ELBv2 and CloudFront statements against the resource `*`
only, so a role scoped to one team's ARNs cannot be shown refusing another team's service here
(tests/ship/test_iam_actions.py checks the Terraform policy's text instead); and it does not check
the role's trust policy on AssumeRole, only that the caller may call sts:AssumeRole; and with
authentication on, moto 5.2.6 refuses every signed CloudFront GET (SignatureDoesNotMatch, whoever
signs it), so these worlds have no frontend: CloudFront's calls go through the same routed clients
(controller/aws/roles.py) but cannot be shown refused or allowed here.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.moto import MotoServer
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from controller.testing.tenancy import policy_for
from tests.e2e.helpers import (
    Kubectl, Releases, condition, drop_namespace, flags_published, listener_weights, task_definition_images, wait_converged,
)

pytestmark = pytest.mark.timeout(400)

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
_ids = itertools.count(1)
# Everything a Release of this world needs but ECS (the role "without the ECS grant").
NOT_ECS = ["elasticloadbalancing:*", "cloudfront:*", "s3:*", "ssm:*", "ecr:*", "cloudwatch:*", "events:*"]


@dataclass
class IamWorld:
    moto: MotoServer
    admin: AwsClients  # an IAM user allowed everything: seeds the world, reads it for the test
    operator_env: dict[str, str]  # the operator's own identity: allowed sts:AssumeRole only
    operator_secret: str

    def iam(self) -> Any:
        return self.admin.session.client("iam", endpoint_url=self.moto.endpoint, region_name=REGION)

    def role(self, name: str, actions: list[str]) -> str:
        iam = self.iam()
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/operator"},
            "Action": "sts:AssumeRole"}]}
        arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        self.grant(name, actions)
        return arn

    def grant(self, role: str, actions: list[str]) -> None:
        self.iam().put_role_policy(RoleName=role, PolicyName="grant", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))


@pytest.fixture(scope="module")
def iam_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IamWorld]:
    import boto3

    with MotoServer(log_path=tmp_path_factory.mktemp("moto-iam") / "moto.log",
                    extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as server:
        boot = boto3.client("iam", endpoint_url=server.endpoint, region_name=REGION,
                            aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        boot.create_user(UserName="admin")
        boot.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = boot.create_access_key(UserName="admin")["AccessKey"]
        base = {"AWS_ENDPOINT_URL": server.endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
        admin = AwsClients.from_env({**base, "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                                     "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})
        iam = admin.session.client("iam", endpoint_url=server.endpoint, region_name=REGION)
        iam.create_user(UserName="operator")
        iam.put_user_policy(UserName="operator", PolicyName="assume", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
        own = iam.create_access_key(UserName="operator")["AccessKey"]
        env = {**base, "AWS_ACCESS_KEY_ID": own["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": own["SecretAccessKey"]}
        yield IamWorld(server, admin, env, own["SecretAccessKey"])


@pytest.fixture(scope="module")
def roles_operator(env_vars: dict[str, str], crd_installed: None, iam_world: IamWorld,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """A strict operator over the IAM-enforcing moto, watching `roles-*`, resync every 3 s."""
    log = tmp_path_factory.mktemp("roles-operator") / "operator.log"
    env = {**env_vars, **iam_world.operator_env}
    proc = OperatorProcess(env, namespaces=("roles-*",), resync=3.0, log_path=log, tenancy="strict").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture()
def team(kubectl: Kubectl, crd_installed: None) -> Iterator[str]:
    namespace = f"roles-{os.getpid()}-{next(_ids)}"
    kubectl("create", "namespace", namespace)
    yield namespace
    kubectl("delete", "releasepolicy", namespace, "--wait=false", check=False)
    drop_namespace(kubectl, namespace)


def snapshot(aws: AwsClients, world: WorldIds, namespace: str, name: str) -> dict[str, Any]:
    """What the Release could change in these (frontend-less) worlds: task sets, task definitions,
    listener weights, flags."""
    service = aws.ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]
    return {
        "task_sets": sorted((t["id"], t["status"], t["scale"]["value"], t["taskDefinition"])
                            for t in service.get("taskSets", [])),
        "service_task_definition": service.get("taskDefinition"),
        "task_definitions": task_definition_images(aws, world),
        "weights": listener_weights(aws, world),
        "flags": flags_published(aws, namespace, name),
    }


def apply_policy(kubectl: Kubectl, world: WorldIds, namespace: str, role_arn: str) -> None:
    body = policy_for(world, namespace, [namespace])
    body["spec"]["roleArn"] = role_arn
    body["spec"]["allow"]["distributions"] = []  # these worlds have no frontend
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))


def test_a_role_without_the_ecs_grant_is_denied_and_then_rolls_out_once_granted(
    roles_operator: OperatorProcess, iam_world: IamWorld, kubectl: Kubectl, releases: Releases, team: str,
) -> None:
    world = seed_world(iam_world.admin, name=f"roles{os.getpid()}x{next(_ids)}", image="repo/pratiko-backend:1.0.0",
                       with_frontend=False)
    role_name = f"release-{team}"
    role = iam_world.role(role_name, NOT_ECS)
    apply_policy(kubectl, world, team, role)
    before = snapshot(iam_world.admin, world, team, "app")

    releases.apply(release_for(world, name="app", namespace=team, version="2.0.0"))
    status = releases.wait(team, "app", lambda s: condition(s, "Ready").get("reason") == "AccessDenied", 60,
                           "Ready=False/AccessDenied")
    message = condition(status, "Ready")["message"]
    assert condition(status, "Ready")["status"] == "False"
    assert role in message and "ecs:" in message, message
    assert f"rc.{team}.app" not in message  # the role, not the session's credentials
    denied = [e for e in releases.events(team, "app") if e["reason"] == "AccessDenied"]
    assert denied and denied[0]["type"] == "Warning" and role in denied[0]["message"], denied

    # Over the next seconds the operator keeps trying (backing off) and AWS stays as it was.
    until = time.monotonic() + 12
    while time.monotonic() < until:
        assert snapshot(iam_world.admin, world, team, "app") == before
        time.sleep(2)
    assert condition(releases.status(team, "app"), "Ready").get("reason") == "AccessDenied"
    # No more than one Warning for the same refusal, however many passes it took.
    assert len([e for e in releases.events(team, "app") if e["reason"] == "AccessDenied"]) == 1

    # Granted ECS, the same Release rolls out without a restart: the back-off is bounded, and every
    # call was made as the role (the operator's own user may only assume it).
    iam_world.grant(role_name, [*NOT_ECS, "ecs:*"])
    wait_converged(releases, iam_world.admin, world, team, "app", "2.0.0", generation=1, timeout=150)
    seen = json.dumps(releases.get(team, "app")) + json.dumps(releases.events(team, "app"))
    assert iam_world.operator_secret not in seen
    log = Path(str(roles_operator.log_path)).read_text()
    assert iam_world.operator_secret not in log


def test_policies_naming_two_roles_refuse_the_release_and_touch_nothing(
    roles_operator: OperatorProcess, iam_world: IamWorld, kubectl: Kubectl, releases: Releases, team: str,
) -> None:
    world = seed_world(iam_world.admin, name=f"roles{os.getpid()}x{next(_ids)}", image="repo/pratiko-backend:1.0.0",
                       with_frontend=False)
    first = iam_world.role(f"release-{team}-one", [*NOT_ECS, "ecs:*"])
    second = iam_world.role(f"release-{team}-two", [*NOT_ECS, "ecs:*"])
    # The operator reads the policies as one list, a few seconds old at most: the policy that allows
    # nothing comes first, so no read ever sees the allowing policy alone.
    other = policy_for(world, f"{team}-other", [team])
    other["spec"]["roleArn"] = second
    other["spec"]["allow"] = {}
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(other))
    before = snapshot(iam_world.admin, world, team, "app")
    try:
        releases.apply(release_for(world, name="app", namespace=team, version="2.0.0"))
        releases.wait(team, "app", lambda s: "is not allowed" in condition(s, "Ready").get("message", ""), 60,
                      "Ready=False/NotPermitted: the service is not allowed")
        apply_policy(kubectl, world, team, first)
        status = releases.wait(team, "app", lambda s: condition(s, "Ready").get("reason") == "NotPermitted"
                               and "different roles" in condition(s, "Ready").get("message", ""), 60,
                               "Ready=False/NotPermitted naming both roles")
        message = condition(status, "Ready")["message"]
        assert first in message and second in message and condition(status, "Stalled")["status"] == "True"
        assert snapshot(iam_world.admin, world, team, "app") == before
    finally:
        kubectl("delete", "releasepolicy", f"{team}-other", "--wait=false", check=False)


def test_a_role_that_may_read_but_not_change_ecs_changes_nothing(
    roles_operator: OperatorProcess, iam_world: IamWorld, kubectl: Kubectl, releases: Releases, team: str,
) -> None:
    world = seed_world(iam_world.admin, name=f"roles{os.getpid()}x{next(_ids)}", image="repo/pratiko-backend:1.0.0",
                       with_frontend=False)
    role = iam_world.role(f"release-{team}", [*NOT_ECS, "ecs:Describe*", "ecs:List*"])
    apply_policy(kubectl, world, team, role)
    before = snapshot(iam_world.admin, world, team, "app")
    releases.apply(release_for(world, name="app", namespace=team, version="2.0.0"))
    # It reads everything and decides; its first change (a task definition for 2.0.0) is refused.
    status = releases.wait(team, "app", lambda s: condition(s, "Ready").get("reason") == "AccessDenied", 60,
                           "Ready=False/AccessDenied")
    message = condition(status, "Ready")["message"]
    assert role in message and re.search(r"denied ecs:(RegisterTaskDefinition|CreateTaskSet) ", message), message
    until = time.monotonic() + 10
    while time.monotonic() < until:
        assert snapshot(iam_world.admin, world, team, "app") == before
        time.sleep(2)
