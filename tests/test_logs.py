"""controller/logs.py: the JSON and text lines, the fields a pass adds, kopf's object reference,
the AWS request id kept for a pass, and redaction of registered secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from controller import logs


@pytest.fixture()
def capture() -> Iterator[tuple[io.StringIO, list[str]]]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    formats: list[str] = []
    yield stream, formats
    root.handlers[:], root.level = saved


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_pass_line_carries_the_release_and_the_request_id_of_its_last_change(capture) -> None:  # type: ignore[no-untyped-def]
    stream, _ = capture
    logs.configure("json", stream=stream, env={})
    log = logging.getLogger("controller.reconciler.driver")
    with logs.release_context("prod", "app"):
        logs.aws_request("DescribeServices", {"ResponseMetadata": {"RequestId": "read-1"}})
        logs.aws_request("UpdateService", {"ResponseMetadata": {"RequestId": "write-1"}})
        logs.aws_request("DescribeServices", {"ResponseMetadata": {"RequestId": "read-2"}})
        logs.note(revision=3, phase="Progressing", step=1)
        log.info("pass", extra={"actions": 2})
    log.info("outside")
    inside, outside = lines(stream)
    assert inside["message"] == "pass" and inside["logger"] == "controller.reconciler.driver" and inside["level"] == "INFO"
    assert (inside["namespace"], inside["name"], inside["revision"], inside["phase"], inside["step"]) == ("prod", "app", 3, "Progressing", 1)
    assert inside["aws_request_id"] == "write-1" and inside["actions"] == 2
    assert "namespace" not in outside and "aws_request_id" not in outside


def test_a_read_only_pass_reports_its_last_read(capture) -> None:  # type: ignore[no-untyped-def]
    stream, _ = capture
    logs.configure("json", stream=stream, env={})
    with logs.release_context("prod", "app"):
        logs.aws_request("DescribeServices", {"ResponseMetadata": {"RequestId": "read-1"}})
        logs.aws_request("GetParameters", {"ResponseMetadata": {"RequestId": "read-2"}})
        logging.getLogger("controller").info("pass")
    assert lines(stream)[0]["aws_request_id"] == "read-2"


def test_kopfs_object_lines_get_the_same_fields(capture) -> None:  # type: ignore[no-untyped-def]
    stream, _ = capture
    logs.configure("json", stream=stream, env={})
    # kopf's per-object logger adapter puts the object on the record as `k8s_ref`.
    logging.getLogger("kopf.objects").warning(
        "Handler failed", extra={"k8s_ref": {"namespace": "prod", "name": "app", "uid": "u1"}, "k8s_skip": False})
    (record,) = lines(stream)
    assert (record["namespace"], record["name"], record["logger"]) == ("prod", "app", "kopf.objects")
    assert "k8s_ref" not in record and "k8s_skip" not in record


def test_registered_secrets_never_reach_a_line(capture) -> None:  # type: ignore[no-untyped-def]
    stream, _ = capture
    key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    logs.configure("json", stream=stream, env={"AWS_SECRET_ACCESS_KEY": key})
    logging.getLogger("botocore").warning("signing with %s", key)
    logs.configure("text", stream=stream, env={})
    logging.getLogger("controller").warning("again %s", key)
    assert key not in stream.getvalue() and stream.getvalue().count("***") == 2


def test_text_lines_name_the_release(capture) -> None:  # type: ignore[no-untyped-def]
    stream, _ = capture
    logs.configure("text", stream=stream, env={})
    with logs.release_context("prod", "app"):
        logs.note(revision=2, phase="Succeeded", step=0)
        logging.getLogger("controller.reconciler.driver").info("pass")
    assert "controller.reconciler.driver: [prod/app revision=2 phase=Succeeded step=0] pass" in stream.getvalue()


def test_an_api_server_away_is_said_by_the_election_not_by_each_retry(capture) -> None:  # type: ignore[no-untyped-def]
    """urllib3 logs every retry of a Kubernetes request as a WARNING (three per leader-election try);
    without --verbose only the operator's own line says the API server did not answer."""
    stream, _ = capture
    logs.configure("text", stream=stream, env={})
    logging.getLogger("urllib3.connectionpool").warning("Retrying (Retry(total=2)) after connection broken")
    logging.getLogger("controller.operator.leadership").warning("the API server did not answer: MaxRetryError")
    assert "Retrying" not in stream.getvalue() and "did not answer" in stream.getvalue()
    logs.configure("text", stream=stream, env={}, verbose=True)
    logging.getLogger("urllib3.connectionpool").warning("Retrying (Retry(total=1)) after connection broken")
    assert "Retrying (Retry(total=1))" in stream.getvalue()


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="json, text"):
        logs.configure("yaml")  # type: ignore[arg-type]


def test_credentials_in_urls_never_reach_a_line_httpx_included(capture) -> None:  # type: ignore[no-untyped-def]
    import httpx

    stream, _ = capture
    logs.configure("json", stream=stream, env={}, verbose=True)  # verbose: httpx's INFO request lines too
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"status": "success"}))
    with httpx.Client(transport=transport) as client:  # httpx's own logging, over a local transport
        client.get("http://admin:s3cret-pw@prometheus:9090/api/v1/query", params={"query": "up"})
    logging.getLogger("controller.reconciler").warning("measuring https://bot:tok3n-value@git.example/r.git")
    text = stream.getvalue()
    assert "s3cret-pw" not in text and "tok3n-value" not in text and "admin:" not in text
    assert "http://***@prometheus:9090" in text and "https://***@git.example" in text
