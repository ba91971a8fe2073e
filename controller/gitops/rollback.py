"""The one call the reconciler makes after a pass that moved a Release to RolledBack.

    if write_back_due(spec, status):
        result = write_back_rollback(writer, secrets, namespace, name, spec, status)
        status = with_revert_commit(status, result)   # history[-1].revertCommit
        # and an Event `RollbackWrittenBack` naming result.commit

It derives what to write from the status the pass just decided (what serves again, the revision,
the reason), reads the credentials from the Secret named by spec.gitops.secretRef, and hands both
to a `GitWriter`. Everything it does is safe to repeat (the writer finds an earlier commit by its
trailer), so the caller may call it again after a crash or an error; a `GitWriteBackError` carries
a reason for the condition/Event and a message with no secret in it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from controller.api.release import GitOpsOnRollback, Phase, ReleaseSpec, ReleaseStatus
from controller.gitops.writeback import GitCredentials, GitWriteBackError, GitWriter, Rollback, WriteBackResult
from controller.tenancy.secrets import GuardedSecrets, NotPermitted, SecretObjectReader

if TYPE_CHECKING:
    from controller.kube.client import Secrets

# Every way a rollout goes back puts traffic on the stable version: analysis (RolledBack), `abort`
# (Aborted, phase RolledBack) and the progress deadline (Failed, phase Failed).
_WENT_BACK = (Phase.ROLLED_BACK, Phase.FAILED)
_GOING_BACK = ("RolledBack", "Aborted", "Failed")

# (namespace, name, the repository URL its contents go to) -> the Secret's decoded data.
SecretReader = Callable[[str, str, str], Mapping[str, bytes]]


def secret_reader(secrets: Secrets, guarded: SecretObjectReader | None = None) -> SecretReader:
    """The write-back's Secret reader: `secrets.data`, its refusals as GitWriteBackError.

    `guarded` (strict tenancy): the Secret is read with its annotations and its contents are handed
    over only for a repository URL its `delivery.pratiko.ai/allowed-urls` allows
    (controller/tenancy/secrets.py), checked here, where it is read, and not only at the tenancy
    gate: an annotation removed after the gate let the Release in stops the next push."""
    from kubernetes.client.rest import ApiException

    def read(namespace: str, name: str, url: str) -> Mapping[str, bytes]:
        try:
            if guarded is not None:
                return GuardedSecrets(guarded).data_for(namespace, name, url)
            return secrets.data(namespace, name)
        except NotPermitted as exc:
            raise GitWriteBackError("NotPermitted", f"spec.gitops.secretRef: {exc.message}", retryable=False) from None
        except ApiException as exc:
            # Only the status line: the body of an error response is not ours to show.
            raise GitWriteBackError("GitSecretUnavailable", f"Secret {namespace}/{name}: HTTP {exc.status} {exc.reason}",
                                    retryable=exc.status != 404) from None

    return read


def rollback_of(namespace: str, name: str, spec: ReleaseSpec, status: ReleaseStatus) -> Rollback | None:
    """What to write for a RolledBack Release: the live versions from the status; None otherwise."""
    if status.phase not in _WENT_BACK or not status.backend.stable_version:
        return None
    live = status.backend.stable_version
    image = status.backend.stable_image
    if image is None:
        # An older status without stableImage: the image of the last success at that version.
        image = next((h.backend_image for h in reversed(status.history)
                      if h.result == "Succeeded" and h.backend_version == live and h.backend_image), None)
    if image is None:
        raise GitWriteBackError("GitLiveImageUnknown", f"the image serving backend {live} is not in the status",
                                retryable=False)
    ready = next((c for c in status.conditions if c.type.value == "Ready"), None)
    reason = (ready.message if ready and ready.message else status.message) or "rolled back"
    frontend_live = status.frontend.stable_version if spec.frontend else None
    service_images: tuple[tuple[str, str], ...] = ()
    if spec.backend.services is not None and status.backend.services:
        # A tier of several: every service's image serving again (status.backend.services).
        serving = {e.name: e.stable_image for e in status.backend.services}
        unknown = [s.name for s in spec.backend.services if not serving.get(s.name)]
        if unknown:
            raise GitWriteBackError("GitLiveImageUnknown", f"the image serving service {unknown[0]} is not in the status",
                                    retryable=False)
        service_images = tuple((s.name, serving[s.name] or "") for s in spec.backend.services)
    return Rollback(
        namespace=namespace, name=name, revision=max(status.revision, 1),
        failed_backend_version=spec.backend.version, backend_version=live, backend_image=image,
        failed_frontend_version=spec.frontend.version if spec.frontend else None,
        frontend_version=frontend_live, reason=reason, service_images=service_images,
    )


def _rollback_entry(status: ReleaseStatus) -> int | None:
    """Index of the history entry of the rollback in force, if the last entry is one."""
    if status.phase not in _WENT_BACK or not status.history or status.history[-1].result not in _GOING_BACK:
        return None
    return len(status.history) - 1


def write_back_due(spec: ReleaseSpec, status: ReleaseStatus) -> bool:
    """True while a rollback asks for a write-back that the status does not record yet.

    Derived from the status, not from the event of the transition, so a pass after a crash (between
    the rollback's status write and the push) asks again; the writer then finds its own commit.
    """
    index = _rollback_entry(status)
    return (index is not None and spec.gitops is not None and spec.gitops.on_rollback != GitOpsOnRollback.NONE
            and status.history[index].revert_commit is None)


def with_revert_commit(status: ReleaseStatus, result: WriteBackResult | None) -> ReleaseStatus:
    """`status` with the rollback's history entry naming the commit (pushed now or found earlier)."""
    index = _rollback_entry(status)
    if index is None or result is None:
        return status
    # "" records that Git already named the live versions: nothing was due, and nothing is again.
    history = list(status.history)
    history[index] = history[index].model_copy(update={"revert_commit": result.commit or ""})
    return status.model_copy(update={"history": history})


def write_back_rollback(
    writer: GitWriter, secrets: SecretReader, namespace: str, name: str, spec: ReleaseSpec, status: ReleaseStatus
) -> WriteBackResult | None:
    """Write the rollback `status` describes back to Git; None when spec.gitops asks for nothing."""
    gitops = spec.gitops
    if gitops is None or gitops.on_rollback == GitOpsOnRollback.NONE:
        return None
    rollback = rollback_of(namespace, name, spec, status)
    if rollback is None:
        return None
    credentials = None
    if gitops.secret_ref is not None:
        credentials = GitCredentials.from_secret_data(secrets(namespace, gitops.secret_ref.name, gitops.repository))
    return writer.write_back(gitops, credentials, rollback)
