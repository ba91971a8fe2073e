"""Seed a moto server with the AWS a Release points at: network, ECS, ALB, S3 and CloudFront.

Used by tests, `dev up` and the benchmark to create "production as it is before the controller
touches it": one ECS service running `image` at 100% behind an ALB listener that forwards 100/0 to
two target groups, and a CloudFront distribution whose origin "web" serves the current frontend.

It expects a fresh moto (`MotoServer.reset()`) or at least a fresh `name`: the names it creates
(cluster, service, load balancer, target groups, bucket) are derived from `name`, and moto refuses
duplicates of some of them. Several worlds with different names can share one moto server, and
`share_network` / `cluster` let many services share one VPC and one cluster (the benchmark).

This module must not be imported by the controller itself: it is test and dev tooling.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from controller.aws.clients import AwsClients
from controller.testing.specs import release_spec

CONTAINER_NAME = "api"
CONTAINER_PORT = 8000


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_id: str


@dataclass(frozen=True)
class WorldIds:
    """Every id and ARN a Release spec (and a test) needs to point at the seeded world."""

    name: str
    region: str
    cluster: str
    cluster_arn: str
    service: str
    service_arn: str
    container_name: str
    container_port: int
    task_definition_arn: str
    image: str
    deployment_controller: str
    listener_arn: str
    load_balancer_arn: str
    stable_target_group_arn: str
    canary_target_group_arn: str
    distribution_id: str
    origin_id: str
    origin_path: str
    bucket: str
    network: Network
    initial_task_set_arn: str | None = None
    initial_external_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def spec(self, *, version: str = "1.0.0", image: str | None = None, frontend_version: str | None = "1.0.0",
             strategy: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
        """A Release spec (wire form, camelCase) pointing at this world (`specs.release_spec`)."""
        frontend = None
        if "frontend" in more:  # a whole frontend given replaces the one built from `frontend_version`
            frontend = more.pop("frontend")
        elif frontend_version is not None:
            frontend = {
                "version": frontend_version,
                "cloudfront": {"distributionId": self.distribution_id, "originId": self.origin_id, "bucket": self.bucket},
            }
        return release_spec(
            version=version,
            image=image or self.image.rsplit(":", 1)[0] + f":{version}",
            cluster=self.cluster,
            service=self.service,
            container_name=self.container_name,
            traffic=(self.listener_arn, self.stable_target_group_arn, self.canary_target_group_arn),
            strategy=strategy,
            frontend=frontend,
            **more,
        )


def seed_network(clients: AwsClients, name: str) -> Network:
    """A VPC with DNS hostnames (moto's awsvpc tasks need it), two subnets and a security group."""
    ec2 = _ec2(clients)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnets = tuple(
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{clients.region}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in ((1, "a"), (2, "b"))
    )
    sg = ec2.create_security_group(GroupName=f"{name}-sg", Description=f"{name} backend", VpcId=vpc_id)["GroupId"]
    return Network(vpc_id, subnets, sg)


def push_image(clients: AwsClients, image: str) -> bool:
    """Put `image` into the emulator's ECR (repository created if needed), as `docker push` would.

    Only ECR images (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`) can be pushed; for
    any other registry this does nothing and returns False: the local ECS pulls those as they are.
    """
    from controller.aws.shapes import ecr_reference

    ref = ecr_reference(image)
    if ref is None:
        return False
    repository, image_id = ref
    ecr = clients.session.client("ecr", region_name=clients.region, endpoint_url=clients.endpoint_url)
    try:
        ecr.create_repository(repositoryName=repository)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                   "digest": "sha256:" + hashlib.sha256(image.encode()).hexdigest()},
        "layers": [],
    })
    try:
        ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=image_id.get("imageTag", "latest"))
    except ecr.exceptions.ImageAlreadyExistsException:
        pass
    return True


