"""Per-namespace roles (controller/aws/roles.py) against a moto server that enforces IAM.

The moto server here runs with authentication and authorization on (INITIAL_NO_AUTH_ACTION_COUNT:
only the first three calls, which create an admin user and its key, go unchecked). It is its own
server: the shared one accepts any credentials.

What moto's IAM enforcement can show, and what it cannot: moto checks that the caller's
credentials exist and that its policies allow the *action* (`ecs:CreateTaskSet`); for ECS, ELBv2 and
CloudFront it evaluates every statement against the resource `*`, so a policy scoped to one team's
ARNs cannot be shown to refuse another team's service here. Those resource-scoped grants are
checked against the Terraform policy's text instead (tests/ship/test_iam_actions.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from controller.api.release import ReleaseSpec
from controller.aws.apply import effector_for
from controller.aws.clients import AwsClients
from controller.aws.errors import AwsEffectError
from controller.aws.observe import Observer
from controller.aws.roles import ReleaseRoles, RoleClients, routed, session_name
from controller.aws.taskdefs import TaskDefinitionCache
from controller.planner.actions import ScaleTaskSet
from controller.tenancy.secrets import NotPermitted
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.moto import MotoServer

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer(log_path=tmp_path_factory.mktemp("moto-iam") / "moto.log",
                    extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as server:
        yield server


@pytest.fixture(scope="module")
def admin(iam_moto: MotoServer) -> AwsClients:
    """The operator's own identity: an IAM user allowed everything (made by the three unchecked calls)."""
    iam = boto3.client("iam", endpoint_url=iam_moto.endpoint, region_name=REGION,
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="operator")
    iam.put_user_policy(UserName="operator", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    return AwsClients.from_env({"AWS_ENDPOINT_URL": iam_moto.endpoint, "AWS_REGION": REGION,
                                "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})


def team_role(admin: AwsClients, name: str, actions: list[str]) -> str:
    iam = admin.session.client("iam", endpoint_url=admin.endpoint_url, region_name=REGION)
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/operator"}, "Action": "sts:AssumeRole"}]}
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="grant", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    return arn


def test_a_role_without_a_grant_gets_access_denied_and_the_operator_keeps_its_own(admin: AwsClients) -> None:
    role = team_role(admin, "release-team-a", ["ecs:DescribeClusters", "ecs:ListClusters"])
    roles = RoleClients(admin)
    team_a = roles.clients_for(role, "team-a", "shop")

    assert team_a.ecs.list_clusters()["clusterArns"] == []  # granted: answered
    with pytest.raises(ClientError) as denied:
        team_a.ecs.create_cluster(clusterName="team-b-cluster")  # not granted
    # AWS answers AccessDeniedException; moto answers ECS's JSON protocol with an XML error body,
    # which botocore cannot parse into a code, so the status and the refusal's text are what is checked.
    error = denied.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "assumed-role/release-team-a/rc.team-a.shop is not authorized to perform: ecs:CreateCluster" in str(error)
    assert admin.ecs.list_clusters()["clusterArns"] == []  # nothing was made
    # A Release without a role uses the operator's own credentials.
    assert roles.clients_for(None, "team-a", "shop") is admin
    admin.ecs.create_cluster(clusterName="operator-made")


def test_calls_are_made_as_the_release_and_the_clients_are_cached(admin: AwsClients) -> None:
    role = team_role(admin, "release-team-c", ["ecs:ListClusters", "sts:GetCallerIdentity"])
    roles = RoleClients(admin, limit=2)
    shop = roles.clients_for(role, "team-c", "shop")
    sts = shop.session.client("sts", endpoint_url=admin.endpoint_url, region_name=REGION)
    assert sts.get_caller_identity()["Arn"].endswith(f":assumed-role/release-team-c/{session_name('team-c', 'shop')}")

    assert roles.clients_for(role, "team-c", "shop") is shop  # one AssumeRole per Release, then refreshed
    assert shop.calls is admin.calls  # counted with the operator's calls (metrics, IAM equality check)
    roles.clients_for(role, "team-c", "cart")
    roles.clients_for(role, "team-c", "blog")  # over the limit: the least recently used goes
    assert roles.clients_for(role, "team-c", "shop") is not shop
    roles.forget("team-c", "shop")
    assert roles.clients_for(role, "team-c", "shop") is not shop


def test_session_names_stay_within_sts_limits() -> None:
    names = {session_name("team-a", "x" * n) for n in range(50, 90)}
    assert len(names) == 40 and all(2 <= len(n) <= 64 for n in names)
    assert session_name("team a", "shop/1") == "rc.team-a.shop-1"



def world_spec(world: WorldIds) -> ReleaseSpec:
    return ReleaseSpec.model_validate(world.spec(version="2.0.0", frontend_version=None))


def test_a_pass_acts_as_its_releases_role_and_access_denied_names_the_role_and_action(admin: AwsClients) -> None:
    world = seed_world(admin, name="rolesobs", with_frontend=False)
    denied = team_role(admin, "release-team-d", ["elasticloadbalancing:*", "cloudfront:*", "ssm:*", "ecr:*"])
    roles_of = {"team-d": denied, "team-e": None}
    roles = ReleaseRoles(RoleClients(admin), lambda ns: roles_of.get(ns))
    observer = Observer(routed(admin))
    spec = world_spec(world)

    with roles.acting_for("team-d", "shop"):
        seen = observer.observe(("team-d", "shop"), spec)
        with pytest.raises(AwsEffectError) as raised:
            effector_for(observer)([ScaleTaskSet(world.cluster, world.service, "x", 50.0)], seen)
    error = next(e for e in seen.errors if e.reason == "AccessDenied")
    assert denied in error.message and "ecs:DescribeServices" in error.message, error
    assert "rc.team-d.shop" not in error.message
    assert raised.value.reason == "AccessDenied" and denied in raised.value.message and "ecs:" in raised.value.message
    # The operator's own credentials for a namespace without a role, and outside any pass.
    with roles.acting_for("team-e", "shop"):
        assert not observer.observe(("team-e", "shop"), spec).errors
    assert not observer.observe(("x", "y"), spec).errors
    assert roles.own("team-e") and not roles.own("team-d")


def test_a_release_whose_role_cannot_be_told_sends_nothing(admin: AwsClients) -> None:
    def two_roles(namespace: str) -> str | None:
        raise NotPermitted("the ReleasePolicies covering namespace team-f name different roles")

    spec = world_spec(seed_world(admin, name="rolesnone", with_frontend=False))
    roles = ReleaseRoles(RoleClients(admin), two_roles)
    observer = Observer(routed(admin))
    before = admin.calls.total()
    with roles.acting_for("team-f", "shop"):
        seen = observer.observe(("team-f", "shop"), spec)
    assert seen.errors and all(e.reason == "NotPermitted" for e in seen.errors), seen.errors
    assert "different roles" in seen.errors[0].message
    assert admin.calls.total() == before  # nothing was sent
    assert not roles.own("team-f")


def test_a_task_definition_read_with_one_role_is_not_served_to_another(admin: AwsClients) -> None:
    """The process-wide task definition cache is kept apart per role: team-f's pass, whose role may
    not describe task definitions, is refused rather than handed what team-g's role read."""
    world = seed_world(admin, name="rolestd", with_frontend=False)
    reader = team_role(admin, "release-team-g", ["ecs:*"])
    blind = team_role(admin, "release-team-f", ["ecs:DescribeServices", "ecs:DescribeTaskSets"])
    roles_of = {"team-g": reader, "team-f": blind}
    roles = ReleaseRoles(RoleClients(admin), lambda ns: roles_of.get(ns))
    cache = TaskDefinitionCache()
    ecs = routed(admin).ecs

    with roles.acting_for("team-g", "shop"):
        read = cache.fetch(ecs, world.task_definition_arn)
        assert cache.fetch(ecs, world.task_definition_arn) is read  # described once for this role
    with roles.acting_for("team-f", "shop"), pytest.raises(ClientError) as refused:
        cache.fetch(ecs, world.task_definition_arn)
    assert "AccessDenied" in str(refused.value) or "not authorized" in str(refused.value)
