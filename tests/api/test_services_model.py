"""`backend.services` and the preview step (controller/api/services.py; the planner walks `services`, the CRD carries them):
today's single-service backend stays valid and means one service; the issue's three services order
into waves; every inconsistent tier is refused with a message that says what to write."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from controller.api.release import Backend, ReleaseSpec
from controller.api.services import (
    DEFAULT_PREVIEW_HEADER,
    SINGLE_SERVICE,
    BackendTier,
    PreviewStep,
)
from controller.testing.specs import release_spec

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def traffic(prefix: str) -> dict[str, str]:
    lb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012"
    return {"listenerArn": f"{lb}:listener/app/pratiko/abc/{prefix}",
            "stableTargetGroupArn": f"{lb}:targetgroup/{prefix}-blue/1",
            "canaryTargetGroupArn": f"{lb}:targetgroup/{prefix}-green/2"}


THREE: dict[str, Any] = {  # the issue's example, as a user writes it
    "version": "2.0.0",
    "services": [
        {"name": "api", "image": f"{ECR}/pratiko-backend:2.0.0",
         "ecs": {"cluster": "pratiko-production", "service": "pratiko-backend", "containerName": "api"},
         "traffic": traffic("api")},
        {"name": "mcp", "after": ["api"], "image": f"{ECR}/pratiko-mcp:2.0.0",
         "ecs": {"cluster": "pratiko-production", "service": "pratiko-mcp", "containerName": "mcp"},
         "traffic": traffic("mcp")},
        {"name": "worker", "after": ["api"], "image": f"{ECR}/pratiko-worker:2.0.0",
         "ecs": {"cluster": "pratiko-production", "service": "pratiko-worker", "containerName": "worker"}},
    ],
}


def three(**change: Any) -> dict[str, Any]:
    body = copy.deepcopy(THREE)
    for name, fields in change.items():
        service = next(s for s in body["services"] if s["name"] == name)
        service.update(fields)
    return body


def test_todays_single_service_backend_is_valid_and_means_one_service() -> None:
    spec = release_spec(version="1.4.0", image=f"{ECR}/pratiko-backend:1.4.0", cluster="c", service="s",
                        traffic=(traffic("api")["listenerArn"], traffic("api")["stableTargetGroupArn"],
                                 traffic("api")["canaryTargetGroupArn"]))
    ReleaseSpec.model_validate(spec)  # the Release model of today is unchanged
    today = Backend.model_validate(spec["backend"])
    tier = BackendTier.model_validate(spec["backend"])
    [service] = tier.service_list()
    assert service.name == SINGLE_SERVICE and service.after == []
    assert (service.image, service.ecs, service.traffic) == (today.image, today.ecs, today.traffic)
    assert tier.waves() == ((SINGLE_SERVICE,),) and tier.rollback_order() == (SINGLE_SERVICE,)
    # Its wire form is what was written: nothing is added to a manifest written today.
    assert tier.to_wire() == {**spec["backend"], "imageTagIsVersion": True}


def test_the_issues_three_services_order_into_waves_and_roll_back_in_reverse() -> None:
    tier = BackendTier.model_validate(THREE)
    assert [s.name for s in tier.service_list()] == ["api", "mcp", "worker"]
    assert tier.waves() == (("api",), ("mcp", "worker"))
    assert tier.rollback_order() == ("worker", "mcp", "api")
    assert tier.service_list()[2].traffic is None  # the worker: a canary by task count


def test_waves_follow_after_not_the_order_written() -> None:
    body = {"version": "2.0.0", "services": [
        {"name": "c", "after": ["b"], "image": f"{ECR}/c:2.0.0", "ecs": {"cluster": "k", "service": "c", "containerName": "c"}},
        {"name": "b", "after": ["a"], "image": f"{ECR}/b:2.0.0", "ecs": {"cluster": "k", "service": "b", "containerName": "b"}},
        {"name": "a", "image": f"{ECR}/a:2.0.0", "ecs": {"cluster": "k", "service": "a", "containerName": "a"}},
        {"name": "d", "after": ["a", "c"], "image": f"{ECR}/d:2.0.0", "ecs": {"cluster": "k", "service": "d", "containerName": "d"}},
    ]}
    tier = BackendTier.model_validate(body)
    assert tier.waves() == (("a",), ("b",), ("c",), ("d",))
    assert tier.rollback_order() == ("d", "c", "b", "a")


@pytest.mark.parametrize(("body", "message"), [
    ({**THREE, "image": f"{ECR}/pratiko-backend:2.0.0"}, "leave backend.image out"),
    ({**THREE, "ecs": {"cluster": "c", "service": "s", "containerName": "api"}}, "leave backend.ecs out"),
    ({"version": "2.0.0"}, "backend needs image and ecs (one service), or services (several)"),
    ({"version": "2.0.0", "services": []}, "at least 1 item"),
    (three(mcp={"name": "api"}), "the name api is used twice"),
    (three(mcp={"after": ["web"]}), "after names web, which is not a service of this Release"),
    (three(mcp={"after": ["mcp"]}), "names the service itself"),
    (three(api={"after": ["worker"]}, worker={"after": ["api"]}), "a cycle in after"),
    (three(mcp={"image": f"{ECR}/pratiko-mcp:1.9.0"}), "backend.services[mcp]: image tag 1.9.0 is not backend.version 2.0.0"),
    (three(mcp={"image": f"{ECR}/pratiko-mcp:latest"}), "not :latest"),
    (three(mcp={"image": f"{ECR}/pratiko-mcp"}), "has no tag or digest"),
    (three(mcp={"name": "MCP", "after": []}), "should match pattern"),
    (three(worker={"ecs": {"cluster": "pratiko-production", "service": "pratiko-mcp", "containerName": "w"}}),
     "mcp and worker share the ECS service pratiko-production/pratiko-mcp"),
    (three(mcp={"traffic": {**traffic("mcp"), "listenerArn": traffic("api")["listenerArn"]}}),
     "share the listener"),
    (three(mcp={"traffic": {**traffic("mcp"), "canaryTargetGroupArn": traffic("api")["canaryTargetGroupArn"]}}),
     "share the target group"),
])
def test_an_inconsistent_tier_is_refused_saying_what_to_write(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        BackendTier.model_validate(body)
    assert message in str(err.value)


def test_image_tags_may_differ_from_the_version_when_the_tier_says_so() -> None:
    body = three(mcp={"image": f"{ECR}/pratiko-mcp:build-4711"})
    BackendTier.model_validate({**body, "imageTagIsVersion": False})
    digest = three(mcp={"image": f"{ECR}/pratiko-mcp@sha256:" + "a" * 64})
    BackendTier.model_validate(digest)  # a digest names no version: nothing to compare


def test_too_many_services_are_refused() -> None:
    services = [{"name": f"s{i}", "image": f"{ECR}/s{i}:2.0.0", "ecs": {"cluster": "k", "service": f"s{i}", "containerName": "c"}}
                for i in range(11)]
    with pytest.raises(ValidationError, match="at most 10 items"):
        BackendTier.model_validate({"version": "2.0.0", "services": services})


def test_a_preview_step_defaults_to_a_header_cloudfront_and_the_alb_both_route_by() -> None:
    step = PreviewStep.model_validate({"preview": {"duration": "5m"}})
    assert step.preview.duration == timedelta(minutes=5)
    assert step.preview.header.name == DEFAULT_PREVIEW_HEADER and step.preview.header.reaches_cloudfront
    assert step.preview.header.value_for("2.0.0") == "2.0.0"  # the version being released
    own = PreviewStep.model_validate({"preview": {"duration": "30s", "header": {"name": "X-Preview", "value": "qa-team"}}})
    assert own.preview.header.value_for("2.0.0") == "qa-team" and not own.preview.header.reaches_cloudfront


@pytest.mark.parametrize(("preview", "message"), [
    ({}, "duration"),
    ({"duration": "0s"}, "a preview lasts a positive duration"),
    ({"duration": "1m", "header": {"name": "X Preview"}}, "should match pattern"),
    ({"duration": "1m", "header": {"name": "x-" + "p" * 39}}, "at most 40 characters"),
    ({"duration": "1m", "header": {"value": "2.*"}}, "should match pattern"),  # ALB would glob it; CloudFront not
    ({"duration": "1m", "header": {"value": "v" * 129}}, "at most 128 characters"),
])
def test_a_bad_preview_is_refused(preview: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        PreviewStep.model_validate({"preview": preview})
    assert message in str(err.value)


def test_the_release_spec_reads_several_services_and_the_crd_carries_them() -> None:
    """`ReleaseSpec.backend.services` is what the planner walks; the CRD carries it, requiring `image`
    and `ecs` only without it (its CEL rules: tests/e2e/test_crd_validation.py)."""
    from controller.api.crd import crd

    raw = copy.deepcopy(release_spec(version="2.0.0", image=f"{ECR}/pratiko-backend:2.0.0", cluster="c", service="s"))
    raw["backend"] = {"version": "2.0.0", "services": [
        {"name": "api", "image": f"{ECR}/pratiko-backend:2.0.0",
         "ecs": {"cluster": "c", "service": "api", "containerName": "api"}, "traffic": traffic("api")},
        {"name": "worker", "after": ["api"], "image": f"{ECR}/pratiko-worker:2.0.0",
         "ecs": {"cluster": "c", "service": "worker", "containerName": "worker"}}]}
    spec = ReleaseSpec.model_validate(raw)
    assert [s.name for s in spec.backend.service_list()] == ["api", "worker"] and spec.backend.several
    assert spec.backend.waves() == (("api",), ("worker",)) and spec.backend.rollback_order() == ("worker", "api")
    assert spec.backend.image.endswith("pratiko-backend:2.0.0")  # the head of the tier, for readers of one
    wire = spec.to_wire()
    assert "image" not in wire["backend"] and ReleaseSpec.model_validate(wire) == spec  # written as given
    with pytest.raises(ValidationError, match="leave backend.image out"):
        ReleaseSpec.model_validate({**raw, "backend": {**raw["backend"], "image": f"{ECR}/x:2.0.0"}})
    with pytest.raises(ValidationError, match="not a service of this Release"):
        bad = copy.deepcopy(raw)
        bad["backend"]["services"][1]["after"] = ["mcp"]
        ReleaseSpec.model_validate(bad)
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["backend"]
    assert schema["properties"]["services"]["maxItems"] == 10
    assert schema["required"] == ["version"]
    rules = [r["rule"] for r in schema["x-kubernetes-validations"]]
    assert "has(self.services) || has(self.image)" in rules and "has(self.services) || has(self.ecs)" in rules
