"""The reconciler changes AWS only for the object that exists now, as the API server says.

The Kubernetes and AWS sides here are small recording fakes of the reconciler's own interfaces
(`StatusSink`, `Applier`, `Planner`): what is under test is the order of the reconciler's calls,
which no real server could show as directly. The end-to-end version, with a frozen operator and a
real kube-apiserver, is tests/e2e/test_object_gone.py.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from controller.api.release import ReleaseStatus
from controller.errors import ObjectGone
from controller.planner.actions import SetListenerWeights
from controller.planner.decision import Decision
from controller.reconciler.driver import Reconciler

SPEC = {
    "environment": "development",
    "backend": {
        "version": "2.0.0",
        "image": "repo/app:2.0.0",
        "ecs": {"cluster": "c", "service": "s", "containerName": "api"},
        "traffic": {
            "listenerArn": "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/lb/1/1",
            "stableTargetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/blue/1",
            "canaryTargetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/green/2",
        },
    },
    "strategy": {"type": "Fast"},
}


def release(uid: str = "uid-1", generation: int = 1, version: str = "2.0.0") -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec["backend"]["version"] = version
    spec["backend"]["image"] = f"repo/app:{version}"
    return {"metadata": {"namespace": "ns", "name": "app", "uid": uid, "generation": generation}, "spec": spec}


@dataclass
class Api:
    """The API server as the reconciler sees it: the object now, and the status writes."""

    now: dict[str, Any] | None
    writes: list[dict[str, Any]] = field(default_factory=list)

    def current(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.now

    def replace_status(self, namespace: str, name: str, status: dict[str, Any], uid: str | None = None,
                       resource_version: str | None = None) -> None:
        if self.now is None or self.now["metadata"]["uid"] != uid:
            raise ObjectGone(namespace, name, uid)
        self.writes.append(status)

    def event(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class Planner:
    decided_for: list[str] = field(default_factory=list)

    def decide(self, spec: Any, status: ReleaseStatus, observation: Any, ctx: Any) -> Decision:
        self.decided_for.append(spec.backend.version)
        weights = SetListenerWeights(spec.backend.traffic.listener_arn, {})
        new = status.model_copy(update={"observed_generation": ctx.generation})
        return Decision(actions=(weights,), status=new, requeue_after=1.0)

    def analysis_due(self, *args: Any) -> bool:
        return False


def reconciler(api: Api, applied: list[Any], planner: Planner) -> Reconciler:
    observer = SimpleNamespace(observe=lambda key, spec, fresh: SimpleNamespace(errors=()), forget=lambda key: None)
    return Reconciler(
        observer=observer,  # type: ignore[arg-type]
        applier=lambda actions, observation: applied.extend(actions),
        planner=planner,
        sink=api,
        clock=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    )


@pytest.mark.parametrize("now", [None, release(uid="uid-2")], ids=["deleted", "re-created"])
def test_a_pass_for_an_object_that_is_gone_changes_nothing(now: dict[str, Any] | None) -> None:
    api, applied, planner = Api(now), [], Planner()
    with pytest.raises(ObjectGone):
        reconciler(api, applied, planner).reconcile(release(uid="uid-1"))
    assert applied == [] and api.writes == []


def test_a_spec_changed_under_the_pass_is_decided_again_from_the_new_spec() -> None:
    api, applied, planner = Api(release(generation=2, version="3.0.0")), [], Planner()
    reconciler(api, applied, planner).reconcile(release(generation=1, version="2.0.0"))
    assert planner.decided_for == ["2.0.0", "3.0.0"]
    assert len(applied) == 1  # only the decision for the spec that exists was applied
    assert api.writes and api.writes[-1]["observedGeneration"] == 2


def test_the_same_object_is_applied_and_written() -> None:
    api, applied, planner = Api(release()), [], Planner()
    reconciler(api, applied, planner).reconcile(release())
    assert len(applied) == 1 and len(api.writes) == 1
