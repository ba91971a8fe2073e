"""The ReleasePolicy judge: may this Release, in this namespace, name what it names? Pure: no I/O.

`judge(spec, namespace, labels, policies)` takes every ReleasePolicy of the cluster (it picks the
ones that cover the namespace: by `namespaces`, or by `namespaceSelector` over the namespace's
labels), adds their `allow` lists up, and walks what the Release names in a fixed order: its ECS
service, listener, target groups, distribution, image, then every URL the operator fetches or posts
to for it (analysis http checks, Prometheus' two API paths, webhook hooks, GitOps repository,
OpenAPI document). The first thing no policy allows is the `Violation`; a namespace no policy
covers is one too. None: everything is allowed.

Worked example: policy `team-a` allows `ecsServices: [team-a-cluster/team-a-*]`; a Release in
`team-a` naming `prod-cluster/api` gets
`Violation("spec.backend.ecs", "prod-cluster/api", ...)`, whose message reads
"spec.backend.ecs 'prod-cluster/api' is not allowed for namespace team-a: a ReleasePolicy must allow it
(spec.allow.ecsServices)".

URLs with `{{version}}`-style placeholders are judged as written (the placeholder is literal
text, so a glob must cover it with `*`). URLs held in Secrets (`urlSecretRef`) are not in the spec:
they are judged where they are read (`controller.tenancy.secrets`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from controller.api.policy import LabelSelector, PolicyAllow, ReleasePolicy, SelectorOperator
from controller.api.release import ReleaseSpec
from controller.tenancy.urls import any_matches

PROMETHEUS_PATHS = ("/api/v1/query", "/api/v1/query_range")


@dataclass(frozen=True)
class Violation:
    field: str  # the spec path, e.g. spec.backend.ecs
    value: str
    allow_key: str  # the ReleasePolicy list that would allow it, e.g. ecsServices
    namespace: str

    @property
    def message(self) -> str:
        if self.allow_key == "":
            return (f"no ReleasePolicy covers namespace {self.namespace}: a ReleasePolicy must name it "
                    "(spec.namespaces or spec.namespaceSelector) before its Releases may move anything")
        return (f"{self.field} {self.value!r} is not allowed for namespace {self.namespace}: a ReleasePolicy must "
                f"allow it (spec.allow.{self.allow_key})")


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: every matchLabels pair and every expression holds.

    >>> from controller.api.policy import LabelSelector
    >>> selector_matches(LabelSelector(match_labels={"team": "a"}), {"team": "a", "env": "prod"})
    True
    >>> selector_matches(LabelSelector(), {"team": "a"})  # an empty selector matches everything
    True
    """
    if any(labels.get(k) != v for k, v in selector.match_labels.items()):
        return False
    for req in selector.match_expressions:
        present = req.key in labels
        value = labels.get(req.key)
        ok = {
            SelectorOperator.IN: present and value in req.values,
            SelectorOperator.NOT_IN: not present or value not in req.values,
            SelectorOperator.EXISTS: present,
            SelectorOperator.DOES_NOT_EXIST: not present,
        }[req.operator]
        if not ok:
            return False
    return True


def covers(policy: ReleasePolicy, namespace: str, labels: Mapping[str, str]) -> bool:
    spec = policy.spec
    if spec.namespaces is not None and namespace in spec.namespaces:
        return True
    return spec.namespace_selector is not None and selector_matches(spec.namespace_selector, labels)


def matching(policies: Sequence[ReleasePolicy], namespace: str, labels: Mapping[str, str]) -> list[ReleasePolicy]:
    return [p for p in policies if covers(p, namespace, labels)]


def merged(policies: Sequence[ReleasePolicy]) -> PolicyAllow:
    """The allow lists of several policies added up."""
    lists: dict[str, list[str]] = {}
    for policy in policies:
        for key, globs in policy.spec.allow:
            lists.setdefault(key, []).extend(globs)
    return PolicyAllow(**lists)


