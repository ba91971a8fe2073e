"""Every reason the controller writes on a condition or an Event, named once.

The planner and the reconciler use these members, never string literals, so a reason is renamed or
documented in one place; the CRD's description of `status.conditions` lists them (see
`CONDITION_REASONS_DOC`). A world that cannot be read or changed adds one more kind of reason: the
AWS error's own name (`AccessDenied`, `ClusterNotFound`, ...), written on Ready by the reconciler.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # Starting, or refusing to start
    ACCEPTED = "Accepted"
    ADOPTED = "Adopted"
    ROLLOUT_STARTED = "RolloutStarted"
    SUPERSEDED = "Superseded"
    SPEC_UPDATED = "SpecUpdated"  # the spec changed for another tier: the backend rollout in progress goes on
    RETRY = "Retry"
    INVALID_SPEC = "InvalidSpec"
    SERVICE_NOT_FOUND = "ServiceNotFound"
    LISTENER_NOT_FOUND = "ListenerNotFound"
    DEPLOYMENT_CONTROLLER_NOT_SUPPORTED = "DeploymentControllerNotSupported"
    DEPLOYMENT_CONTROLLER_NOT_EXTERNAL = "DeploymentControllerNotExternal"
    NO_TRAFFIC_ROUTING = "NoTrafficRouting"
    SEVERAL_SERVICES_UNSUPPORTED = "SeveralServicesUnsupported"  # backend.services with what a tier of several cannot do yet
    NATIVE_ROUTING_MISSING = "NativeRoutingMissing"  # backend.ecs.mode Native: the service lacks ECS's own routing
    NATIVE_STEPS_UNSUPPORTED = "NativeStepsUnsupported"  # steps ECS cannot run natively (one percentage, or equal steps)
    CONFLICT = "Conflict"  # another Release owns the service, listener or distribution (claims)
    INVALID_TRAFFIC = "InvalidTraffic"  # the listener or its target groups are not this Release's to move
    NOT_PERMITTED = "NotPermitted"  # tenancy: no ReleasePolicy allows what it names, or a Secret does not allow the URL
    AWAITING_UPSTREAM = "AwaitingUpstream"  # spec.promotion.requires: an upstream Release has not verified the version
    # Steps (backend and frontend)
    SET_WEIGHT = "SetWeight"
    PREVIEW = "Preview"
    PAUSE = "Pause"
    FRONTEND_SET_WEIGHT = "FrontendSetWeight"
    FRONTEND_PAUSE = "FrontendPause"
    PAUSING = "Pausing"
    PAUSED = "Paused"
    RESUMED = "Resumed"
    WAITING = "Waiting"
    WAITING_FOR_PROMOTE = "WaitingForPromote"
    WAITING_FOR_ANALYSIS = "WaitingForAnalysis"
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    PROMOTE = "Promote"
    PROMOTE_FULL = "PromoteFull"
    PROMOTING = "Promoting"
    PROMOTED = "Promoted"
    SCALED_DOWN = "ScaledDown"
    # Analysis
    ANALYSIS_PASSED = "AnalysisPassed"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    ANALYSIS_NO_DATA = "AnalysisNoData"
    ANALYSIS_FAILED = "AnalysisFailed"
    ANALYSIS_OVERRIDDEN = "AnalysisOverridden"
    ANALYSIS_INVALID = "AnalysisInvalid"  # a metric's query is wrong (parse error, several series): fix the spec
    ANALYSIS_HELD = "AnalysisHeld"  # the analysis gets no answer it can judge (provider down, no data, no traffic)
    ANALYSIS_UNANSWERED = "AnalysisUnanswered"  # held until progressDeadline: rolled back, or paused for a person
    # Going back
    ABORTED = "Aborted"
    ROLLED_BACK = "RolledBack"
    ROLLBACK_UNAVAILABLE = "RollbackUnavailable"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    DEPLOYMENT_FAILED = "DeploymentFailed"
    NATIVE_DEPLOYMENT = "NativeDeployment"  # a native ECS service deployment started, or moved to a gate
    TASKS_STOPPED = "TasksStopped"  # the canary's tasks keep stopping (crash, pull error, failed health checks)
    DELETING = "Deleting"  # deleted mid-rollout: traffic goes back on stable before the object goes
    UNMANAGED = "Unmanaged"  # deleted: the controller no longer manages it
    FLAGS_ROLLED_BACK = "FlagsRolledBack"
    ROLLBACK_WRITTEN_BACK = "RollbackWrittenBack"  # the revert commit is in Git (spec.gitops)
    # Flags and frontend
    FLAGS_PUBLISHED = "FlagsPublished"
    COMPATIBLE = "Compatible"
    INCOMPATIBLE_BACKEND = "IncompatibleBackend"
    API_CONTRACT_BROKEN = "ApiContractBroken"
    API_CONTRACT_UNAVAILABLE = "ApiContractUnavailable"
    FRONTEND_CANARY = "FrontendCanary"
    FRONTEND_PROMOTED = "FrontendPromoted"
    FRONTEND_SWITCHED = "FrontendSwitched"
    # Settled
    SUCCEEDED = "Succeeded"
    ROLLOUT_COMPLETED = "RolloutCompleted"
    ROLLBACK_WINDOW = "RollbackWindow"
    DRIFT_DETECTED = "DriftDetected"
    DRIFT_REVERTING = "DriftReverting"
    DRIFT_RESOLVED = "DriftResolved"
    IN_SYNC = "InSync"
    # kstatus
    IDLE = "Idle"  # Reconciling or Stalled is False: nothing under way, nothing stuck
    AWS_UNREACHABLE = "AwsUnreachable"  # AWS did not answer for several passes: timers are held
    THROTTLED = "Throttled"  # AWS throttled a pass's requests: it stopped early, the next one retries
    ACCESS_DENIED = "AccessDenied"  # AWS's IAM refused a call (the Release's role, or the operator's own, lacks it)
    # Around a rollout
    NOTIFICATION_FAILED = "NotificationFailed"  # a sink kept failing; the rollout goes on
    NOTIFICATION_EXPIRED = "NotificationExpired"  # no sink accepted it within the pending bound: given up
    HOOK_PENDING = "HookPending"  # a hook has not answered 2xx yet; asked again with back-off
    HOOK_PASSED = "HookPassed"
    HOOK_FAILED = "HookFailed"  # a hook kept failing until its timeout
    ROLLBACK_UNSAFE = "RollbackUnsafe"  # an irreversible hook passed: an automatic rollback pauses instead


CONDITION_REASONS_DOC = (
    "Kubernetes-style conditions (Ready, Progressing, Healthy, Compatible, Drifted, and kstatus' Reconciling and "
    "Stalled), each with the observedGeneration it was written for. Reasons the "
    "controller writes on them and on its Events: " + ", ".join(r.value for r in Reason)
    + "; or, on Ready, the name of an AWS error that kept the world from being read or changed."
)
