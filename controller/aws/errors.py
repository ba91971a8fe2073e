"""Typed AWS failures: the reasons a Release's conditions show, and which ones are worth retrying.

Observation turns failures into `ObservationError` values (the pass blocks with a condition);
effectors raise `AwsEffectError`, which the reconciler catches as its `EffectError` and turns into
the same condition. Both use the reason names of the contract: ClusterNotFound, ServiceNotFound,
ListenerNotFound, TargetGroupNotFound, DistributionNotFound, OriginNotFound, TaskSetNotFound,
ContainerNotFound, AwsUnreachable when the endpoint did not answer at all (refused, timed out, the
connection dropped: retryable, and the reconciler holds the rollout's timers), and AwsError for
everything else (retryable when AWS throttled or failed with a 5xx even after botocore's retries).
"""

from __future__ import annotations

import re

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from controller.api.reasons import Reason
from controller.aws import acting
from controller.aws.acting import NoRole
from controller.aws.budget import THROTTLING_CODES, PassTooLong, Throttled
from controller.planner.world import ObservationError
from controller.errors import EffectError

AwsFailure = (ClientError, BotoCoreError)  # what a boto3 call raises when AWS says no or is unreachable

# AWS error codes -> the contract's reasons. Codes differ per service for the same idea.
NOT_FOUND: dict[str, str] = {
    "ClusterNotFoundException": "ClusterNotFound",
    "ServiceNotFoundException": "ServiceNotFound",
    "ServiceNotActiveException": "ServiceNotFound",
    "TaskSetNotFoundException": "TaskSetNotFound",
    "ListenerNotFound": "ListenerNotFound",
    "TargetGroupNotFound": "TargetGroupNotFound",
    "NoSuchDistribution": "DistributionNotFound",
    "NoSuchContinuousDeploymentPolicy": "DistributionNotFound",
    "NoSuchBucket": "BucketNotFound",
}

# Throttling, AWS-side failures and lost races (a concurrent CloudFront change moved the ETag):
# the same request may succeed on a later pass.
RETRYABLE_CODES = {
    "PreconditionFailed", "ConcurrentModification", "ConcurrentUpdateException",
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "SlowDown", "PriorRequestNotComplete",
    "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalError",
    "ServerException", "RequestTimeout", "RequestTimeoutException",
}


# IAM's refusal, by service: AccessDeniedException (JSON protocols: ECS, SSM, CloudWatch, ECR),
# AccessDenied (query and REST-XML: ELBv2, CloudFront, S3, STS), UnauthorizedOperation (EC2).
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                                 "AuthorizationError", "NotAuthorized"})
# "User: arn:... is not authorized to perform: ecs:CreateTaskSet on resource: ..." (IAM's wording): only
# the action is taken from it, and only when it has an action's shape.
_DENIED_ACTION = re.compile(r"not authorized to perform:? ([a-z0-9-]{2,40}:[A-Za-z0-9]{2,80})")


class AwsEffectError(EffectError):
    """An action that cannot be applied now; `reason` becomes the Ready condition's reason."""

    def __init__(self, reason: str, message: str, retryable: bool = True) -> None:
        super().__init__(reason, message, retryable)


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "") or None
    return None


def is_not_found(exc: BaseException, *codes: str) -> bool:
    code = error_code(exc)
    return code is not None and (code in codes if codes else code in NOT_FOUND)


UNREACHABLE: str = Reason.AWS_UNREACHABLE
THROTTLED: str = Reason.THROTTLED
# Transport failures: no answer from the endpoint at all (EndpointConnectionError covers a refused
# connection; ConnectTimeout and ReadTimeout a host, or an emulator, that accepts but never answers).
TRANSPORT_FAILURES = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


class EndpointDown(BotoCoreError):
    """A call not sent: its endpoint failed to answer a moment ago (controller/aws/clients.py, Breaker)."""

    fmt = "Not sent: {endpoint_url} did not answer {seconds:.0f}s ago ({error})"


def is_unreachable(exc: BaseException) -> bool:
    """The endpoint did not answer (as opposed to answering with an error), or not within the pass."""
    return isinstance(exc, (*TRANSPORT_FAILURES, EndpointDown, PassTooLong))


def is_throttled(exc: BaseException) -> bool:
    """AWS throttled the pass's requests (for longer than botocore's retries in the pass may take)."""
    return isinstance(exc, Throttled) or error_code(exc) in THROTTLING_CODES


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 5xx and transport failures: AWS may answer next time. Other 4xx will not change."""
    if isinstance(exc, BotoCoreError):
        return True  # connection refused, timeouts, ...: the endpoint did not answer
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or error_code(exc) in RETRYABLE_CODES
    return False


def is_access_denied(exc: BaseException) -> bool:
    """IAM refused the call. moto answers ECS's JSON protocol with an XML error body, which botocore
    cannot read a code from: a 403 that says "not authorized to perform" is the same refusal."""
    if not isinstance(exc, ClientError):
        return False
    if error_code(exc) in ACCESS_DENIED_CODES:
        return True
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status == 403 and _DENIED_ACTION.search(str(exc)) is not None


def denied_action(exc: ClientError) -> str:
    """The IAM action AWS refused ("ecs:CreateTaskSet"): from IAM's wording, else the operation's name."""
    found = _DENIED_ACTION.search(str(exc))
    return found.group(1) if found else exc.operation_name


def access_denied_message(exc: ClientError, what: str) -> str:
    """Whose credentials AWS refused which action, for the Release's condition: no key, no session."""
    role = acting.role()
    who = f"the Release's role {role}" if role else "the operator's own credentials"
    grant = ("the role's IAM policy must allow it (the ReleasePolicy's roleArn)" if role
             else "the operator's IAM role must allow it")
    return f"{what}: AWS denied {denied_action(exc)} to {who}: {grant}"


def classify(exc: BaseException, what: str) -> tuple[str, str, bool]:
    """(reason, message, retryable) for a failed call about `what` (e.g. "service web in prod")."""
    code = error_code(exc)
    if code in NOT_FOUND:
        return NOT_FOUND[code], f"{what}: not found ({code})", False
    if isinstance(exc, ClientError) and is_access_denied(exc):
        return Reason.ACCESS_DENIED, access_denied_message(exc, what), False
    if isinstance(exc, NoRole):
        return Reason.NOT_PERMITTED, f"{what}: {exc}", False
    detail = str(exc)
    if is_unreachable(exc):
        return UNREACHABLE, f"{what}: {detail}", True
    if is_throttled(exc):
        return THROTTLED, f"{what}: {detail}", True
    return "AwsError", f"{what}: {detail}", is_retryable(exc)


def observation_error(exc: BaseException, what: str) -> ObservationError:
    reason, message, retryable = classify(exc, what)
    return ObservationError(reason, message, retryable)


def effect_error(exc: BaseException, what: str) -> AwsEffectError:
    reason, message, retryable = classify(exc, what)
    return AwsEffectError(reason, message, retryable)
