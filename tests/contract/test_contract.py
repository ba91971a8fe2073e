"""The API-contract check against OpenAPI documents as FastAPI writes them, and `contract check`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from controller.api.release import ApiOperation, ReleaseSpec
from controller.cli import app
from controller.contract import (
    ContractChecker,
    ContractError,
    check,
    load_document,
    parse_document,
    parse_operations,
)
from controller.testing.dataplane.workload import openapi_document
from controller.testing.ports import serving
from controller.testing.specs import release_spec


def op(method: str, path: str, *fields: str) -> ApiOperation:
    return ApiOperation(method=method, path=path, fields=list(fields))  # type: ignore[arg-type]


# A document shaped like FastAPI's: $refs into components, Optional as anyOf-with-null, lists,
# nested models, allOf, a dict response, a path parameter.
DOC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/api/v1/conversations/{conversation_id}": {
            "get": {"responses": {"200": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Conversation"}}}}}},
            "delete": {"responses": {"204": {"description": "gone"}}},
        },
        "/api/v1/conversations": {
            "get": {"responses": {"200": {"content": {"application/json": {
                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Conversation"}}}}}}},
        },
        "/api/v1/usage": {"get": {"responses": {"200": {"$ref": "#/components/responses/Usage"}}}},
        "/api/v1/settings": {"get": {"responses": {"200": {"content": {"application/json": {
            "schema": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Setting"}}}}}}}},
    },
    "components": {
        "responses": {"Usage": {"content": {"application/json": {"schema": {"allOf": [
            {"$ref": "#/components/schemas/Base"}, {"properties": {"tokens": {"type": "integer"}}}]}}}}},
        "schemas": {
            "Base": {"properties": {"id": {"type": "string"}}},
            "Setting": {"properties": {"value": {"type": "string"}}},
            "Message": {"properties": {"role": {"type": "string"}, "text": {"type": "string"},
                                       "sources": {"anyOf": [{"type": "array", "items": {"$ref": "#/components/schemas/Source"}},
                                                             {"type": "null"}]}}},
            "Source": {"properties": {"url": {"type": "string"}}},
            "Conversation": {"type": "object", "properties": {
                "id": {"type": "string"},
                "title": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "owner": {"anyOf": [{"$ref": "#/components/schemas/User"}, {"type": "null"}]},
                "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
            }},
            "User": {"properties": {"name": {"type": "string"}, "plan": {"$ref": "#/components/schemas/Plan"}}},
            "Plan": {"properties": {"tier": {"type": "string"}}},
        },
    },
}


def test_everything_served_gives_no_problem() -> None:
    ops = [
        op("GET", "/api/v1/conversations/{id}", "id", "title", "owner.name", "owner.plan.tier", "messages.text",
           "messages[].sources.url"),
        op("DELETE", "/api/v1/conversations/{cid}"),
        op("GET", "/api/v1/conversations/", "title", "messages.role"),
        op("GET", "/api/v1/usage", "id", "tokens"),
        op("GET", "/api/v1/settings", "theme.value"),
    ]
    assert check(DOC, ops) == []


def test_each_missing_operation_and_field_is_named() -> None:
    ops = [
        op("GET", "/api/v1/conversations/{id}", "id", "owner.email", "messages.attachments", "owner.plan.price"),
        op("POST", "/api/v1/conversations/{id}"),
        op("GET", "/api/v2/chat"),
        op("DELETE", "/api/v1/conversations/{id}", "id"),
        op("GET", "/api/v1/usage", "cost"),
    ]
    assert check(DOC, ops) == [
        "GET /api/v1/conversations/{id}: response field owner.email missing",
        "GET /api/v1/conversations/{id}: response field messages.attachments missing",
        "GET /api/v1/conversations/{id}: response field owner.plan.price missing",
        "POST /api/v1/conversations/{id}: operation missing (the path serves DELETE, GET)",
        "GET /api/v2/chat: operation missing",
        "DELETE /api/v1/conversations/{id}: no JSON response schema, fields id not served",
        "GET /api/v1/usage: response field cost missing",
    ]


def test_the_data_planes_versions_differ_as_documented() -> None:
    """1.x serves POST /api/v1/chat; 2.x moved it to /api/v2/chat: a 1.x frontend breaks on it."""
    ops = [op("POST", "/api/v1/chat", "answer")]
    assert check(openapi_document("1.5.0"), ops) == []
    assert check(openapi_document("2.0.0"), ops) == ["POST /api/v1/chat: operation missing"]
    assert check(openapi_document("2.0.0"), [op("POST", "/api/v2/chat", "answer", "citations")]) == [
        "POST /api/v2/chat: response field citations missing"]


def test_broken_inputs_are_errors_not_problems() -> None:
    with pytest.raises(ContractError, match="no `paths`"):
        parse_document(b'{"openapi": "3.1.0"}')
    with pytest.raises(ContractError, match="points at nothing"):
        check({"paths": {"/a": {"get": {"responses": {"200": {"content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Nope"}}}}}}}}}, [op("GET", "/a", "x")])
    with pytest.raises(ContractError, match="invalid contract"):
        parse_operations({"operations": [{"method": "FETCH", "path": "/a"}]})
    assert [o.method for o in parse_operations([{"method": "get", "path": "/a"}])] == ["GET"]


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture()
def served() -> Iterator[tuple[str, list[str]]]:
    """A tiny HTTP server answering /v/<version>/openapi.json with the data plane's documents."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            hits.append(self.path)
            parts = self.path.strip("/").split("/")
            if len(parts) == 3 and parts[0] == "v" and parts[2] == "openapi.json":
                body = json.dumps(openapi_document(parts[1])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with serving(server):
        yield f"http://127.0.0.1:{server.server_address[1]}", hits


def spec(url: str, config_map: str | None = None) -> ReleaseSpec:
    contract: dict[str, Any] = {"openapiUrl": url + "/v/{{version}}/openapi.json",
                                "operations": [{"method": "POST", "path": "/api/v1/chat", "fields": ["answer"]}]}
    if config_map:
        contract["configMap"] = config_map
    return ReleaseSpec.model_validate(release_spec(
        version="1.0.0", image="b:1.0.0", cluster="c", service="s", environment="staging",
        frontend={"version": "1.0.0", "cloudfront": {"distributionId": "E1", "originId": "web"}, "apiContract": contract},
    ))


def test_checker_fetches_the_versions_document_and_caches_it(served: tuple[str, list[str]]) -> None:
    url, hits = served
    clock = [0.0]
    checker = ContractChecker(httpx.Client(timeout=2.0), ttl=60.0, clock=lambda: clock[0])
    ok = checker("ns", spec(url), "1.5.0")
    assert ok.passed and ok.backend_version == "1.5.0"
    broken = checker("ns", spec(url), "2.0.0")
    assert not broken.passed and broken.problems == ("POST /api/v1/chat: operation missing",)
    checker("ns", spec(url), "2.0.0")
    assert hits == ["/v/1.5.0/openapi.json", "/v/2.0.0/openapi.json"]  # the second 2.0.0 check was cached
    clock[0] = 61.0
    checker("ns", spec(url), "2.0.0")
    assert hits[-1] == "/v/2.0.0/openapi.json" and len(hits) == 3


def test_checker_reports_an_unreachable_document_as_an_error(served: tuple[str, list[str]]) -> None:
    url, _ = served
    checker = ContractChecker(httpx.Client(timeout=2.0))
    result = checker("ns", spec(url + "/nowhere"), "1.0.0")
    assert not result.passed and result.problems == () and result.error is not None and "HTTP 404" in result.error
    gone = checker("ns", spec("http://127.0.0.1:1"), "1.0.0")
    assert gone.error is not None and gone.error.endswith("connection refused")


def test_checker_adds_the_operations_of_a_configmap(served: tuple[str, list[str]]) -> None:
    url, _ = served
    maps = {("ns", "web-contract"): {"contract.yaml": yaml.safe_dump(
        {"operations": [{"method": "GET", "path": "/api/v1/history", "fields": ["items"]}]})}}
    checker = ContractChecker(httpx.Client(timeout=2.0), configmaps=lambda ns, name: maps[(ns, name)])
    result = checker("ns", spec(url, config_map="web-contract"), "1.0.0")
    assert result.problems == ("GET /api/v1/history: operation missing",)
    no_key = ContractChecker(httpx.Client(timeout=2.0), configmaps=lambda ns, name: {})
    assert "has no key contract.yaml" in (no_key("ns", spec(url, config_map="web-contract"), "1.0.0").error or "")


# --------------------------------------------------------------------------- the CLI


def test_cli_contract_check_exits_1_naming_each_problem(served: tuple[str, list[str]], tmp_path: Path) -> None:
    url, _ = served
    contract = tmp_path / "contract.yaml"
    contract.write_text(yaml.safe_dump({"operations": [{"method": "POST", "path": "/api/v1/chat", "fields": ["answer"]},
                                                       {"method": "GET", "path": "/health"}]}))
    runner = CliRunner()
    ok = runner.invoke(app, ["contract", "check", "--openapi", f"{url}/v/1.2.0/openapi.json", "--contract", str(contract)])
    assert ok.exit_code == 0, ok.output
    assert "ok:" in ok.output
    bad = runner.invoke(app, ["contract", "check", "--openapi", f"{url}/v/2.0.0/openapi.json", "--contract", str(contract)])
    assert bad.exit_code == 1 and "POST /api/v1/chat: operation missing" in bad.output


def test_cli_contract_check_from_a_release_manifest_and_a_file(served: tuple[str, list[str]], tmp_path: Path) -> None:
    url, _ = served
    release = tmp_path / "release.yaml"
    body = {"apiVersion": "delivery.pratiko.ai/v1alpha1", "kind": "Release", "metadata": {"name": "r"},
            "spec": spec(url).to_wire()}
    body["spec"]["backend"].update(version="2.1.0", image="b:2.1.0")  # the tag is the version
    release.write_text(yaml.safe_dump(body))
    runner = CliRunner()
    # No --openapi: the Release's openapiUrl at its backend version.
    res = runner.invoke(app, ["contract", "check", "--release", str(release)])
    assert res.exit_code == 1 and "POST /api/v1/chat: operation missing" in res.output and "/v/2.1.0/" in res.output
    doc = tmp_path / "openapi.json"
    doc.write_text(json.dumps(openapi_document("1.0.0")))
    assert runner.invoke(app, ["contract", "check", "--release", str(release), "--openapi", str(doc)]).exit_code == 0
    assert load_document(str(doc), allow_files=True)["info"]["version"] == "1.0.0"
    with pytest.raises(ContractError, match="reads no local file"):  # a Release's openapiUrl: never a file
        load_document(str(doc))
    missing = runner.invoke(app, ["contract", "check", "--openapi", str(doc)])
    assert missing.exit_code == 2
