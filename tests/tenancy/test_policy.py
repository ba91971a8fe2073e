"""The ReleasePolicy judge, by table: what a Release names against the policies covering its namespace."""

from __future__ import annotations

from typing import Any

import pytest

from controller.api.policy import ReleasePolicy
from controller.api.release import ReleaseSpec
from controller.testing.specs import merge, release_spec
from controller.tenancy.policy import judge, url_allowed
from controller.tenancy.urls import url_matches

LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:listener/app/team-a-alb/1/2"
STABLE = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/team-a-blue/3"
CANARY = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/team-a-green/4"
IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team-a/api:1.0.0"

TEAM_A = {
    "metadata": {"name": "team-a"},
    "spec": {
        "namespaces": ["team-a"],
        "allow": {
            "ecsServices": ["team-a-cluster/team-a-*"],
            "listeners": ["arn:aws:elasticloadbalancing:*:*:listener/app/team-a-*"],
            "targetGroups": ["arn:aws:elasticloadbalancing:*:*:targetgroup/team-a-*"],
            "distributions": ["E2TEAMA*"],
            "images": ["111122223333.dkr.ecr.*.amazonaws.com/team-a/*"],
            "urls": ["https://prometheus.monitoring.svc:9090/*", "https://hooks.slack.com/*"],
        },
    },
}
# Adds URLs for namespaces labelled tier=web (several matching policies add up).
WEB = {
    "metadata": {"name": "web"},
    "spec": {"namespaceSelector": {"matchLabels": {"tier": "web"}},
             "allow": {"urls": ["https://git.example.com/team-a/*", "http://api-*.team-a.svc:*/*"]}},
}
PROD = {"metadata": {"name": "prod"}, "spec": {"namespaces": ["prod"], "allow": {"ecsServices": ["prod/*"]}}}


def spec(**over: Any) -> ReleaseSpec:
    base = release_spec(version="1.0.0", image=IMAGE, cluster="team-a-cluster", service="team-a-api",
                        traffic=(LISTENER, STABLE, CANARY),
                        frontend={"version": "2.0.0", "cloudfront": {"distributionId": "E2TEAMA1", "originId": "web"}})
    return ReleaseSpec.model_validate(merge(base, over))


def policies(*objs: dict[str, Any]) -> list[ReleasePolicy]:
    return [ReleasePolicy.from_object(o) for o in objs]


PROM = {"analysis": {"metrics": [{"name": "errors", "max": 0.05,
                                  "prometheus": {"address": "https://prometheus.monitoring.svc:9090", "query": "x"}}]}}


@pytest.mark.parametrize(("namespace", "labels", "over", "pols", "field", "value"), [
    ("team-a", {}, {}, (TEAM_A,), None, None),
    ("team-a", {}, PROM, (TEAM_A,), None, None),
    # no policy covers the namespace
    ("team-b", {}, {}, (TEAM_A, PROD), "metadata.namespace", "team-b"),
    ("team-a", {}, {}, (), "metadata.namespace", "team-a"),
    # another team's service, listener, target group, distribution, image
    ("team-a", {}, {"backend": {"ecs": {"cluster": "prod", "service": "api"}}}, (TEAM_A,), "spec.backend.ecs", "prod/api"),
    ("team-a", {}, {"backend": {"traffic": {"listenerArn": LISTENER.replace("team-a-alb", "prod-alb")}}}, (TEAM_A,),
     "spec.backend.traffic.listenerArn", LISTENER.replace("team-a-alb", "prod-alb")),
    ("team-a", {}, {"backend": {"traffic": {"canaryTargetGroupArn": CANARY.replace("team-a", "prod")}}}, (TEAM_A,),
     "spec.backend.traffic.canaryTargetGroupArn", CANARY.replace("team-a", "prod")),
    ("team-a", {}, {"frontend": {"cloudfront": {"distributionId": "E2PROD"}}}, (TEAM_A,),
     "spec.frontend.cloudfront.distributionId", "E2PROD"),
    ("team-a", {}, {"backend": {"image": "repo/evil:1.0.0"}}, (TEAM_A,), "spec.backend.image", "repo/evil:1.0.0"),
    # every URL the operator fetches or posts to
    ("team-a", {}, {"analysis": {"metrics": [{"name": "h", "min": 1, "http": {"url": "http://169.254.169.254/latest"}}]}},
     (TEAM_A,), "spec.analysis.metrics[0].http.url", "http://169.254.169.254/latest"),
    ("team-a", {}, {"analysis": {"metrics": [{"name": "e", "max": 1, "prometheus": {"address": "http://internal:9090",
                                                                                    "query": "x"}}]}},
     (TEAM_A,), "spec.analysis.metrics[0].prometheus.address", "http://internal:9090/api/v1/query"),
    ("team-a", {}, {"hooks": {"prePromotion": [{"name": "a", "webhook": {"url": "https://evil.test/x"}}]}},
     (TEAM_A,), "spec.hooks.prePromotion[0].webhook.url", "https://evil.test/x"),
    ("team-a", {}, {"gitops": {"repository": "https://evil.test/r.git", "path": "a.yaml"}},
     (TEAM_A,), "spec.gitops.repository", "https://evil.test/r.git"),
    ("team-a", {}, {"frontend": {"apiContract": {"openapiUrl": "http://api.team-a.svc/openapi.json"}}},
     (TEAM_A,), "spec.frontend.apiContract.openapiUrl", "http://api.team-a.svc/openapi.json"),
    # a second policy, matched by labels, adds URLs up
    ("team-a", {"tier": "web"}, {"gitops": {"repository": "https://git.example.com/team-a/r.git", "path": "a.yaml"},
                                 "frontend": {"apiContract": {"openapiUrl": "http://api-{{version}}.team-a.svc:8080/o"}}},
     (TEAM_A, WEB), None, None),
    ("team-a", {"tier": "api"}, {"gitops": {"repository": "https://git.example.com/team-a/r.git", "path": "a.yaml"}},
     (TEAM_A, WEB), "spec.gitops.repository", "https://git.example.com/team-a/r.git"),
    # a policy matched only by labels covers the namespace alone, and allows nothing else
    ("team-c", {"tier": "web"}, {}, (WEB,), "spec.backend.ecs", "team-a-cluster/team-a-api"),
])
def test_judge(namespace: str, labels: dict[str, str], over: dict[str, Any], pols: tuple[dict[str, Any], ...],
               field: str | None, value: str | None) -> None:
    found = judge(spec(**over), namespace, labels, policies(*pols))
    if field is None:
        assert found is None
        return
    assert found is not None and (found.field, found.value) == (field, value)
    assert "a ReleasePolicy must" in found.message and value is not None and value in found.message


