"""The tenancy issue's attacks, each tried by `alice`: a client-certificate user who may write Releases
in her team's namespace and nothing else (no Secrets), against an operator run with `--tenancy strict`.

Each test asserts what the attack would have changed in AWS is unchanged (task sets, task
definitions, listener weights, origin), the condition the Release shows (Ready=False, Stalled=True,
NotPermitted, or what the analysis says), and that no secret or internal value appears anywhere
alice can read (status, Events, notifications) or in the operator's log.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds, seed_world
from controller.testing.env import LocalEnvironment
from controller.testing.operator import OperatorProcess
from controller.testing.ports import serve_in_background
from controller.testing.releases import release_for
from controller.testing.tenancy import policy_for, team_member_rbac
from tests.e2e.helpers import (
    Kubectl,
    Releases,
    condition,
    drop_namespace,
    snapshot,
    task_definition_images,
    wait_converged,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
PASSWORD = "db-Passw0rd-7f3a9c"
_ids = itertools.count(1)


@dataclass
class Recorder:
    """A loopback HTTP server standing in for an internal service (it answers an IMDS-shaped or a
    hostile document) and for an author's collector (it records every request, headers included)."""

    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    server: ThreadingHTTPServer | None = None

    def start(self) -> "Recorder":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                status, payload = outer.routes.get(self.path.split("?")[0], (200, b"{}"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Internal-Token", SECRET)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's names

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_background(self.server)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture()
def recorder() -> Iterator[Recorder]:
    r = Recorder().start()
    yield r
    r.close()


@pytest.fixture(scope="module")
def tenancy_operator(env_vars: dict[str, str], crd_installed: None,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """One strict operator for the module, watching the `tenancy-*` namespaces (outside the session
    operator's `test-*`), resync every 3 s."""
    log = tmp_path_factory.mktemp("tenancy-operator") / "operator.log"
    proc = OperatorProcess(env_vars, namespaces=("tenancy-*",), resync=3.0, log_path=log, tenancy="strict").start()
    try:
        yield proc
    finally:
        proc.stop()


@dataclass
class Teams:
    admin: Kubectl
    alice: Kubectl  # may write Releases in team_a, nothing else
    team_a: str
    prod: str
    policies: list[str]

    def apply_policy(self, body: dict[str, Any]) -> None:
        self.admin("apply", "-f", "-", stdin=yaml.safe_dump(body))
        self.policies.append(body["metadata"]["name"])


@pytest.fixture()
def teams(kubectl: Kubectl, crd_installed: None, local_env: LocalEnvironment, tmp_path: Path) -> Iterator[Teams]:
    n = f"{os.getpid()}-{next(_ids)}"
    team_a, prod = f"tenancy-{n}-team-a", f"tenancy-{n}-prod"
    for ns in (team_a, prod):
        kubectl("create", "namespace", ns)
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(team_member_rbac(team_a, "alice")))
    alice_config = local_env.kube_server().kubeconfig_for("alice", path=tmp_path / "alice.kubeconfig")
    alice = Kubectl({**kubectl.env, "KUBECONFIG": str(alice_config)})
    assert alice("auth", "can-i", "create", "releases", "-n", team_a).stdout.strip() == "yes"
    assert alice("auth", "can-i", "get", "secrets", "-n", team_a, check=False).stdout.strip() == "no"
    teams = Teams(kubectl, alice, team_a, prod, [])
    yield teams
    for name in teams.policies:
        kubectl("delete", "releasepolicy", name, "--wait=false", check=False)
    for ns in (team_a, prod):
        drop_namespace(kubectl, ns)


def world_named(aws: AwsClients, prefix: str) -> WorldIds:
    return seed_world(aws, name=f"{prefix}{os.getpid()}x{next(_ids)}", image="repo/pratiko-backend:1.0.0")


def not_permitted(releases: Releases, namespace: str, name: str, *said: str) -> dict[str, Any]:
    # The policies are read at most a few seconds old (controller/tenancy/readers.py): one applied just
    # now may not be seen by the first pass, so wait for the refusal that names what is asked.
    def refused(s: dict[str, Any]) -> bool:
        ready = condition(s, "Ready")
        return ready.get("reason") == "NotPermitted" and all(t in ready.get("message", "") for t in said)

    status = releases.wait(namespace, name, refused, 45, f"Ready=False/NotPermitted naming {said}")
    ready, stalled = condition(status, "Ready"), condition(status, "Stalled")
    assert ready["status"] == "False" and (stalled["status"], stalled["reason"]) == ("True", "NotPermitted")
    assert "ReleasePolicy" in ready["message"] or "allowed-urls" in ready["message"], ready
    for text in said:
        assert text in ready["message"], ready
    warnings = [e for e in releases.events(namespace, name) if e["reason"] == "NotPermitted"]
    assert warnings and warnings[0]["type"] == "Warning", warnings
    return status


def claims_of(admin: Kubectl) -> list[str]:
    out = admin("get", "leases", "-A", "-l", "delivery.pratiko.ai/claim", "-o", "json").stdout
    return [(i["metadata"].get("annotations") or {}).get("delivery.pratiko.ai/resource", "")
            for i in json.loads(out)["items"]]


def readable_by_alice(teams: Teams, name: str) -> str:
    """Everything about the Release alice can read: the object with its status, and its Events."""
    alice = Releases(teams.alice)
    return json.dumps(alice.get(teams.team_a, name)) + json.dumps(alice.events(teams.team_a, name))


def test_a_team_cannot_take_over_another_teams_service(
    tenancy_operator: OperatorProcess, teams: Teams, aws: AwsClients,
) -> None:
    prod_world, own_world = world_named(aws, "prod"), world_named(aws, "teama")
    admin, alice = Releases(teams.admin), Releases(teams.alice)
    before = snapshot(aws, prod_world, teams.team_a, "takeover")

    # No policy covers team-a yet: even its own world is refused, and a policy is picked up live.
    alice.apply(release_for(own_world, name="own", namespace=teams.team_a, version="1.0.0"))
    not_permitted(alice, teams.team_a, "own", f"no ReleasePolicy covers namespace {teams.team_a}")
    teams.apply_policy(policy_for(own_world, f"{teams.team_a}", [teams.team_a]))
    teams.apply_policy(policy_for(prod_world, f"{teams.prod}", [teams.prod]))
    wait_converged(alice, aws, own_world, teams.team_a, "own", "1.0.0", generation=1, timeout=90)

    # The attack: prod's service, listener and distribution, an evil image.
    evil = release_for(prod_world, name="takeover", namespace=teams.team_a, version="6.6.6",
                       strategy={"type": "Canary", "canary": {"steps": [{"setWeight": 50}, {"setWeight": 100}]}},
                       frontend_version="6.6.6")
    evil["spec"]["backend"]["image"] = "repo/evil:6.6.6"
    alice.apply(evil)
    status = not_permitted(alice, teams.team_a, "takeover", "spec.backend.ecs",
                           f"{prod_world.cluster}/{prod_world.service}")
    assert status.get("phase") in (None, "Pending"), status
    assert not any(prod_world.service in c or prod_world.listener_arn in c for c in claims_of(teams.admin))
    assert snapshot(aws, prod_world, teams.team_a, "takeover") == before
    # prod's own Release then takes its service without a fight.
    admin.apply(release_for(prod_world, name="app", namespace=teams.prod, version="1.0.0"))
    wait_converged(admin, aws, prod_world, teams.prod, "app", "1.0.0", generation=1, timeout=90)


def test_a_squatter_in_conflict_never_takes_over_another_namespaces_service(
    tenancy_operator: OperatorProcess, teams: Teams, aws: AwsClients,
) -> None:
    world = world_named(aws, "shared")
    # A policy that (too generously) lets both namespaces name the world: the front door still holds.
    teams.apply_policy(policy_for(world, f"{teams.prod}-shared", [teams.prod, teams.team_a],
                                  images=["repo/*"]))
    admin, alice = Releases(teams.admin), Releases(teams.alice)
    admin.apply(release_for(world, name="app", namespace=teams.prod, version="1.0.0"))
    wait_converged(admin, aws, world, teams.prod, "app", "1.0.0", generation=1, timeout=90)

    squat = release_for(world, name="squat", namespace=teams.team_a, version="6.6.6")
    squat["spec"]["backend"]["image"] = "repo/evil:6.6.6"
    alice.apply(squat)
    status = alice.wait(teams.team_a, "squat", lambda s: condition(s, "Ready").get("reason") == "Conflict", 30,
                        "Ready=False/Conflict")
    ready = condition(status, "Ready")
    assert "owned by a Release in another namespace" in ready["message"] and teams.prod not in ready["message"]
    assert condition(status, "Stalled")["status"] == "True"

    # prod renames its Release: delete, then create under another name. The squatter waits on.
    teams.admin("delete", "release", "app", "-n", teams.prod, "--wait=true", "--timeout=30s")
    admin.apply(release_for(world, name="app2", namespace=teams.prod, version="1.0.0"))
    wait_converged(admin, aws, world, teams.prod, "app2", "1.0.0", generation=1, timeout=90)
    status = alice.status(teams.team_a, "squat")
    assert condition(status, "Ready").get("reason") == "Conflict", status
    assert all("evil" not in image for image in task_definition_images(aws, world))
    assert teams.prod not in readable_by_alice(teams, "squat")
    log = Path(str(tenancy_operator.log_path))
    wait_for("the operator's log to name the owner for admins", lambda: f"{teams.prod}/app2" in log.read_text(), 30)


def test_a_secret_is_not_sent_to_the_authors_url(
    tenancy_operator: OperatorProcess, teams: Teams, aws: AwsClients, recorder: Recorder,
) -> None:
    world = world_named(aws, "teama")
    teams.apply_policy(policy_for(world, teams.team_a, [teams.team_a], urls=[recorder.url + "/*"]))
    teams.admin("create", "secret", "generic", "dbadmin", "-n", teams.team_a,
                "--from-literal=username=dbadmin", f"--from-literal=password={PASSWORD}")
    before = snapshot(aws, world, teams.team_a, "app")
    alice = Releases(teams.alice)
    alice.apply(release_for(world, name="app", namespace=teams.team_a, version="1.0.0",
                            gitops={"repository": recorder.url + "/team-a/releases.git", "path": "app.yaml",
                                    "secretRef": {"name": "dbadmin"}}))
    not_permitted(alice, teams.team_a, "app", "Secret dbadmin", "delivery.pratiko.ai/allowed-urls")
    assert recorder.requests == []
    assert snapshot(aws, world, teams.team_a, "app") == before
    seen = readable_by_alice(teams, "app") + Path(str(tenancy_operator.log_path)).read_text()
    assert PASSWORD not in seen


def test_internal_answers_are_measured_never_copied(
    tenancy_operator: OperatorProcess, teams: Teams, aws: AwsClients, recorder: Recorder,
) -> None:
    world = world_named(aws, "teama")
    recorder.routes["/latest/meta-data/iam/security-credentials/role"] = (200, json.dumps(
        {"Code": "Success", "SecretAccessKey": SECRET, "database": {"password": SECRET}}).encode())
    recorder.routes["/api/v1/query"] = (400, json.dumps(
        {"status": "error", "errorType": "bad_data", "error": f"parse error: {SECRET}"}).encode())
    teams.apply_policy(policy_for(world, teams.team_a, [teams.team_a],
                                  urls=[recorder.url + "/*", "http://169.254.169.254/*"]))
    teams.admin("create", "secret", "generic", "team-hook", "-n", teams.team_a,
                f"--from-literal=url={recorder.url}/hook")
    teams.admin("annotate", "secret", "team-hook", "-n", teams.team_a,
                f"delivery.pratiko.ai/allowed-urls={recorder.url}/*")
    alice = Releases(teams.alice)
    imds = recorder.url + "/latest/meta-data/iam/security-credentials/role"
    canary = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "20s"}}]}}
    notifications = [{"name": "team", "on": ["Started", "RolledBack", "Stalled"],
                      "webhook": {"urlSecretRef": {"name": "team-hook", "key": "url"}}}]
    alice.apply(release_for(world, name="app", namespace=teams.team_a, version="1.0.0", strategy=canary))
    wait_converged(alice, aws, world, teams.team_a, "app", "1.0.0", generation=1, timeout=90)

    analysis = {"interval": "1s", "failureLimit": 0, "minSamples": 1, "metrics": [
        {"name": "key", "min": 1, "http": {"url": imds, "jsonPath": "SecretAccessKey", "expectValue": "x"}},
        {"name": "object", "min": 1, "http": {"url": imds, "jsonPath": "database", "expectValue": "ok"}},
        {"name": "imds", "min": 1, "http": {"url": "http://169.254.169.254/latest/meta-data/"}},
        {"name": "prom", "max": 1, "prometheus": {"address": recorder.url, "query": "up"}},
    ]}
    alice.apply(release_for(world, name="app", namespace=teams.team_a, version="2.0.0", strategy=canary,
                            analysis=analysis, notifications=notifications))
    status = alice.wait_phase(teams.team_a, "app", "RolledBack", 90, generation=2)
    by_metric = {m["metric"]: m for m in status["analysis"]["measurements"]}
    assert "does not match expectValue" in by_metric["key"]["message"]
    assert "names an object or a list" in by_metric["object"]["message"]
    assert "address not allowed" in by_metric["imds"]["message"]
    wait_for("the RolledBack notification", lambda: any(b'"RolledBack"' in r[3] for r in recorder.requests
                                                        if r[1] == "/hook"), 30)
    posted = b"".join(r[3] for r in recorder.requests if r[0] == "POST").decode()
    seen = readable_by_alice(teams, "app") + posted + Path(str(tenancy_operator.log_path)).read_text()
    assert SECRET not in seen


def test_a_local_file_is_never_an_openapi_url(
    tenancy_operator: OperatorProcess, teams: Teams, aws: AwsClients,
) -> None:
    world = world_named(aws, "teama")
    body = release_for(world, name="app", namespace=teams.team_a, version="1.0.0", frontend_version="1.0.0")
    body["spec"]["frontend"]["apiContract"] = {"openapiUrl": "/proc/self/status"}
    refused = teams.alice("apply", "-f", "-", stdin=yaml.safe_dump(body), check=False)
    assert refused.returncode != 0 and "openapiUrl" in refused.stderr and "should match" in refused.stderr
    assert teams.alice("get", "release", "app", "-n", teams.team_a, check=False).returncode != 0
