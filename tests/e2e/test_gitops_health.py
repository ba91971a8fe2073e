"""What Flux (kstatus), Argo CD (our health.lua) and `kubectl wait` conclude about a live Release.

The real operator drives a Release into each phase of the table in docs/gitops.md;
the live object then goes to the real kstatus library (cli-utils v0.37.2) and to health.lua under
gopher-lua, and `kubectl wait` is asked about the Ready and Stalled conditions.

RELEASE_CAPTURE_TESTDATA=1 writes each live object over the Argo CD testdata file of its phase
(integrations/argocd/.../Release/testdata/), so the fixtures become captures from real runs; the
messages in health_test.yaml then need the captured wording. RELEASE_CAPTURE_TESTDATA=DIR writes
them into DIR instead, to compare.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from controller.testing.aws_world import WorldIds
from controller.testing.gitops import ARGOCD_RELEASE, argo_action, argo_health, capture, kstatus
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases, condition

pytestmark = pytest.mark.timeout(300)

HELD = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}]}}
SLOW = {"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 60}]}}


def verdicts(releases: Releases, namespace: str, name: str, testdata: str) -> tuple[str, str, dict[str, Any]]:
    """(kstatus, Argo CD health, the object) for the live Release; captured when asked to."""
    obj = releases.get(namespace, name)
    into = os.environ.get("RELEASE_CAPTURE_TESTDATA")
    if into:
        capture(obj, (ARGOCD_RELEASE / "testdata" if into == "1" else Path(into)) / testdata,
                note=testdata.removesuffix(".yaml"))
    return kstatus(obj).status, argo_health(obj).status, obj


def wait_condition(kubectl: Kubectl, namespace: str, name: str, cond: str, timeout: str) -> bool:
    proc = kubectl("wait", f"--for=condition={cond}", f"--timeout={timeout}", f"release/{name}", "-n", namespace,
                   check=False)
    return proc.returncode == 0


def live(releases: Releases, world: WorldIds, namespace: str, **kw: Any) -> None:
    """The Release adopted at 1.0.0 (backend and frontend), Succeeded at generation 1."""
    releases.apply(release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.0.0", **kw))
    releases.wait_phase(namespace, "app", "Succeeded", 90, generation=1)


def test_succeeded_is_current_healthy_and_ready(operator: OperatorProcess, releases: Releases, namespace: str,
                                                world: WorldIds, kubectl: Kubectl) -> None:
    live(releases, world, namespace)
    assert verdicts(releases, namespace, "app", "succeeded.yaml")[:2] == ("Current", "Healthy")
    assert wait_condition(kubectl, namespace, "app", "Ready", "30s")


def test_progressing_is_in_progress_and_not_ready(operator: OperatorProcess, releases: Releases, namespace: str,
                                                  world: WorldIds, kubectl: Kubectl) -> None:
    live(releases, world, namespace, strategy=SLOW)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               strategy=SLOW))
    releases.wait(namespace, "app", lambda s: s.get("phase") == "Progressing" and s.get("observedGeneration") == 2
                  and s.get("backend", {}).get("canaryWeight") == 20, 60, "the canary at 20%")
    assert verdicts(releases, namespace, "app", "progressing.yaml")[:2] == ("InProgress", "Progressing")
    assert not wait_condition(kubectl, namespace, "app", "Ready", "3s")


def test_paused_is_in_progress_for_kstatus_and_suspended_for_argo(operator: OperatorProcess, releases: Releases,
                                                                  namespace: str, world: WorldIds) -> None:
    live(releases, world, namespace, strategy=SLOW)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               strategy=SLOW, paused=True))
    releases.wait(namespace, "app", lambda s: s.get("phase") == "Paused" and s.get("observedGeneration") == 2, 60,
                  "phase Paused")
    assert verdicts(releases, namespace, "app", "paused.yaml")[:2] == ("InProgress", "Suspended")


def test_a_pause_waiting_for_promote_is_suspended_and_argo_promote_ends_it(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, kubectl: Kubectl,
) -> None:
    live(releases, world, namespace, strategy=HELD)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               strategy=HELD))
    releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "WaitingForPromote", 60,
                  "WaitingForPromote")
    ks, health, obj = verdicts(releases, namespace, "app", "paused_waitingForPromote.yaml")
    assert (ks, health) == ("InProgress", "Suspended")
    # Argo CD's promote action, applied as Argo CD applies an old-style action: a patch of what changed.
    promoted = argo_action(obj, "promote")
    token = promoted["metadata"]["annotations"]["delivery.pratiko.ai/promote"]
    kubectl("annotate", "release/app", "-n", namespace, f"delivery.pratiko.ai/promote={token}", "--overwrite")
    releases.wait(namespace, "app", lambda s: s.get("phase") == "Succeeded" and s.get("observedGeneration") == 2
                  and s.get("backend", {}).get("stableVersion") == "2.0.0", 90, "promoted to 2.0.0")
    assert verdicts(releases, namespace, "app", "succeeded.yaml")[:2] == ("Current", "Healthy")


def abort_rollout(releases: Releases, world: WorldIds, namespace: str, kubectl: Kubectl) -> dict[str, Any]:
    """2.0.0 rolling out, then Argo CD's abort action: RolledBack at generation 2."""
    live(releases, world, namespace, strategy=SLOW)
    releases.apply(release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="2.0.0",
                               strategy=SLOW))
    releases.wait(namespace, "app", lambda s: condition(s, "Progressing").get("reason") == "Pausing", 60,
                  "the first pause")
    aborted = argo_action(releases.get(namespace, "app"), "abort")
    token = aborted["metadata"]["annotations"]["delivery.pratiko.ai/abort"]
    kubectl("annotate", "release/app", "-n", namespace, f"delivery.pratiko.ai/abort={token}", "--overwrite")
    return releases.wait_phase(namespace, "app", "RolledBack", 60, generation=2)


