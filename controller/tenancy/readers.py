"""The tenancy gate's reads over the Kubernetes client: ReleasePolicies (cluster-scoped list), a
namespace's labels (list with a field selector: the operator's role lists namespaces, it does not
get them), and a Secret with its annotations. Each read is cached by `controller.tenancy.gate.Cached`
where the gate is built. Errors raise; the gate names them by kind."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from controller.api.policy import POLICY_GROUP, POLICY_PLURAL, POLICY_VERSION, ReleasePolicy
from controller.tenancy.gate import Cached, Mode, TenancyGate, parse_policies

POLICY_TTL = 5.0
"""Seconds a read of the policies (and of a namespace's labels) is kept: a policy change is seen this soon."""


def policy_lister(api_client: Any) -> Cached[list[ReleasePolicy]]:
    from kubernetes import client

    custom = client.CustomObjectsApi(api_client)

    def load(_: str) -> list[ReleasePolicy]:
        found = custom.list_cluster_custom_object(POLICY_GROUP, POLICY_VERSION, POLICY_PLURAL)
        return parse_policies(found.get("items") or [])

    return Cached(load, ttl=POLICY_TTL)


def namespace_labels(api_client: Any) -> Cached[Mapping[str, str]]:
    from kubernetes import client

    core = client.CoreV1Api(api_client)

    def load(namespace: str) -> Mapping[str, str]:
        found = core.list_namespace(field_selector=f"metadata.name={namespace}").items
        return dict((found[0].metadata.labels or {}) if found else {})

    return Cached(load, ttl=POLICY_TTL)


def secret_objects(api_client: Any) -> Any:
    """(namespace, name) -> (annotations, decoded data) of a Secret: `SecretObjectReader`."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)

    def read(namespace: str, name: str) -> tuple[Mapping[str, str], Mapping[str, bytes]]:
        secret = core.read_namespaced_secret(name, namespace)
        data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
        return dict(secret.metadata.annotations or {}), data

    return read


def build_gate(mode: Mode, api_client: Any) -> TenancyGate:
    """The gate of `release-controller run --tenancy MODE`."""
    policies = policy_lister(api_client)
    return TenancyGate(mode, lambda: policies(), namespace_labels(api_client), secret_objects(api_client))