def test_selector_expressions() -> None:
    pol = {"metadata": {"name": "x"}, "spec": {"namespaceSelector": {"matchExpressions": [
        {"key": "team", "operator": "In", "values": ["a", "b"]}, {"key": "frozen", "operator": "DoesNotExist"}]},
        "allow": {"ecsServices": ["*"], "listeners": ["*"], "targetGroups": ["*"], "distributions": ["*"],
                  "images": ["*"]}}}
    assert judge(spec(), "n", {"team": "a"}, policies(pol)) is None
    assert judge(spec(), "n", {"team": "c"}, policies(pol)) is not None
    assert judge(spec(), "n", {"team": "a", "frozen": "yes"}, policies(pol)) is not None


@pytest.mark.parametrize(("glob", "url", "ok"), [
    ("https://hooks.slack.com/*", "https://hooks.slack.com/services/T/B", True),
    ("https://hooks.slack.com/*", "http://hooks.slack.com/services/T/B", False),  # scheme
    ("https://hooks.slack.com/*", "https://hooks.slack.com:8443/services", False),  # port
    ("https://hooks.slack.com/*", "https://hooks.slack.com.evil.test/services", False),
    ("https://hooks.slack.com/*", "https://user:pw@hooks.slack.com/services", False),  # userinfo
    ("https://*.example.com/*", "https://evil.test/.example.com/x", False),
    ("https://*.example.com/*", "https://a.example.com/x", True),
    ("https://HOOKS.slack.com/*", "https://hooks.SLACK.com/x", True),  # hosts are case-insensitive
    ("ssh://git.example.com/team-a/*", "git@git.example.com:team-a/r.git", True),
    ("ssh://git.example.com/team-a/*", "git@git.example.com:team-b/r.git", False),
    ("file:///*", "file:///etc/passwd", False),  # no host
])
def test_url_globs(glob: str, url: str, ok: bool) -> None:
    assert url_matches(glob, url) is ok


def test_url_allowed_for_a_secret_url() -> None:
    pols = policies(TEAM_A)
    assert url_allowed(pols, "team-a", {}, "https://hooks.slack.com/services/T/B")
    assert not url_allowed(pols, "team-a", {}, "https://evil.test/")
    assert not url_allowed(pols, "prod", {}, "https://hooks.slack.com/services/T/B")


def tier(**second: Any) -> ReleaseSpec:
    """A tier of two services of team a (api, then a worker); `second` changes the worker."""
    worker = {"name": "worker", "after": ["api"], "image": IMAGE.replace("/api:", "/worker:"),
              "ecs": {"cluster": "team-a-cluster", "service": "team-a-worker", "containerName": "worker"}, **second}
    api = {"name": "api", "image": IMAGE, "ecs": {"cluster": "team-a-cluster", "service": "team-a-api", "containerName": "api"},
           "traffic": {"listenerArn": LISTENER, "stableTargetGroupArn": STABLE, "canaryTargetGroupArn": CANARY}}
    raw = spec().to_wire()
    raw["backend"] = {"version": "1.0.0", "services": [api, worker]}
    return ReleaseSpec.model_validate(raw)


@pytest.mark.parametrize(("second", "field", "value"), [
    ({}, None, None),
    ({"ecs": {"cluster": "prod", "service": "worker", "containerName": "w"}}, "spec.backend.services[1].ecs", "prod/worker"),
    ({"image": "repo/evil:1.0.0"}, "spec.backend.services[1].image", "repo/evil:1.0.0"),
    ({"traffic": {"listenerArn": LISTENER.replace("team-a-alb/1/2", "prod-alb/1/3"), "stableTargetGroupArn": STABLE + "x",
                  "canaryTargetGroupArn": CANARY + "x"}},
     "spec.backend.services[1].traffic.listenerArn", LISTENER.replace("team-a-alb/1/2", "prod-alb/1/3")),
])
def test_every_service_of_a_tier_is_judged(second: dict[str, Any], field: str | None, value: str | None) -> None:
    found = judge(tier(**second), "team-a", {}, policies(TEAM_A))
    if field is None:
        assert found is None
        return
    assert found is not None and (found.field, found.value) == (field, value)
