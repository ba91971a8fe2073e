"""The operator's RoleBinding in a watched namespace outlives the namespace's last Release.

Deleting a namespace deletes everything in it at once: the Releases and the RoleBinding that grants
the operator its rights there. Without that binding, a Release's finalizer (traffic back on stable,
canary removed, claims freed) can neither read nor patch the Release (403), and the namespace stays
Terminating with traffic on the canary. So the shipped binding carries the finalizer
`delivery.pratiko.ai/releases-gone`: the API server keeps it, and RBAC keeps honouring it, while it
is being deleted. Once such a namespace holds no Release, this removes that finalizer and the
namespace controller finishes.

The operator may patch only its own binding (`resourceNames`), and the ValidatingAdmissionPolicy
`release-controller-bindings` (manifests/admission) refuses any change by the operator's
ServiceAccount but the removal of finalizers, so the right cannot add subjects. The removal is a
strategic merge patch (`$deleteFromPrimitiveList`), which needs no read of the binding. kopf is
not imported here: controller/operator calls `release` after a Release has gone and from its
resync loop.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.api.release import GROUP

log = logging.getLogger(__name__)

FINALIZER = f"{GROUP}/releases-gone"
TIMEOUT = 10.0  # seconds per request: the resync loop waits on these, it must not hang on a dead connection


class NamespaceBindings:
    """Removes FINALIZER from the operator's RoleBinding (`name`) in watched namespaces being
    deleted that hold no Release any more."""

    def __init__(self, api_client: Any, name: str, namespaces: Sequence[str],
                 releases_in: Callable[[str], list[dict[str, Any]]]) -> None:
        self._core = client.CoreV1Api(api_client)
        self._rbac = client.RbacAuthorizationV1Api(api_client)
        self.name = name
        self.patterns = tuple(namespaces)
        self._releases_in = releases_in
        self._let_go: set[str] = set()  # uids of the namespaces whose binding this process is done with

    def watched(self, namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, p) for p in self.patterns)

    def terminating(self) -> dict[str, str]:
        """The watched namespaces being deleted, name -> uid (one list: the operator may list, not get)."""
        found = self._core.list_namespace(_request_timeout=TIMEOUT)
        return {ns.metadata.name: ns.metadata.uid for ns in found.items
                if ns.metadata.deletion_timestamp is not None and self.watched(ns.metadata.name)}

    def release(self, namespace: str, uid: str | None = None) -> bool:
        """Lets the binding in `namespace` go if the namespace is being deleted (`uid`: known to be,
        with that uid) and holds no Release; True when the finalizer was removed (or the binding
        is gone). Once per namespace: a namespace left Terminating by other finalizers is not
        patched again on every resync."""
        if not self.watched(namespace):
            return False
        if uid is None:
            uid = self.terminating().get(namespace)
        if uid is None:
            return False
        if uid in self._let_go:
            return True
        left = self._releases_in(namespace)
        if left:
            log.debug("namespace %s is being deleted; the operator's RoleBinding stays while %d Release(s) are left",
                     namespace, len(left))
            return False
        body = {"metadata": {"$deleteFromPrimitiveList/finalizers": [FINALIZER]}}
        try:
            self._rbac.patch_namespaced_role_binding(self.name, namespace, body,
                                                     _content_type="application/strategic-merge-patch+json",
                                                     _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status not in (403, 404):
                raise
            self._let_go.add(uid)  # gone already, or not this operator's to touch: said once
            if exc.status == 403:
                log.warning("namespace %s is being deleted and holds no Release, but the operator may not remove "
                            "the finalizer %s of RoleBinding %s there (403): remove it by hand",
                            namespace, FINALIZER, self.name)
                return False
            return True
        self._let_go.add(uid)
        log.info("namespace %s is being deleted and holds no Release: the operator's RoleBinding %s may go",
                 namespace, self.name)
        return True

    def sweep(self) -> list[str]:
        """`release` for every watched namespace being deleted; the namespaces whose binding may go."""
        return [ns for ns, uid in self.terminating().items() if self.release(ns, uid)]