def test_rolled_back_after_abort_is_degraded_for_argo(operator: OperatorProcess, releases: Releases, namespace: str,
                                                      world: WorldIds, kubectl: Kubectl) -> None:
    abort_rollout(releases, world, namespace, kubectl)
    obj = releases.get(namespace, "app")
    assert argo_health(obj).status == "Degraded"
    assert not wait_condition(kubectl, namespace, "app", "Ready", "3s")


def test_rolled_back_after_abort_is_failed_and_stalled(operator: OperatorProcess, releases: Releases, namespace: str,
                                                       world: WorldIds, kubectl: Kubectl) -> None:
    abort_rollout(releases, world, namespace, kubectl)
    assert verdicts(releases, namespace, "app", "rolledBack_aborted.yaml")[:2] == ("Failed", "Degraded")
    assert wait_condition(kubectl, namespace, "app", "Stalled", "30s")


def test_invalid_spec_is_failed_degraded_and_stalled(operator: OperatorProcess, releases: Releases, namespace: str,
                                                     world: WorldIds, kubectl: Kubectl) -> None:
    live(releases, world, namespace)
    # A spec the API server stores but the controller refuses: an ecsTask environment name (checked
    # by the models only; a CEL rule over map keys is over the API server's cost budget).
    body = release_for(world, name="app", namespace=namespace, version="2.0.0", frontend_version="1.0.0")
    body["spec"]["hooks"] = {"preRollout": [{"name": "migrate", "ecsTask": {"command": ["true"],
                                                                           "environment": {"1BAD": "x"}}}]}
    releases.apply(body)
    releases.wait(namespace, "app", lambda s: condition(s, "Ready").get("reason") == "InvalidSpec"
                  and s.get("observedGeneration") == 2, 60, "Ready=False InvalidSpec")
    ks, health, obj = verdicts(releases, namespace, "app", "failed_invalidSpec.yaml")
    assert (ks, health) == ("Failed", "Degraded")
    # Nothing of the previous rollout is left: not its Progressing=False RolloutCompleted, nor Ready=True.
    progressing = condition(obj["status"], "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "InvalidSpec")
    assert {c["observedGeneration"] for c in obj["status"]["conditions"]} == {2}
    assert wait_condition(kubectl, namespace, "app", "Stalled", "30s")
    assert not wait_condition(kubectl, namespace, "app", "Ready", "3s")


def test_incompatible_frontend_is_failed_degraded_and_stalled(operator: OperatorProcess, releases: Releases,
                                                              namespace: str, world: WorldIds,
                                                              kubectl: Kubectl) -> None:
    live(releases, world, namespace)
    body = release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="2.0.0")
    body["spec"]["frontend"]["requiresBackend"] = ">=2.0.0"
    releases.apply(body)
    status = releases.wait(namespace, "app", lambda s: condition(s, "Compatible").get("status") == "False"
                           and s.get("observedGeneration") == 2, 60, "Compatible=False")
    assert condition(status, "Compatible")["reason"] == "IncompatibleBackend"
    assert verdicts(releases, namespace, "app", "stalled_incompatibleFrontend.yaml")[:2] == ("Failed", "Degraded")
    assert wait_condition(kubectl, namespace, "app", "Stalled", "30s")


def test_a_release_no_controller_has_seen_is_progressing_for_argo(releases: Releases, own_namespace: str,
                                                                  world: WorldIds) -> None:
    """No operator watches own_namespace: the spec's generation is never observed."""
    releases.apply(release_for(world, name="app", namespace=own_namespace, version="1.0.0"))
    obj = releases.get(own_namespace, "app")
    assert argo_health(obj).status == "Progressing"
    assert argo_health(obj).message == "Waiting for release-controller to observe generation 1"
    assert kstatus(obj).status == "Current"  # kstatus' limit: a custom resource without status is Current


def test_a_gitops_revert_to_the_live_version_is_current_again(operator: OperatorProcess, releases: Releases,
                                                              namespace: str, world: WorldIds, kubectl: Kubectl) -> None:
    """Rolled back; then the commit is reverted: the spec is 1.0.0 again, which is live, and nothing of the
    rollback (a Stalled condition, a Degraded health) is left over."""
    abort_rollout(releases, world, namespace, kubectl)
    releases.apply(release_for(world, name="app", namespace=namespace, version="1.0.0", frontend_version="1.0.0",
                               strategy=SLOW))
    releases.wait_phase(namespace, "app", "Succeeded", 90, generation=3)
    assert verdicts(releases, namespace, "app", "succeeded.yaml")[:2] == ("Current", "Healthy")
    assert wait_condition(kubectl, namespace, "app", "Ready", "30s")
    assert not wait_condition(kubectl, namespace, "app", "Stalled", "3s")
