"""Talking to the Kubernetes API with the official client: Release status, annotations, Events.

Used by the reconciler (status and Events) and by the CLI (requests such as promote). kopf is not
imported here: kopf only watches and schedules; every write the controller makes goes through this
module, so the same code serves the operator, the CLI and the tests.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from controller.api.release import GROUP, KIND, PLURAL, VERSION
from controller.errors import ObjectGone, StaleStatus

ANNOTATION_PREFIX = GROUP
REQUEST_ANNOTATIONS = {
    "promote": f"{ANNOTATION_PREFIX}/promote",
    "abort": f"{ANNOTATION_PREFIX}/abort",
    "retry": f"{ANNOTATION_PREFIX}/retry",
}
FIELD_MANAGER = "release-controller"
REQUEST_TIMEOUT = (5.0, 30.0)
"""Seconds to connect to the API server and to wait for its answer, for every request this process
makes that does not name its own (the Lease's renewals do): an API server that accepts connections
and never answers must not hold a pass, a claim or a CLI command for ever. (urllib3 retries a read that
timed out up to three times for idempotent verbs, so a GET is bounded by four of these.)"""


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """In-cluster config when running in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
    else:
        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    return bounded(client.ApiClient(configuration))


def bounded(api_client: client.ApiClient, timeout: float | tuple[float, float] | None = None) -> client.ApiClient:
    """`api_client` with `timeout` (default `REQUEST_TIMEOUT`) on every request that sets none.

    The official client waits for ever unless each call passes `_request_timeout`, and has no
    default of its own (`kubernetes.client.rest.RESTClientObject.request`: no timeout when none is
    given); its verbs (GET, PATCH, ...) all go through that one method, so it is given the default here.
    """
    rest = api_client.rest_client
    unbounded = rest.request

    def request(method: str, url: str, *args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        return unbounded(method, url, *args, _request_timeout=_request_timeout or timeout or REQUEST_TIMEOUT,
                         **kwargs)

    rest.request = request
    return api_client


class Secrets:
    """Reads Secrets in a Release's namespace (core/v1 get), for the GitOps write-back's credentials
    (the whole decoded data) and the webhook URLs of notifications and hooks (one key). Errors are
    the client's ApiException (or KeyError for a missing key); callers name them without the body."""

    def __init__(self, api_client: Any) -> None:
        self._core = client.CoreV1Api(api_client)

    def data(self, namespace: str, name: str) -> dict[str, bytes]:
        secret = self._core.read_namespaced_secret(name, namespace)
        return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}

    def value(self, namespace: str, name: str, key: str) -> str:
        """One key, decoded as text without surrounding whitespace (a URL, a token)."""
        data = self.data(namespace, name)
        if key not in data:
            raise KeyError(key)
        return data[key].decode().strip()


@dataclass(frozen=True)
class ObjectRef:
    namespace: str
    name: str
    uid: str | None = None


class ReleaseApi:
    """Release reads and writes, and Events about Releases."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    # -- reads
    def get(self, namespace: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return obj

    def current(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as the API server holds it now (not a watch cache), or None when it is gone."""
        try:
            return self.get(namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def namespace_exists(self, namespace: str) -> bool:
        try:
            self._core.read_namespace(namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list_all(self, namespace: str | None = None) -> list[dict[str, Any]]:
        if namespace:
            found = self._custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        else:
            found = self._custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        return list(found.get("items", []))

    # -- writes
    def replace_status(self, namespace: str, name: str, status: dict[str, Any], uid: str | None = None,
                       resource_version: str | None = None) -> str | None:
        """Write the whole status in one request, to the object with `uid` only, and only if it is
        still at `resource_version` when given; returns the object's new resourceVersion.

        JSON patch: `add` of /status replaces it whole, so fields that became empty disappear.
        """
        return self.patch_status(namespace, name, [{"op": "add", "path": "/status", "value": status}], uid,
                                 resource_version=resource_version)

    def patch_status(self, namespace: str, name: str, ops: list[dict[str, Any]], uid: str | None = None,
                     resource_version: str | None = None) -> str | None:
        """Apply JSON patch `ops` to the status of the object with `uid` only, in one request;
        returns the object's new resourceVersion.

        A `test` of the uid first makes the API server refuse the write to a new object of the same
        name. Either refusal (no object, another uid) raises ObjectGone. A `test` of
        `resource_version`, when given, refuses the write to an object changed since: StaleStatus.
        A failed `test` of the caller's own ops is the client's ApiException 422.
        """
        patch: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": uid}] if uid else []
        if resource_version:
            patch.append({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version})
        patch.extend(ops)
        try:
            written = self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, patch, _content_type="application/json-patch+json",
            )
        except ApiException as exc:
            if exc.status == 404:
                raise ObjectGone(namespace, name, uid) from None
            # A failed `test` is a plain 422 "Invalid", as a bad status would be: look whose name it is.
            if exc.status in (409, 422) and (uid or resource_version):
                found = self.current(namespace, name)
                found_meta = (found or {}).get("metadata", {})
                if uid and found_meta.get("uid") != uid:
                    raise ObjectGone(namespace, name, uid, found_meta.get("uid")) from None
                if resource_version and found_meta.get("resourceVersion") != resource_version:
                    raise StaleStatus(namespace, name) from None
            raise
        return str((written or {}).get("metadata", {}).get("resourceVersion") or "") or None

    def annotate(self, namespace: str, name: str, annotations: dict[str, str | None]) -> dict[str, Any]:
        body = {"metadata": {"annotations": annotations}}
        obj: dict[str, Any] = self._custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)
        return obj

    def patch_spec(self, namespace: str, name: str, spec_patch: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = self._custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"spec": spec_patch}
        )
        return obj

    def request(self, namespace: str, name: str, kind: str, now: dt.datetime | None = None, suffix: str = "") -> str:
        """Record a user request (promote, abort, retry) as an annotation; returns its token.
        `suffix` ends the token (`abort --force`: `planner.decision.FORCE_SUFFIX`)."""
        token = f"{(now or dt.datetime.now(dt.timezone.utc)).isoformat()}#{uuid.uuid4().hex[:6]}{suffix}"
        self.annotate(namespace, name, {REQUEST_ANNOTATIONS[kind]: token})
        return token

    def event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None:
        now = dt.datetime.now(dt.timezone.utc)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{ref.name}.", namespace=ref.namespace),
            involved_object=client.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}", kind=KIND, name=ref.name, namespace=ref.namespace, uid=ref.uid
            ),
            reason=reason,
            message=message[:1024],
            type=type_,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component="release-controller"),
            reporting_component="release-controller",
            reporting_instance=os.environ.get("HOSTNAME", "release-controller"),
        )
        try:
            self._core.create_namespaced_event(ref.namespace, body)
        except ApiException as exc:  # an Event is best effort: never fail a reconcile for it
            if exc.status not in (403, 404, 409, 422):
                raise

    def events(self, namespace: str, name: str) -> list[Any]:
        found = self._core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name},involvedObject.kind={KIND}"
        )
        return list(found.items)
