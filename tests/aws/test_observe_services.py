"""A backend tier of several services observed against a moto server: one view per service, the
reads batched across them (docs/many-services.md, section 4: one batched read, not one per service)."""

from __future__ import annotations

from typing import Any

from controller.api.release import ReleaseSpec
from controller.aws.clients import AwsClients
from controller.aws.observe import Observer
from controller.testing.aws_world import WorldIds, seed_world
from tests.aws.conftest import KEY

CLUSTER = "pratiko-production"


def seed_tier(clients: AwsClients) -> dict[str, WorldIds]:
    """api (with the frontend), mcp and a worker as three ECS services of one cluster."""
    out: dict[str, WorldIds] = {}
    network = None
    for name in ("api", "mcp", "worker"):
        ids = seed_world(clients, name=name, cluster=CLUSTER, network=network, with_frontend=name == "api",
                         image=f"repo/pratiko-{name}:1.0.0")
        network = ids.network
        out[name] = ids
    clients.calls.reset()
    return out


def tier_spec(worlds: dict[str, WorldIds], version: str = "1.0.0") -> ReleaseSpec:
    body: dict[str, Any] = worlds["api"].spec(version=version, frontend_version=None)
    services = []
    for name, ids in worlds.items():
        s: dict[str, Any] = {"name": name, "image": f"repo/pratiko-{name}:{version}",
                             "ecs": {"cluster": ids.cluster, "service": ids.service, "containerName": ids.container_name}}
        if name != "api":
            s["after"] = ["api"]
        if name != "worker":  # the worker takes no traffic
            s["traffic"] = {"listenerArn": ids.listener_arn, "stableTargetGroupArn": ids.stable_target_group_arn,
                            "canaryTargetGroupArn": ids.canary_target_group_arn}
        services.append(s)
    body["backend"] = {"version": version, "services": services}
    return ReleaseSpec.model_validate(body)


def test_every_service_of_a_tier_is_observed_in_one_batched_read(clients: AwsClients) -> None:
    worlds = seed_tier(clients)
    spec = tier_spec(worlds)
    observer = Observer(clients)
    obs = observer.observe(KEY, spec)

    assert obs.errors == ()
    assert set(obs.services) == {"api", "mcp", "worker"}
    for name, ids in worlds.items():
        view = obs.services[name]
        assert view.service is not None and view.service.name == ids.service
        [ts] = view.service.task_sets
        assert (ts.image, ts.status, ts.scale_percent) == (f"repo/pratiko-{name}:1.0.0", "PRIMARY", 100.0)
    assert obs.services["worker"].listener is None  # no traffic in the spec: its listener is not read
    api, mcp = obs.services["api"].listener, obs.services["mcp"].listener
    assert api is not None and dict(api.weights) == {worlds["api"].stable_target_group_arn: 100,
                                                     worlds["api"].canary_target_group_arn: 0}
    assert mcp is not None and mcp.arn == worlds["mcp"].listener_arn
    # The single-service fields are the first service's, for readers of one.
    assert obs.service == obs.services["api"].service and obs.listener == api

    clients.calls.reset()
    observer.observe(KEY, spec)
    assert clients.calls.snapshot() == {
        "ecs:DescribeServices": 1,  # the three services of one cluster in one call
        "elasticloadbalancing:DescribeListeners": 1,  # both listeners in one call
        "ssm:GetParameters": 1,
    }


def test_a_missing_service_of_a_tier_is_an_error_naming_it(clients: AwsClients) -> None:
    worlds = seed_tier(clients)
    ecs = clients.ecs
    mcp = worlds["mcp"]
    for ts in ecs.describe_services(cluster=CLUSTER, services=[mcp.service])["services"][0].get("taskSets", []):
        ecs.delete_task_set(cluster=CLUSTER, service=mcp.service, taskSet=ts["id"], force=True)
    ecs.delete_service(cluster=CLUSTER, service=mcp.service, force=True)

    obs = Observer(clients).observe(KEY, tier_spec(worlds))
    assert obs.services["mcp"].service is None and obs.services["api"].service is not None
    assert [(e.reason, mcp.service in e.message) for e in obs.errors] == [("ServiceNotFound", True)]


def test_the_traffic_check_judges_each_services_traffic_and_names_the_one_refused(clients: AwsClients) -> None:
    from controller.aws.traffic import TrafficChecker

    worlds = seed_tier(clients)
    spec = tier_spec(worlds)
    obs = Observer(clients).observe(KEY, spec)
    checker = TrafficChecker(clients)
    assert checker.refusal(spec, obs) is None
    mcp = worlds["mcp"]
    clients.elbv2.create_rule(  # a user's rule sends a path to mcp's canary group: not the Release's own
        ListenerArn=mcp.listener_arn, Priority=100,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/beta/*"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": mcp.canary_target_group_arn}])
    refusal = checker.refusal(spec, obs)
    assert refusal is not None and refusal.startswith("service mcp: ") and "is also used by rule" in refusal
