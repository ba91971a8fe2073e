"""Every URL field of a Release takes http or https only, in the models and in the CRD's schema."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from controller.api.crd import crd
from controller.api.release import HTTP_URL_PATTERN, ApiContract, HttpCheck, PrometheusQuery, WebhookHook


@pytest.mark.parametrize("bad", ["/proc/self/status", "file:///etc/passwd", "~/.kube/config", "gopher://x/",
                                 "http:///etc/passwd", "ftp://host/x"])
def test_non_http_urls_are_refused(bad: str) -> None:
    for build in (lambda: ApiContract(openapi_url=bad), lambda: HttpCheck(url=bad),
                  lambda: PrometheusQuery(address=bad, query="up"), lambda: WebhookHook(url=bad)):
        with pytest.raises(ValidationError):
            build()


def test_the_crd_schema_carries_the_pattern() -> None:
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]

    def at(*path: str) -> dict[str, Any]:
        node: dict[str, Any] = spec
        for key in path:
            node = node[key] if key != "items" else node["items"]
        return node

    metrics = at("analysis", "properties", "metrics", "items", "properties")
    fields = [
        at("frontend", "properties", "apiContract", "properties", "openapiUrl"),
        metrics["http"]["properties"]["url"],
        metrics["prometheus"]["properties"]["address"],
    ]
    for field in fields:
        assert field["pattern"] == HTTP_URL_PATTERN
    assert re.match(HTTP_URL_PATTERN, "https://prometheus.monitoring.svc:9090")
