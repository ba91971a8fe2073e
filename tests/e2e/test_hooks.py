"""prePromotion webhook hooks end to end: the session operator, moto and a loopback receiver. A
hook answering 503 holds the canary short of full traffic (polled from AWS) and rolls it back at
its timeout; one answering 200 lets it promote."""

from __future__ import annotations

import threading
import time

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Releases, condition, listener_weights
from tests.notify.test_notify import Receiver

pytestmark = pytest.mark.timeout(240)

CANARY = {"type": "Canary", "canary": {"steps": [{"setWeight": 30}, {"pause": {"duration": "1s"}}]}}


def test_a_503_hook_holds_then_rolls_back_and_a_200_hook_promotes(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
) -> None:
    refusing, approving = Receiver(fail_first=10_000), Receiver(fail_first=0)
    green = world.canary_target_group_arn
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(listener_weights(aws, world).get(green, 0))
            time.sleep(0.2)

    def body(version: str, url: str) -> dict[str, object]:
        return release_for(world, name="app", namespace=namespace, version=version, strategy=CANARY,
                           rollback={"window": "1s"},
                           hooks={"prePromotion": [{"name": "approve", "webhook": {"url": url, "timeout": "6s"}}]})

    try:
        releases.apply(body("1.0.0", refusing.url))
        releases.wait_phase(namespace, "app", "Succeeded", 60, generation=1)  # adopted: no hook runs
        assert refusing.answers == []
        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        releases.apply(body("2.0.0", refusing.url))
        held = releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "HookPending"
                             and "HTTP 503" in condition(s, "Progressing").get("message", ""), 60, "held by the hook")
        assert held["backend"]["canaryVersion"] == "2.0.0"
        gone = releases.wait(namespace, "app", lambda s: s.get("phase") == "RolledBack", 60, "rolled back")
        ready = condition(gone, "Ready")
        assert ready["reason"] == "HookFailed" and "HTTP 503" in ready["message"]
        assert len(refusing.answers) >= 3  # asked again with back-off
        time.sleep(1)
        assert 30 in seen and 100 not in seen  # the canary had its step, never full traffic
        assert listener_weights(aws, world).get(green, 0) == 0

        releases.apply(body("3.0.0", approving.url))
        done = releases.wait(namespace, "app", lambda s: s.get("phase") == "Succeeded" and s.get("revision", 0) >= 3
                             and s.get("backend", {}).get("stableVersion") == "3.0.0", 90, "3.0.0 promoted")
        assert len(approving.answers) == 1 and approving.got[0]["hook"] == "approve"
        assert approving.got[0]["backend"]["canaryVersion"] == "3.0.0"
        assert [h["passedAt"] is not None for h in done["hooks"]] == [True]
    finally:
        stop.set()
        refusing.close()
        approving.close()


@pytest.mark.parametrize("hooks, said", [
    ({"preRollout": [{"name": "migrate", "ecsTask": {"command": ["alembic", "upgrade", "head"]}}]},
     "only prePromotion hooks are supported"),
    ({"prePromotion": [{"name": "migrate", "ecsTask": {"command": ["alembic", "upgrade", "head"]},
                        "webhook": {"url": "http://127.0.0.1:9/approve"}}]},
     "a hook has exactly one of webhook or ecsTask"),
])
def test_hooks_not_built_yet_are_refused_by_the_api_server(
    releases: Releases, namespace: str, world: WorldIds, hooks: dict[str, object], said: str,
) -> None:
    body = release_for(world, name="app", namespace=namespace, version="1.0.0", hooks=hooks)
    import yaml

    proc = releases.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body), check=False)
    assert proc.returncode != 0 and said in proc.stderr, proc.stderr
    assert releases.kubectl("get", "release", "app", "-n", namespace, check=False).returncode != 0