def seed_world(
    target: AwsClients | str,
    *,
    name: str = "pratiko",
    deployment_controller: Literal["EXTERNAL", "ECS"] = "EXTERNAL",
    image: str = "repo/pratiko-backend:1.0.0",
    frontend_version: str = "1.0.0",
    desired_count: int = 2,
    cluster: str | None = None,
    network: Network | None = None,
    initial_external_id: str | None = None,
    with_frontend: bool = True,
    deployment_configuration: dict[str, Any] | None = None,
    load_balancer_type: Literal["application", "network"] = "application",
    load_balancer_arn: str | None = None,
    listener_port: int = 80,
    traffic: bool = True,
) -> WorldIds:
    """Create the world in moto and return its ids. `target` is clients or a moto endpoint URL.

    EXTERNAL services get an initial task set running `image` at 100%, made PRIMARY, in the stable
    target group. By default it has no external id, like a service deployed before the controller
    existed (the planner adopts it by image); `initial_external_id` gives it one.

    An ECS-controller service given a `deployment_configuration` whose strategy is BLUE_GREEN,
    CANARY or LINEAR is set up as ECS's native blue/green needs it (AWS: "Application Load Balancer
    resources for blue/green, linear, and canary deployments"): a production listener rule on the
    listener (blue 100, green 0), a test listener on port 8080 with a test rule, and the service's
    load balancer naming green as `alternateTargetGroupArn` with both rules and an infrastructure
    role. Their ARNs are in `extra`: `production_rule`, `test_rule`, `test_listener`, `role`.
    With `traffic=False` the service is a worker: no load balancer, target group or listener (their
    ids are empty), and its task set is in no target group.
    With `load_balancer_type="network"` the load balancer is an NLB (TCP listeners, TCP target groups
    health-checked over HTTP), and, as ECS takes for an NLB, the production and test "rules" are the
    listeners themselves (AWS: "Network Load Balancer resources for Amazon ECS blue/green, linear and
    canary deployments").
    `load_balancer_arn` puts the service's listener (on `listener_port`) on an existing load balancer
    instead of a new one: two services behind one ALB on two listeners (issue many-services).
    """
    clients = target if isinstance(target, AwsClients) else AwsClients.for_endpoint(target)
    ecs, elbv2 = clients.ecs, clients.elbv2
    push_image(clients, image)  # what runs in production was pushed once
    network = network or seed_network(clients, name)
    cluster_name = cluster or f"{name}-cluster"
    cluster_arn = ecs.create_cluster(clusterName=cluster_name)["cluster"]["clusterArn"]

    td_arn = ecs.register_task_definition(
        family=f"{name}-backend",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": CONTAINER_NAME,
                "image": image,
                "memory": 512,  # container-level memory: moto answers 500 without it
                "essential": True,
                "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}],
                "environment": [{"name": "APP_ENV", "value": "production"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]

    nlb = load_balancer_type == "network"
    lb_arn, listener_arn, tgs = "", "", ["", ""]
    if traffic:
        lb_arn, listener_arn, tgs = _load_balancing(elbv2, name, network, nlb, load_balancer_type, load_balancer_arn,
                                                    listener_port)

    network_configuration = {
        "awsvpcConfiguration": {
            "subnets": list(network.subnet_ids),
            "securityGroups": [network.security_group_id],
            "assignPublicIp": "DISABLED",
        }
    }
    service_name = f"{name}-backend"
    stable_lb = [{"targetGroupArn": tgs[0], "containerName": CONTAINER_NAME, "containerPort": CONTAINER_PORT}] if traffic else []
    task_set_arn: str | None = None
    external_id: str | None = None
    extra: dict[str, Any] = {}
    if deployment_controller == "EXTERNAL":
        service_arn = ecs.create_service(
            cluster=cluster_name, serviceName=service_name, desiredCount=desired_count,
            deploymentController={"type": "EXTERNAL"},
            # Real ECS takes the network configuration on the task sets of an EXTERNAL service;
            # moto wants it on the service too. Both are harmless.
            networkConfiguration=network_configuration,
        )["service"]["serviceArn"]
        external_id = initial_external_id
        task_set_arn = ecs.create_task_set(
            cluster=cluster_name, service=service_name, taskDefinition=td_arn,
            **({"externalId": external_id} if external_id else {}),
            networkConfiguration=network_configuration, launchType="FARGATE",
            loadBalancers=stable_lb,
            scale={"unit": "PERCENT", "value": 100.0},
        )["taskSet"]["taskSetArn"]
        ecs.update_service_primary_task_set(cluster=cluster_name, service=service_name, primaryTaskSet=task_set_arn)
    else:
        config = {"maximumPercent": 200, "minimumHealthyPercent": 100, **(deployment_configuration or {})}
        if config.get("strategy") in ("BLUE_GREEN", "CANARY", "LINEAR"):
            extra.update(_native_routing(elbv2, lb_arn, listener_arn, tgs, name, nlb))
            stable_lb = [{**stable_lb[0], "advancedConfiguration": {
                "alternateTargetGroupArn": tgs[1], "productionListenerRule": extra["production_rule"],
                "testListenerRule": extra["test_rule"], "roleArn": extra["role"]}}]
        service_arn = ecs.create_service(
            cluster=cluster_name, serviceName=service_name, desiredCount=desired_count, taskDefinition=td_arn,
            launchType="FARGATE", deploymentController={"type": "ECS"}, networkConfiguration=network_configuration,
            loadBalancers=stable_lb, deploymentConfiguration=config,
        )["service"]["serviceArn"]

    bucket = f"{name}-frontend".lower()[:63]
    distribution_id = ""
    origin_path = f"/releases/{frontend_version}"
    if with_frontend:
        create_bucket: dict[str, Any] = {"Bucket": bucket}
        if clients.region != "us-east-1":
            create_bucket["CreateBucketConfiguration"] = {"LocationConstraint": clients.region}
        clients.s3.create_bucket(**create_bucket)
        distribution_id = clients.cloudfront.create_distribution(
            DistributionConfig=_distribution_config(name, bucket, origin_path)
        )["Distribution"]["Id"]

    return WorldIds(
        name=name, region=clients.region, cluster=cluster_name, cluster_arn=cluster_arn, service=service_name,
        service_arn=service_arn, container_name=CONTAINER_NAME, container_port=CONTAINER_PORT,
        task_definition_arn=td_arn, image=image, deployment_controller=deployment_controller,
        listener_arn=listener_arn, load_balancer_arn=lb_arn, stable_target_group_arn=tgs[0],
        canary_target_group_arn=tgs[1], distribution_id=distribution_id, origin_id="web", origin_path=origin_path,
        bucket=bucket, network=network, initial_task_set_arn=task_set_arn, initial_external_id=external_id,
        extra=extra,
    )


def _load_balancing(elbv2: Any, name: str, network: Network, nlb: bool, load_balancer_type: str,
                    load_balancer_arn: str | None, listener_port: int) -> tuple[str, str, list[str]]:
    """The load balancer (made, unless given), two target groups and a listener forwarding 100/0."""
    lb_arn = load_balancer_arn or elbv2.create_load_balancer(
        Name=f"{name}-{'nlb' if nlb else 'alb'}"[:32], Subnets=list(network.subnet_ids),
        SecurityGroups=[network.security_group_id], Scheme="internet-facing", Type=load_balancer_type,
    )["LoadBalancers"][0]["LoadBalancerArn"]
    tgs = [
        elbv2.create_target_group(
            Name=f"{name}-{color}"[:32], Protocol="TCP" if nlb else "HTTP", Port=CONTAINER_PORT, VpcId=network.vpc_id,
            TargetType="ip", HealthCheckProtocol="HTTP", HealthCheckPath="/health",
        )["TargetGroups"][0]["TargetGroupArn"]
        for color in ("blue", "green")
    ]
    listener_arn = elbv2.create_listener(
        LoadBalancerArn=lb_arn, Protocol="TCP" if nlb else "HTTP", Port=listener_port,
        DefaultActions=[{
            "Type": "forward",
            "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tgs[0], "Weight": 100},
                                               {"TargetGroupArn": tgs[1], "Weight": 0}]},
        }],
    )["Listeners"][0]["ListenerArn"]
    return lb_arn, listener_arn, tgs


