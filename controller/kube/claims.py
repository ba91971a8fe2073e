"""One owner per AWS resource: a Release claims the ECS service, listener and distribution it moves.

A claim is a Kubernetes Lease in one namespace (the operator's), named after the resource, whose
`holderIdentity` is `<namespace>/<name>/<uid>` of the Release that owns it. Leases, not AWS tags:
creating an object that exists fails atomically at the API server, so two Releases that start on
one service at the same moment cannot both win, which a read-then-write of tags cannot promise; and a
claim check costs no AWS call in a steady round. The price: two clusters pointed at one service do
not see each other's claims (documented in the README).

A claim whose holder no longer exists (deleted, or re-created with a new uid) is stale: the next
claimant *of the same namespace* takes it over with an update conditioned on the Lease's
resourceVersion. A Release of another namespace never takes a claim by itself, even a stale one
(the front door, tenancy issue): only a handover (`kubectl release handover`, an explicit rewrite
of the holder) or an admin deleting the Lease moves it across namespaces. The owner's deletion
frees its claims for its namespace (holder `<namespace>/-/released`). A Conflict names its owner
only to a Release of the same namespace; the operator's log names it for admins. Nothing here
imports kopf; the reconciler calls `Claims.claim` before a pass decides.
"""

from __future__ import annotations

import datetime as dt
import logging
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.api.release import GROUP, ReleaseSpec

log = logging.getLogger(__name__)

CLAIM_LABEL = f"{GROUP}/claim"
RESOURCE_ANNOTATION = f"{GROUP}/resource"


@dataclass(frozen=True)
class Holder:
    namespace: str
    name: str
    uid: str

    @property
    def identity(self) -> str:
        return f"{self.namespace}/{self.name}/{self.uid}"

    @classmethod
    def parse(cls, identity: str) -> "Holder | None":
        parts = identity.split("/")
        return cls(*parts) if len(parts) == 3 and all(parts) else None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


RELEASED_NAME = "-"
"""The holder name of a claim whose Release was deleted: no Release can be named so (DNS-1123), and its
namespace is kept: only a Release of that namespace takes it by itself (the front door)."""


@dataclass(frozen=True)
class Conflict:
    resource: str
    owner: Holder
    claimant_namespace: str | None = None  # the namespace of the Release told about it

    @property
    def message(self) -> str:
        """What the claimant is told: its owner only when in the same namespace (the operator's log names
        an owner elsewhere, for admins)."""
        if self.claimant_namespace is not None and self.owner.namespace != self.claimant_namespace:
            return (f"{self.resource} is owned by a Release in another namespace; this Release changes nothing "
                    "unless a cluster admin hands it over (release-controller handover)")
        if self.owner.name == RELEASED_NAME:
            return (f"{self.resource} was owned by a deleted Release; a cluster admin must hand it over")
        return (f"{self.resource} is owned by Release {self.owner}; this Release changes nothing until that one "
                f"is deleted or hands it over (kubectl release handover {self.owner.name} -n {self.owner.namespace} "
                f"--to <namespace>/<name>)")


def resources_of(spec: ReleaseSpec) -> tuple[str, ...]:
    """The AWS resources a Release moves, as claim keys: each ECS service of its backend tier, each
    one's listener and two target groups (two Releases of different services and listeners sharing
    one would each send the other's traffic to their own tasks), the distribution. A Release that
    does not hold every one of them changes none (`Claims.claim` stops at the first conflict)."""
    keys: list[str] = []
    for service in spec.backend.service_list():
        keys.append(f"ecs-service:{service.ecs.cluster}/{service.ecs.service}")
        if service.traffic is not None:
            keys.append(f"elbv2-listener:{service.traffic.listener_arn}")
            keys.extend(f"elbv2-target-group:{arn}" for arn in dict.fromkeys(
                (service.traffic.stable_target_group_arn, service.traffic.canary_target_group_arn)))
    if spec.frontend is not None:
        keys.append(f"cloudfront-distribution:{spec.frontend.cloudfront.distribution_id}")
    return tuple(keys)


def lease_name(resource: str) -> str:
    """A DNS-1123 name per resource (ARNs have characters a name may not).

    >>> lease_name("ecs-service:c/s")
    'release-claim-84396053f5919ac27d55b2e8'
    """
    return "release-claim-" + hashlib.sha256(resource.encode()).hexdigest()[:24]


class ReleaseLookup(Protocol):
    def current(self, namespace: str, name: str) -> Any: ...


