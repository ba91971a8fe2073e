"""`release-controller run --log-format json` as a log pipeline sees it: every line of a real run is
one JSON object, each reconcile pass logs one line naming its Release, revision, phase and step
(and the AWS request id when it changed something), and no credential the run used appears in any
line.

The test runs its own operator in its own namespace (outside the session operator's `test-*`
glob) with AWS credentials made up for this run (moto accepts any), so a leak can be told apart
from the shared environment's well-known test credentials. It also reads the client key of the
kubeconfig the operator authenticates with, and puts a Kubernetes Secret next to the Release.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.conftest import Kubectl, Releases

pytestmark = pytest.mark.timeout(240)


def _kubeconfig_secrets(path: Path) -> list[str]:
    """The private key (base64 as stored, and each line of the PEM) the operator signs in with."""
    config = yaml.safe_load(path.read_text())
    found: list[str] = []
    for user in config.get("users", []):
        for field in ("client-key-data", "token"):
            value = user.get("user", {}).get(field)
            if value:
                found.append(value)
                if field == "client-key-data":
                    pem = base64.b64decode(value).decode()
                    found += [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return found


def test_json_logs_carry_each_pass_and_no_secret(
    own_namespace: str, releases: Releases, world: WorldIds, env_vars: dict[str, str], kubectl: Kubectl,
    tmp_path: Path,
) -> None:
    ns = own_namespace
    aws_secret = "rc-secret-" + secrets.token_urlsafe(24)
    session_token = "rc-session-" + secrets.token_urlsafe(32)
    secret_value = "rc-k8s-secret-" + secrets.token_urlsafe(16)
    kubectl("create", "secret", "generic", "app-credentials", "-n", ns, f"--from-literal=password={secret_value}")
    env = {**env_vars, "AWS_SECRET_ACCESS_KEY": aws_secret, "AWS_SESSION_TOKEN": session_token}
    log = tmp_path / "operator.log"
    proc = OperatorProcess(env, namespaces=(ns,), resync=2.0, log_path=log, extra_args=["--log-format", "json"]).start()
    try:
        releases.apply(release_for(world, name="app", namespace=ns, version="1.0.0", rollback={"window": "1s"}))
        releases.wait_phase(ns, "app", "Succeeded", 60, generation=1)
        releases.apply(release_for(world, name="app", namespace=ns, version="2.0.0", rollback={"window": "1s"}))
        releases.wait_phase(ns, "app", "Succeeded", 90, generation=2)
    finally:
        proc.stop()

    text = log.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the operator logged nothing"
    records: list[dict[str, Any]] = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"not one JSON object per line: {line!r}")
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        records.append(record)

    passes = [r for r in records if r["message"] == "pass"]
    assert passes, "no pass line"
    for record in passes:
        assert record["namespace"] == ns and record["name"] == "app", record
        assert {"revision", "phase", "step", "actions"} <= record.keys(), record
    # The passes that changed AWS say which request did it, as AWS (moto) numbered it.
    changing = [r for r in passes if r["actions"] > 0]
    assert changing and all(r.get("aws_request_id") for r in changing), changing
    assert {r["revision"] for r in passes} >= {1, 2}
    assert any(r["phase"] == "Succeeded" and r["revision"] == 2 for r in passes)
    assert {r["phase"] for r in passes} >= {"Progressing", "Succeeded"}

    for secret in [aws_secret, session_token, secret_value, *_kubeconfig_secrets(Path(env_vars["KUBECONFIG"]))]:
        assert secret not in text, "a credential of the run is in the operator's log"
