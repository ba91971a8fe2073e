"""AWS stops answering mid-canary (the moto server SIGSTOPped: it still accepts connections, as a
hung endpoint does, and never replies): the Release says AwsUnreachable (Ready=False,
Reconciling=True, not Stalled) with the endpoint and the last error, a Warning Event and one log
line; once moto runs again (SIGCONT) the rollout finishes and the condition is gone.

moto is the session's shared emulator: it is stopped for a few tens of seconds only, and always
continued in a `finally`.
"""

from __future__ import annotations

import os
import signal

import pytest

from controller.testing.aws_world import WorldIds
from controller.testing.env import LocalEnvironment
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases, condition

pytestmark = pytest.mark.timeout(300)

STRATEGY = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "10s"}},
                                                   {"setWeight": 60}]}}


def test_aws_stopped_mid_canary_says_aws_unreachable_then_the_rollout_finishes(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, kubectl: Kubectl,
    local_env: LocalEnvironment,
) -> None:
    releases.apply(release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.0.0",
                               strategy=STRATEGY))
    releases.wait_phase(namespace, "app", "Succeeded", 90, generation=1)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="1.0.0",
                               strategy=STRATEGY))
    releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "Pausing"
                  and s.get("observedGeneration") == 2, 60, "the canary's pause")
    assert local_env.moto is not None and local_env.moto.process is not None
    pid = local_env.moto.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        status = releases.wait(namespace, "app", lambda s: condition(s, "Ready").get("reason") == "AwsUnreachable",
                               45, "Ready=False AwsUnreachable")
        ready, reconciling = condition(status, "Ready"), condition(status, "Reconciling")
        assert ready["status"] == "False"
        assert (reconciling["status"], reconciling["reason"]) == ("True", "AwsUnreachable")
        assert condition(status, "Stalled").get("status") != "True"
        assert local_env.moto.endpoint in ready["message"] and "timers are held" in ready["message"]
        assert status["phase"] == "Progressing"
        warnings = [e for e in releases.events(namespace, "app") if e["reason"] == "AwsUnreachable"]
        assert len(warnings) == 1 and warnings[0]["type"] == "Warning"
    finally:
        os.kill(pid, signal.SIGCONT)
    final = releases.wait_phase(namespace, "app", "Succeeded", 120, generation=2)
    assert final["backend"]["stableVersion"] == "2.0.0"
    assert all(c["reason"] != "AwsUnreachable" for c in final["conditions"])
    assert kubectl("wait", "--for=condition=Ready", "--timeout=30s", "release/app", "-n", namespace,
                   check=False).returncode == 0
    log = operator.log_path.read_text() if operator.log_path else ""
    # One log line for this Release's outage, not one per poll (other Releases of the session say theirs).
    assert log.count(f"{namespace}/app: AWS has not answered since") == 1
