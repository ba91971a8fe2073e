"""The controller's own Prometheus metrics. Names are part of the dashboards and alert rules in
`manifests/monitoring`; change them together.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILE_TOTAL = Counter(
    "release_controller_reconcile_total",
    "Reconciles by result: ok and error (a pass), gone (the Release was deleted or re-created under the pass, "
    "which then changed nothing), unchanged (a settled Release the resync round found as its "
    "last pass left it, so no pass was needed).",
    ["result"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "release_controller_reconcile_seconds",
    "Wall time of one reconcile pass.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
RELEASE_CHECKS = Counter(
    "release_controller_release_checks",
    "Times the controller has checked one Release against AWS and finished: each completed pass, and "
    "each resync round that found the Release as its last pass left it. A series that stops growing "
    "names a Release nobody looks at any more.",
    ["namespace", "name"],
    registry=REGISTRY,
)
RELEASE_PHASE = Gauge(
    "release_controller_release_phase", "1 for the phase a Release is in.", ["namespace", "name", "phase"],
    registry=REGISTRY,
)
CANARY_WEIGHT = Gauge(
    "release_controller_canary_weight", "Traffic percent on the canary.", ["namespace", "name", "tier"],
    registry=REGISTRY,
)
VERSION_WEIGHT = Gauge(
    "release_controller_version_weight",
    "Traffic percent each backend version receives, as AWS reported the listener weights and task sets at the "
    "Release's last pass (status.backend.serving), whatever the spec says.",
    ["namespace", "name", "tier", "version"], registry=REGISTRY,
)
ANALYSIS_TOTAL = Counter(
    "release_controller_analysis_total", "Analysis measurements by verdict, per Release.",
    ["namespace", "name", "verdict"], registry=REGISTRY,
)
VERDICTS = ("Passed", "Failed", "Inconclusive", "NoData")
ROLLBACKS_TOTAL = Counter(
    "release_controller_rollbacks_total", "Automatic and requested rollbacks.", ["namespace", "name", "reason"],
    registry=REGISTRY,
)
DRIFT_TOTAL = Counter(
    "release_controller_drift_detected_total", "Drift found between AWS and the Release.",
    ["namespace", "name", "resource"], registry=REGISTRY,
)
AWS_CALLS = Counter(
    "release_controller_aws_calls_total", "AWS API calls by operation.", ["operation"], registry=REGISTRY
)

NOTIFICATIONS_TOTAL = Counter(
    "release_controller_notifications_total",
    "Notification delivery attempts by sink kind and result: sent, retried (an attempt failed, another "
    "follows), failed (a round of attempts gave up; tried again later), expired (pending an hour, given "
    "up), dropped (the queue was full, or more than 50 pending).",
    ["sink", "result"], registry=REGISTRY,
)

LEADER = Gauge(
    "release_controller_leader",
    "1 for this process's leadership state: leading (it acts: AWS changes, status writes) or standby (it "
    "writes nothing), with why: leading, held-by-another (another process holds the leader Lease), "
    "api-unreachable (the Lease could not be renewed), renew-deadline, lost-race, starting, stopping.",
    ["state", "reason"], registry=REGISTRY,
)


def set_leader(state: str, reason: str) -> None:
    """One series at 1: this process's leadership state now, and why."""
    LEADER.clear()
    LEADER.labels(state, reason).set(1)


PHASES = ("Pending", "Progressing", "Paused", "Succeeded", "RolledBack", "Failed")


def record_phase(namespace: str, name: str, phase: str) -> None:
    for candidate in PHASES:
        RELEASE_PHASE.labels(namespace, name, candidate).set(1 if candidate == phase else 0)


_SERVING: dict[tuple[str, str], set[str]] = {}


def record_serving(namespace: str, name: str, serving: dict[str, int]) -> None:
    """The versions receiving traffic (version -> percent); versions no longer served lose their series."""
    key = (namespace, name)
    for gone in _SERVING.get(key, set()) - set(serving):
        try:
            VERSION_WEIGHT.remove(namespace, name, "backend", gone)
        except KeyError:
            pass
    for version, weight in serving.items():
        VERSION_WEIGHT.labels(namespace, name, "backend", version).set(weight)
    _SERVING[key] = set(serving)


def record_check(namespace: str, name: str) -> None:
    RELEASE_CHECKS.labels(namespace, name).inc()


def forget(namespace: str, name: str) -> None:
    """Drop the series of a Release that is no longer managed."""
    try:
        RELEASE_CHECKS.remove(namespace, name)
    except KeyError:
        pass
    for candidate in PHASES:
        try:
            RELEASE_PHASE.remove(namespace, name, candidate)
        except KeyError:
            pass
    for tier in ("backend", "frontend"):
        try:
            CANARY_WEIGHT.remove(namespace, name, tier)
        except KeyError:
            pass
    record_serving(namespace, name, {})
    _SERVING.pop((namespace, name), None)
    for verdict in VERDICTS:
        try:
            ANALYSIS_TOTAL.remove(namespace, name, verdict)
        except KeyError:
            pass