class Claims:
    """Leases in `namespace`, one per claimed resource."""

    def __init__(self, api_client: client.ApiClient, releases: ReleaseLookup, namespace: str | None = None) -> None:
        self._leases = client.CoordinationV1Api(api_client)
        self._releases = releases
        self.namespace = namespace or claims_namespace()

    def claim(self, holder: Holder, resources: Iterable[str]) -> Conflict | None:
        """Claim every resource for `holder`; the first held by another existing Release is a Conflict.

        Resources claimed before a conflict stay claimed: they are this Release's by the same rule,
        and its deletion releases them.
        """
        for resource in resources:
            owner = self._claim_one(holder, resource)
            if owner is not None:
                if owner.namespace != holder.namespace:
                    log.warning("%s/%s waits: %s is owned by Release %s/%s (another namespace; only a handover moves "
                                "it)", holder.namespace, holder.name, resource, owner.namespace, owner.name)
                return Conflict(resource, owner, holder.namespace)
        return None

    def release(self, holder: Holder) -> list[str]:
        """Free every claim `holder` has (its Release is being deleted) for its own namespace: the claim
        stays, held by no Release of that namespace, so another Release there takes it over, and a
        Release of another namespace only through a handover. Returns the resources freed."""
        found = self._leases.list_namespaced_lease(self.namespace, label_selector=f"{CLAIM_LABEL}=true")
        dropped = []
        for lease in found.items:
            if lease.spec.holder_identity == holder.identity:
                try:
                    self._write(lease, Holder(holder.namespace, RELEASED_NAME, "released"))
                    dropped.append(lease.metadata.annotations.get(RESOURCE_ANNOTATION, lease.metadata.name))
                except ApiException as exc:
                    if exc.status not in (404, 409):
                        raise
        return dropped

    def hand_over(self, resources: Sequence[str], current: Holder, new: Holder) -> list[str]:
        """Rewrite the holder of `current`'s claims on `resources` to `new`; returns those moved."""
        moved = []
        for resource in resources:
            lease = self._get(resource)
            if lease is not None and lease.spec.holder_identity == current.identity:
                self._write(lease, new)
                moved.append(resource)
        return moved

    def owner(self, resource: str) -> Holder | None:
        lease = self._get(resource)
        return Holder.parse(lease.spec.holder_identity or "") if lease is not None else None

    # -- one resource

    def _claim_one(self, holder: Holder, resource: str) -> Holder | None:
        for _ in range(3):  # a lost race on create or update: read again and decide again
            lease = self._get(resource)
            if lease is None:
                if self._create(holder, resource):
                    return None
                continue
            owner = Holder.parse(lease.spec.holder_identity or "")
            if owner == holder:
                return None
            if owner is not None and (owner.namespace != holder.namespace or self._exists(owner)):
                # Across namespaces only through the front door: a handover, even when the owner is gone.
                return owner
            try:  # stale: its holder is gone, and it was of this namespace
                self._write(lease, holder)
                return None
            except ApiException as exc:
                if exc.status != 409:
                    raise
        raise RuntimeError(f"claim of {resource} kept changing under us")

    def _exists(self, owner: Holder) -> bool:
        if owner.name == RELEASED_NAME:
            return False
        found = self._releases.current(owner.namespace, owner.name)
        return found is not None and found.get("metadata", {}).get("uid") == owner.uid

    def _get(self, resource: str) -> Any:
        try:
            return self._leases.read_namespaced_lease(lease_name(resource), self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _create(self, holder: Holder, resource: str) -> bool:
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(
                name=lease_name(resource), labels={CLAIM_LABEL: "true"},
                annotations={RESOURCE_ANNOTATION: resource},
            ),
            spec=client.V1LeaseSpec(holder_identity=holder.identity, acquire_time=_now()),
        )
        try:
            self._leases.create_namespaced_lease(self.namespace, body)
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise

    def _write(self, lease: Any, holder: Holder) -> None:
        """Update conditioned on the resourceVersion read: a concurrent writer makes this a 409."""
        lease.spec.holder_identity = holder.identity
        lease.spec.acquire_time = _now()
        lease.spec.lease_transitions = (lease.spec.lease_transitions or 0) + 1
        self._leases.replace_namespaced_lease(lease.metadata.name, self.namespace, lease)


def claims_namespace() -> str:
    """Where claims live: $RELEASE_CONTROLLER_NAMESPACE, else the pod's own namespace, else `default`."""
    explicit = os.environ.get("RELEASE_CONTROLLER_NAMESPACE")
    if explicit:
        return explicit
    service_account = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    if os.path.exists(service_account):
        with open(service_account) as handle:
            return handle.read().strip()
    return "default"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
