"""The ReleasePolicy custom resource: what the Releases of some namespaces may move and reach.

Cluster-scoped and written by cluster admins (Argo CD's AppProject destinations and source
repositories, ACK's namespace -> role mapping). A Release is judged against every policy whose
`namespaces` names its namespace or whose `namespaceSelector` matches its namespace's labels;
several matching policies add up. The judgement itself is `controller.tenancy.policy`; this module
is data only, the single source of `crds/releasepolicy.yaml`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from controller.api.release import GROUP, VERSION, Model, cel

POLICY_KIND = "ReleasePolicy"
POLICY_PLURAL = "releasepolicies"
POLICY_SINGULAR = "releasepolicy"
POLICY_VERSION = VERSION
POLICY_GROUP = GROUP

Glob = Annotated[str, Field(min_length=1, max_length=2048)]
_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(Model):
    key: str = Field(min_length=1, max_length=317)
    operator: SelectorOperator
    values: list[Annotated[str, Field(max_length=63)]] = Field(default_factory=list, json_schema_extra={"maxItems": 100})


class LabelSelector(Model):
    """A Kubernetes label selector over the labels of a namespace (as metav1.LabelSelector)."""

    match_labels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, json_schema_extra={"maxProperties": 64})
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, json_schema_extra={"maxItems": 32})


class PolicyAllow(Model):
    """Globs (`*` any run of characters, `?` one character, `[...]` a set) of what may be named."""

    ecs_services: list[Glob] = Field(default_factory=list, json_schema_extra={"maxItems": 200},
                                     description="cluster/service, e.g. team-a-cluster/team-a-*")
    listeners: list[Glob] = Field(default_factory=list, json_schema_extra={"maxItems": 200},
                                  description="Listener ARNs.")
    target_groups: list[Glob] = Field(default_factory=list, json_schema_extra={"maxItems": 200},
                                      description="Target group ARNs (stable and canary).")
    distributions: list[Glob] = Field(default_factory=list, json_schema_extra={"maxItems": 200},
                                      description="CloudFront distribution ids.")
    images: list[Glob] = Field(default_factory=list, json_schema_extra={"maxItems": 200},
                               description="Container image references (repository:tag or @digest).")
    urls: list[Glob] = Field(default_factory=list, json_schema_extra={"maxItems": 200},
                             description="Every URL the operator fetches or posts to for the Release: analysis, "
                                         "Prometheus, hooks, notifications, GitOps, OpenAPI.")


class ReleasePolicySpec(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.namespaces) || has(self.namespaceSelector)",
                    "a ReleasePolicy names namespaces, a namespaceSelector, or both"),
            ]
        }
    )

    namespaces: list[Annotated[str, Field(min_length=1, max_length=63, pattern=_NAME)]] | None = Field(
        default=None, json_schema_extra={"maxItems": 500}, description="Namespaces whose Releases this policy covers.")
    namespace_selector: LabelSelector | None = Field(
        default=None, description="Namespaces, by their labels, whose Releases this policy covers.")
    role_arn: str | None = Field(
        default=None, max_length=2048, pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$",
        description="The IAM role every AWS call for these Releases is made with (STS AssumeRole with the "
                    "operator's credentials, session name rc.<namespace>.<name>); without it, the operator's own "
                    "role. Policies covering one namespace that name different roles refuse its Releases "
                    "(NotPermitted). Used under --tenancy strict.")
    allow: PolicyAllow = Field(default_factory=PolicyAllow)


class ReleasePolicy(Model):
    """A whole ReleasePolicy object: its name and spec."""

    name: str
    spec: ReleasePolicySpec

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ReleasePolicy:
        """From the object as the API server (or a YAML file) holds it; ValidationError if malformed."""
        return cls(name=str((obj.get("metadata") or {}).get("name", "")),
                   spec=ReleasePolicySpec.model_validate(obj.get("spec") or {}))
