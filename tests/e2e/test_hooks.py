"""Webhook hooks end to end: the session operator, moto and loopback HTTP endpoints.

- prePromotion: a hook answering 503 holds the canary short of full traffic (polled from AWS) and
  rolls it back at its timeout; one answering 200 lets it promote.
- preRollout: a hook answering 500 until its timeout rolls back before the canary ever got weight;
  the onRollback hook is then called once; the next version's preRollout answers 200 and its
  postPromotion hook is called once, after the promotion.
- irreversible: a migration that passed, then a failing analysis (an HTTP health metric inside the
  rollback window) pauses with Stalled=True, reason RollbackUnsafe, and a notification, instead of
  rolling back; `kubectl release abort` refuses, `abort --force` rolls back.
- the API server refuses what is not built yet (ecsTask hooks, until the ECS task runner lands) and
  two hooks of one name at one point.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.ports import serve_in_background
from controller.testing.releases import release_for
from tests.e2e.helpers import (
    Kubectl,
    Releases,
    condition,
    listener_weights,
    wait_for,
    wait_passes,
)
from tests.notify.test_notify import Receiver

pytestmark = pytest.mark.timeout(240)

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 30}, {"pause": {"duration": "1s"}}]}}
CLI = str(Path(sys.executable).parent / "release-controller")


class Endpoint:
    """A loopback endpoint answering `code` (the test may change it): POSTs recorded with their
    answer (a hook's calls), GETs answered too (an analysis health check)."""

    def __init__(self, code: int = 200) -> None:
        self.code = code
        self.calls: list[tuple[int, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls.append((outer.code, body))
                self._answer()

            def do_GET(self) -> None:  # noqa: N802
                self._answer()

            def _answer(self) -> None:
                self.send_response(outer.code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_background(self.server)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Weights:
    """The canary target group's weight in moto's listener, polled every 0.2 s while running."""

    def __init__(self, aws: AwsClients, world: WorldIds) -> None:
        self.seen: list[int] = []
        self._stop = threading.Event()

        def watch() -> None:
            while not self._stop.is_set():
                self.seen.append(listener_weights(aws, world).get(world.canary_target_group_arn, 0))
                time.sleep(0.2)

        threading.Thread(target=watch, daemon=True).start()

    def stop(self) -> list[int]:
        self._stop.set()
        return self.seen


def test_a_503_hook_holds_then_rolls_back_and_a_200_hook_promotes(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    refusing, approving = Receiver(fail_first=10_000), Receiver(fail_first=0)
    green = world.canary_target_group_arn
    weights = Weights(aws, world)

    def body(version: str, url: str) -> dict[str, object]:
        return release_for(world, name="app", namespace=namespace, version=version, strategy=CANARY,
                           rollback={"window": "1s"},
                           hooks={"prePromotion": [{"name": "approve", "webhook": {"url": url, "timeout": "6s"}}]})

    try:
        releases.apply(body("1.0.0", refusing.url))
        releases.wait_phase(namespace, "app", "Succeeded", 60, generation=1)  # adopted: no hook runs
        assert refusing.answers == []
        releases.apply(body("2.0.0", refusing.url))
        held = releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "HookPending"
                             and "HTTP 503" in condition(s, "Progressing").get("message", ""), 60, "held by the hook")
        assert held["backend"]["canaryVersion"] == "2.0.0"
        gone = releases.wait(namespace, "app", lambda s: s.get("phase") == "RolledBack", 60, "rolled back")
        ready = condition(gone, "Ready")
        assert ready["reason"] == "HookFailed" and "HTTP 503" in ready["message"]
        assert len(refusing.answers) >= 3  # asked again with back-off
        wait_passes(operator, namespace, "app", 1)  # the weights watched over a pass after the rollback, too
        seen = weights.stop()
        assert 30 in seen and 100 not in seen  # the canary had its step, never full traffic
        assert listener_weights(aws, world).get(green, 0) == 0

        releases.apply(body("3.0.0", approving.url))
        done = releases.wait(namespace, "app", lambda s: s.get("phase") == "Succeeded" and s.get("revision", 0) >= 3
                             and s.get("backend", {}).get("stableVersion") == "3.0.0", 90, "3.0.0 promoted")
        assert len(approving.answers) == 1 and approving.got[0]["hook"] == "approve"
        assert approving.got[0]["backend"]["canaryVersion"] == "3.0.0"
        assert [h["passedAt"] is not None for h in done["hooks"]] == [True]
    finally:
        weights.stop()
        refusing.close()
        approving.close()


def test_a_failing_pre_rollout_hook_rolls_back_before_any_weight_then_on_rollback_and_post_promotion_run_once(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    refusing, migrating, page, smoke = Endpoint(500), Endpoint(200), Endpoint(200), Endpoint(200)

    def body(version: str, migrate: Endpoint) -> dict[str, object]:
        return release_for(world, name="app", namespace=namespace, version=version, strategy=CANARY,
                           rollback={"window": "1s"}, hooks={
                               "preRollout": [{"name": "migrate", "webhook": {"url": migrate.url, "timeout": "4s"}}],
                               "postPromotion": [{"name": "smoke", "webhook": {"url": smoke.url}}],
                               "onRollback": [{"name": "page", "webhook": {"url": page.url}}]})

    weights: Weights | None = None
    try:
        releases.apply(body("1.0.0", refusing))
        releases.wait_phase(namespace, "app", "Succeeded", 60, generation=1)  # adopted: no hook runs
        weights = Weights(aws, world)
        releases.apply(body("2.0.0", refusing))
        gone = releases.wait(namespace, "app", lambda s: s.get("phase") == "RolledBack", 60, "rolled back")
        ready = condition(gone, "Ready")
        assert ready["reason"] == "HookFailed", ready
        assert "preRollout hook migrate" in ready["message"] and "HTTP 500" in ready["message"]
        assert len(refusing.calls) >= 2 and all(code == 500 for code, _ in refusing.calls)  # asked again
        assert refusing.calls[0][1]["point"] == "preRollout" and refusing.calls[0][1]["backend"]["canaryVersion"] == "2.0.0"
        wait_for("the onRollback hook called", lambda: len(page.calls) == 1, 30)
        wait_passes(operator, namespace, "app", 2)  # a few passes later: still once
        assert len(page.calls) == 1 and page.calls[0][1]["point"] == "onRollback"
        assert page.calls[0][1]["phase"] == "RolledBack" and page.calls[0][1]["revision"] == 2
        seen = weights.stop()
        assert len(seen) > 10 and max(seen) == 0  # the canary never had any weight
        assert smoke.calls == []

        weights = Weights(aws, world)
        releases.apply(body("3.0.0", migrating))
        releases.wait(namespace, "app", lambda s: s.get("phase") == "Succeeded" and s.get("revision", 0) >= 3
                      and s.get("backend", {}).get("stableVersion") == "3.0.0", 90, "3.0.0 promoted")
        wait_for("the postPromotion hook called", lambda: len(smoke.calls) == 1, 30)
        wait_passes(operator, namespace, "app", 2)  # a few passes later: each hook still called once
        assert len(smoke.calls) == 1 and len(migrating.calls) == 1 and len(page.calls) == 1
        # preRollout ran before the canary had any weight; postPromotion after all traffic moved.
        assert migrating.calls[0][1]["backend"]["canaryWeight"] == 0
        post = smoke.calls[0][1]
        assert post["point"] == "postPromotion" and post["phase"] == "Succeeded"
        assert post["backend"]["stableVersion"] == "3.0.0" and post["revision"] == 3
        assert 30 in weights.stop()
    finally:
        if weights is not None:
            weights.stop()
        for e in (refusing, migrating, page, smoke):
            e.close()


def test_an_irreversible_migration_then_a_failing_analysis_pauses_stalled_and_abort_needs_force(
    operator: OperatorProcess, releases: Releases, kubectl: Kubectl, namespace: str, world: WorldIds,
    aws: AwsClients, env_vars: dict[str, str],
) -> None:
    migrate, health, notes = Endpoint(200), Endpoint(200), Receiver(fail_first=0)
    kubectl("create", "secret", "generic", "team-webhook", "-n", namespace, f"--from-literal=url={notes.url}")
    analysis = {"interval": "1s", "failureLimit": 0, "minSamples": 1,
                "metrics": [{"name": "health", "http": {"url": health.url, "expectStatus": 200}, "min": 1}]}

    def body(version: str) -> dict[str, object]:
        return release_for(
            world, name="app", namespace=namespace, version=version, strategy=CANARY, analysis=analysis,
            rollback={"window": "5m"},
            hooks={"prePromotion": [{"name": "migrate", "irreversible": True, "webhook": {"url": migrate.url}}]},
            notifications=[{"name": "team", "on": ["Stalled", "RolledBack"],
                            "webhook": {"urlSecretRef": {"name": "team-webhook", "key": "url"}}}])

    def abort(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLI, "abort", "app", "-n", namespace, *extra], env=env_vars, capture_output=True,
                              text=True, timeout=60)

    try:
        releases.apply(body("1.0.0"))
        releases.wait_phase(namespace, "app", "Succeeded", 60, generation=1)
        releases.apply(body("2.0.0"))
        live = releases.wait(namespace, "app", lambda s: s.get("phase") == "Succeeded" and s.get("revision") == 2
                             and s.get("backend", {}).get("stableVersion") == "2.0.0", 90, "2.0.0 promoted")
        assert len(migrate.calls) == 1  # the migration ran, before full traffic
        serving = live["backend"]["stableTargetGroupArn"]
        health.code = 500  # degraded inside the rollback window: an automatic rollback is due
        held = releases.wait(namespace, "app", lambda s: s.get("phase") == "Paused"
                             and condition(s, "Ready").get("reason") == "RollbackUnsafe", 60, "held as unsafe")
        stalled = condition(held, "Stalled")
        assert stalled["status"] == "True" and stalled["reason"] == "RollbackUnsafe" and "migrate" in stalled["message"]
        assert condition(held, "Reconciling")["status"] == "False"
        assert held["backend"]["stableVersion"] == "2.0.0"
        assert listener_weights(aws, world)[serving] == 100  # traffic stays on the new version
        warnings = [e for e in releases.events(namespace, "app") if e["reason"] == "RollbackUnsafe"]
        assert warnings and warnings[0]["type"] == "Warning"
        wait_for("the Stalled notification", lambda: any(b["moment"] == "Stalled" and b["revision"] == 2
                                                         for b in notes.got), 30)
        assert not any(b["moment"] == "RolledBack" for b in notes.got)

        refused = abort()
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "irreversible hook migrate" in refused.stderr and "--force" in refused.stderr
        wait_passes(operator, namespace, "app", 1)
        assert releases.status(namespace, "app")["phase"] == "Paused"

        forced = abort("--force")
        assert forced.returncode == 0, forced.stderr
        back = releases.wait(namespace, "app", lambda s: s.get("phase") == "RolledBack", 60, "rolled back by force")
        assert back["backend"]["stableVersion"] == "1.0.0" and condition(back, "Ready")["reason"] == "Aborted"
        wait_for("traffic off the new version", lambda: listener_weights(aws, world)[serving] == 0, 10)
        wait_for("the RolledBack notification", lambda: any(b["moment"] == "RolledBack" for b in notes.got), 30)
    finally:
        for e in (migrate, health):
            e.close()
        notes.close()


@pytest.mark.parametrize("hooks, said", [
    ({"prePromotion": [{"name": "migrate", "ecsTask": {"command": ["alembic", "upgrade", "head"]},
                        "webhook": {"url": "http://127.0.0.1:9/approve"}}]},
     "a hook has exactly one of webhook or ecsTask"),
    ({"prePromotion": [{"name": "a", "webhook": {"url": "http://x/"}}, {"name": "a", "webhook": {"url": "http://y/"}}]},
     "Duplicate value"),
    ({"onRollback": [{"name": f"h{i}", "webhook": {"url": "http://x/"}} for i in range(11)]},
     "must have at most 10 items"),
])
def test_hooks_the_api_server_refuses(
    releases: Releases, namespace: str, world: WorldIds, hooks: dict[str, object], said: str,
) -> None:
    body = release_for(world, name="app", namespace=namespace, version="1.0.0", hooks=hooks)
    proc = releases.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body), check=False)
    assert proc.returncode != 0 and said in proc.stderr, proc.stderr
    assert releases.kubectl("get", "release", "app", "-n", namespace, check=False).returncode != 0


def test_every_hook_point_is_accepted(releases: Releases, namespace: str, world: WorldIds) -> None:
    hook = [{"name": "h", "webhook": {"url": "http://hooks.local/"}}]
    body = release_for(world, name="app", namespace=namespace, version="1.0.0",
                       hooks={p: hook for p in ("preRollout", "prePromotion", "postPromotion", "onRollback")})
    releases.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