def named(spec: ReleaseSpec) -> Iterator[tuple[str, str, str]]:
    """Everything a Release names that a policy must allow: (field, value, allow list), in judging order."""
    be = spec.backend
    # Every service of a tier of several is judged as the one service is (`spec.backend.services[i]...`).
    services = [("spec.backend", be.service_list()[0])] if be.services is None else [
        (f"spec.backend.services[{i}]", s) for i, s in enumerate(be.services)]
    for at, s in services:
        yield f"{at}.ecs", f"{s.ecs.cluster}/{s.ecs.service}", "ecs_services"
        if s.traffic is not None:
            yield f"{at}.traffic.listenerArn", s.traffic.listener_arn, "listeners"
            yield f"{at}.traffic.stableTargetGroupArn", s.traffic.stable_target_group_arn, "target_groups"
            yield f"{at}.traffic.canaryTargetGroupArn", s.traffic.canary_target_group_arn, "target_groups"
    if spec.frontend is not None:
        yield "spec.frontend.cloudfront.distributionId", spec.frontend.cloudfront.distribution_id, "distributions"
    for at, s in services:
        yield f"{at}.image", s.image, "images"
    yield from urls_of(spec)


def urls_of(spec: ReleaseSpec) -> Iterator[tuple[str, str, str]]:
    """Every URL in the spec the operator fetches or posts to, as it will be asked."""
    for i, metric in enumerate(spec.analysis.metrics):
        if metric.http is not None:
            yield f"spec.analysis.metrics[{i}].http.url", metric.http.url, "urls"
        if metric.prometheus is not None:
            base = metric.prometheus.address.rstrip("/")
            for path in PROMETHEUS_PATHS:
                yield f"spec.analysis.metrics[{i}].prometheus.address", base + path, "urls"
    for point in type(spec.hooks).model_fields:  # every hook point, the preview's included
        for i, hook in enumerate(getattr(spec.hooks, point)):
            if hook.webhook is not None and hook.webhook.url is not None:
                camel = "".join(w.capitalize() if n else w for n, w in enumerate(point.split("_")))
                yield f"spec.hooks.{camel}[{i}].webhook.url", hook.webhook.url, "urls"
    if spec.gitops is not None:
        yield "spec.gitops.repository", spec.gitops.repository, "urls"
    contract = spec.frontend.api_contract if spec.frontend is not None else None
    if contract is not None and contract.openapi_url:
        yield "spec.frontend.apiContract.openapiUrl", contract.openapi_url, "urls"


def _allowed(globs: Sequence[str], value: str, key: str) -> bool:
    if key == "urls":
        return any_matches(tuple(globs), value)
    return any(fnmatch.fnmatchcase(value, g) for g in globs)


def judge(spec: ReleaseSpec, namespace: str, labels: Mapping[str, str],
          policies: Sequence[ReleasePolicy]) -> Violation | None:
    """The first thing the Release names that no policy covering its namespace allows; None if all is
    (tests/tenancy/test_policy.py has the table)."""
    covering = matching(policies, namespace, labels)
    if not covering:
        return Violation("metadata.namespace", namespace, "", namespace)
    allow = merged(covering)
    for field, value, key in named(spec):
        if not _allowed(getattr(allow, key), value, key):
            return Violation(field, value, _camel(key), namespace)
    return None


def roles_of(policies: Sequence[ReleasePolicy], namespace: str, labels: Mapping[str, str]) -> dict[str, list[str]]:
    """The IAM roles the policies covering a namespace name: role ARN -> the policies naming it.

    One role: every AWS call for the namespace's Releases is made with it, even when another
    covering policy names none (a policy without `roleArn` does not widen another's role to the
    operator's own). Two or more: the namespace's Releases are refused (`role_conflict`), since
    which role AWS should judge them by is not for the operator to guess.
    """
    out: dict[str, list[str]] = {}
    for policy in matching(policies, namespace, labels):
        if policy.spec.role_arn:
            out.setdefault(policy.spec.role_arn, []).append(policy.name)
    return out


def role_conflict(namespace: str, roles: Mapping[str, Sequence[str]]) -> str | None:
    """The refusal's message when the covering policies name different roles; None when they do not."""
    if len(roles) < 2:
        return None
    named_ = "; ".join(f"{arn} (ReleasePolicy {', '.join(sorted(names))})" for arn, names in sorted(roles.items()))
    return (f"the ReleasePolicies covering namespace {namespace} name different roles: {named_}: every AWS call of "
            "a Release is made with one role, so at most one role may be named for a namespace (spec.roleArn)")


def url_allowed(policies: Sequence[ReleasePolicy], namespace: str, labels: Mapping[str, str], url: str) -> bool:
    """May the operator fetch or post to `url` for a Release of `namespace` (a URL read from a Secret)?"""
    return any_matches(tuple(merged(matching(policies, namespace, labels)).urls), url)


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w.capitalize() for w in rest)
