"""The tenancy gate of a pass: may this Release act at all? Asked before any claim or AWS call.

Under `strict` (the default of `release-controller run --tenancy`), a Release is refused when no
ReleasePolicy covers its namespace, when it names anything no covering policy allows
(`controller.tenancy.policy.judge`), when a Secret it names does not allow the URL it would be sent
to (`controller.tenancy.secrets`), or when a URL kept in a Secret is not allowed by a policy.
Under `open`, nothing is refused here (today's behaviour; the operator logs a warning at start).

The reads are injected: the cluster's ReleasePolicies and a namespace's labels (each cached for
`ttl` seconds, so a policy change is picked up within that long without a restart), and the
Secret reader. This module imports no Kubernetes client.

`role(namespace)` says which IAM role a Release's AWS calls are made with (`controller.aws.roles`);
covering policies that name different roles refuse the Release (NotPermitted, naming both).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from controller.api.policy import ReleasePolicy
from controller.api.release import ReleaseSpec
from controller.tenancy.policy import judge, role_conflict, roles_of, url_allowed
from controller.tenancy.secrets import NotPermitted, SecretObjectReader, refusal, secret_allows

log = logging.getLogger(__name__)

T = TypeVar("T")


class Mode(StrEnum):
    STRICT = "strict"
    OPEN = "open"


OPEN_WARNING = ("tenancy is open (--tenancy open): every Release may move any ECS service, listener, target group "
                "and distribution the operator's IAM role reaches, and have it fetch or post to any URL; run "
                "--tenancy strict with ReleasePolicies to share the operator between teams")


@dataclass
class Cached(Generic[T]):
    """A read kept for `ttl` seconds (per key); a failed read is not kept."""

    load: Callable[[str], T]
    ttl: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _kept: dict[str, tuple[float, T]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, key: str = "") -> T:
        now = self.clock()
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and now - kept[0] < self.ttl:
            return kept[1]
        value = self.load(key)
        with self._lock:
            self._kept[key] = (now, value)
        return value


def parse_policies(objects: Sequence[Mapping[str, Any]]) -> list[ReleasePolicy]:
    """The policies of a list answer; a malformed one (the CRD's schema should have refused it) is
    skipped with a log line, so it grants nothing."""
    out: list[ReleasePolicy] = []
    for obj in objects:
        try:
            out.append(ReleasePolicy.from_object(obj))
        except ValidationError:
            log.warning("ReleasePolicy %s is malformed and grants nothing", (obj.get("metadata") or {}).get("name"))
    return out


def secret_uses(spec: ReleaseSpec) -> list[tuple[str, str, str | None, str | None]]:
    """The Secrets a Release names: (field, Secret name, key of a URL kept in it, URL its data goes to)."""
    uses: list[tuple[str, str, str | None, str | None]] = []
    if spec.gitops is not None and spec.gitops.secret_ref is not None:
        uses.append(("spec.gitops.secretRef", spec.gitops.secret_ref.name, None, spec.gitops.repository))
    for i, sink in enumerate(spec.notifications):
        if sink.webhook is not None:
            ref = sink.webhook.url_secret_ref
            uses.append((f"spec.notifications[{i}].webhook.urlSecretRef", ref.name, ref.key, None))
    for point in type(spec.hooks).model_fields:  # every hook point, the preview's included
        for i, hook in enumerate(getattr(spec.hooks, point)):
            if hook.webhook is not None and hook.webhook.url_secret_ref is not None:
                ref = hook.webhook.url_secret_ref
                camel = "".join(w.capitalize() if n else w for n, w in enumerate(point.split("_")))
                uses.append((f"spec.hooks.{camel}[{i}].webhook.urlSecretRef", ref.name, ref.key, None))
    return uses


@dataclass
class TenancyGate:
    mode: Mode
    policies: Callable[[], Sequence[ReleasePolicy]]
    labels: Callable[[str], Mapping[str, str]]
    secrets: SecretObjectReader | None = None

    def refusal(self, namespace: str, spec: ReleaseSpec) -> str | None:
        """Why this Release may not act (a message for its condition and Event); None: it may."""
        if self.mode == Mode.OPEN:
            return None
        policies = self.policies()
        labels = self.labels(namespace)
        violation = judge(spec, namespace, labels, policies)
        if violation is not None:
            return violation.message
        conflict = role_conflict(namespace, roles_of(policies, namespace, labels))
        if conflict is not None:
            return conflict
        return self._secrets(namespace, spec, policies, labels)

    def role(self, namespace: str) -> str | None:
        """The IAM role every AWS call for a Release of `namespace` is made with (a covering policy's
        `roleArn`); None: the operator's own (also under `open`, which reads no policy). Raises
        NotPermitted when the covering policies name different roles, and whatever reading them raises."""
        if self.mode == Mode.OPEN:
            return None
        roles = roles_of(self.policies(), namespace, self.labels(namespace))
        conflict = role_conflict(namespace, roles)
        if conflict is not None:
            raise NotPermitted(conflict)
        return next(iter(roles), None)

    def _secrets(self, namespace: str, spec: ReleaseSpec, policies: Sequence[ReleasePolicy],
                 labels: Mapping[str, str]) -> str | None:
        uses = secret_uses(spec)
        if not uses:
            return None
        if self.secrets is None:
            return "this operator cannot read Secrets, and the Release names one"
        for field_, name, key, url in uses:
            try:
                annotations, data = self.secrets(namespace, name)
            except Exception as exc:  # noqa: BLE001 - named by kind: the API's answer is not shown
                status = getattr(exc, "status", None)
                return f"{field_}: Secret {name} cannot be read ({status or type(exc).__name__})"
            if url is not None:
                if not secret_allows(annotations, url):
                    return f"{field_}: " + refusal(name, f"its contents to be sent to {url}")
                continue
            assert key is not None
            if key not in data:
                return f"{field_}: Secret {name} has no key {key}"
            value = data[key].decode(errors="replace").strip()
            if not secret_allows(annotations, value):
                return f"{field_}: " + refusal(name, f"the URL in its key {key} to be used")
            if not url_allowed(policies, namespace, labels, value):
                return (f"{field_}: the URL in Secret {name} key {key} is not allowed for namespace {namespace}: a "
                        "ReleasePolicy must allow it (spec.allow.urls)")
        return None


__all__ = ["Cached", "Mode", "NotPermitted", "OPEN_WARNING", "TenancyGate", "parse_policies", "secret_uses"]