def _native_routing(elbv2: Any, lb_arn: str, listener_arn: str, tgs: list[str], name: str,
                    nlb: bool = False) -> dict[str, str]:
    """The listener rules (an NLB: the listeners) ECS shifts in a native blue/green, linear or canary."""
    def forward(blue: int, green: int) -> list[dict[str, Any]]:
        return [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": tgs[0], "Weight": blue}, {"TargetGroupArn": tgs[1], "Weight": green}]}}]

    role = f"arn:aws:iam::123456789012:role/{name}-ecs-infrastructure"
    if nlb:
        test_listener = elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="TCP", Port=8080,
                                              DefaultActions=forward(100, 0))["Listeners"][0]["ListenerArn"]
        return {"production_rule": listener_arn, "test_rule": test_listener, "test_listener": test_listener,
                "role": role}

    production_rule = elbv2.create_rule(
        ListenerArn=listener_arn, Priority=1, Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
        Actions=forward(100, 0))["Rules"][0]["RuleArn"]
    test_listener = elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=8080,
                                          DefaultActions=forward(100, 0))["Listeners"][0]["ListenerArn"]
    test_rule = elbv2.create_rule(
        ListenerArn=test_listener, Priority=1, Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
        Actions=forward(100, 0))["Rules"][0]["RuleArn"]
    return {"production_rule": production_rule, "test_rule": test_rule, "test_listener": test_listener, "role": role}


def _distribution_config(name: str, bucket: str, origin_path: str) -> dict[str, Any]:
    return {
        "CallerReference": f"seed-{name}",
        "Comment": f"{name} frontend",
        "Enabled": True,
        "DefaultRootObject": "index.html",
        "Origins": {
            "Quantity": 1,
            "Items": [{
                "Id": "web",
                "DomainName": f"{bucket}.s3.amazonaws.com",
                "OriginPath": origin_path,
                "S3OriginConfig": {"OriginAccessIdentity": ""},
            }],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "web",
            "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
    }


def _ec2(clients: AwsClients) -> Any:
    # EC2 is seeding-only: the controller never touches the network, so AwsClients has no ec2.
    return clients.session.client("ec2", region_name=clients.region, endpoint_url=clients.endpoint_url)
