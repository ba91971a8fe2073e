"""The tenancy gate: strict refuses what no policy or Secret allows, open refuses nothing, and a
policy change is seen once the cache's ttl has passed (no restart)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.api.release import ReleaseSpec
from controller.tenancy.gate import Cached, Mode, TenancyGate, parse_policies
from controller.tenancy.secrets import ALLOWED_URLS_ANNOTATION, NotPermitted
from controller.testing.specs import merge, release_spec
from tests.tenancy.test_policy import TEAM_A, spec as team_a_spec

SLACK = "https://hooks.slack.com/services/T/B/x"
SECRETS: dict[tuple[str, str], tuple[dict[str, str], dict[str, bytes]]] = {
    ("team-a", "slack"): ({ALLOWED_URLS_ANNOTATION: "https://hooks.slack.com/*"}, {"url": SLACK.encode()}),
    ("team-a", "slack-unannotated"): ({}, {"url": SLACK.encode()}),
    ("team-a", "elsewhere"): ({ALLOWED_URLS_ANNOTATION: "https://*/*"}, {"url": b"https://evil.test/x"}),
    ("team-a", "db"): ({}, {"username": b"dbadmin", "password": b"hunter2"}),
}


def read(namespace: str, name: str) -> tuple[Mapping[str, str], Mapping[str, bytes]]:
    return SECRETS[(namespace, name)]


def gate(policies: list[dict[str, Any]], mode: Mode = Mode.STRICT) -> TenancyGate:
    return TenancyGate(mode, lambda: parse_policies(policies), lambda ns: {}, read)


def notify(secret: str) -> ReleaseSpec:
    return team_a_spec(notifications=[{"name": "team", "on": ["Succeeded"],
                                       "webhook": {"urlSecretRef": {"name": secret, "key": "url"}}}])


def test_strict_and_open() -> None:
    prod = ReleaseSpec.model_validate(release_spec(version="1.0.0", image="repo/evil:1.0.0", cluster="prod",
                                                   service="api"))
    assert gate([TEAM_A]).refusal("team-a", team_a_spec()) is None
    refused = gate([TEAM_A]).refusal("team-a", prod)
    assert refused is not None and "spec.backend.ecs 'prod/api'" in refused and "ReleasePolicy" in refused
    assert gate([TEAM_A], Mode.OPEN).refusal("team-a", prod) is None
    assert gate([]).refusal("team-a", team_a_spec()) is not None


def test_secrets_are_used_only_where_they_allow() -> None:
    g = gate([TEAM_A])
    assert g.refusal("team-a", notify("slack")) is None
    unannotated = g.refusal("team-a", notify("slack-unannotated"))
    assert unannotated is not None and ALLOWED_URLS_ANNOTATION in unannotated and "hooks.slack" not in unannotated
    # The Secret allows it, but no policy allows that URL for team-a; the URL stays unnamed.
    elsewhere = g.refusal("team-a", notify("elsewhere"))
    assert elsewhere is not None and "spec.allow.urls" in elsewhere and "evil.test" not in elsewhere
    git = team_a_spec(gitops={"repository": "https://hooks.slack.com/r.git", "path": "a.yaml",
                              "secretRef": {"name": "db"}})
    refused = g.refusal("team-a", git)
    assert refused is not None and "spec.gitops.secretRef" in refused and "hunter2" not in refused


def test_a_policy_change_is_seen_after_the_ttl() -> None:
    now = [0.0]
    store: list[dict[str, Any]] = []
    policies = Cached(lambda _: parse_policies(store), ttl=5.0, clock=lambda: now[0])
    g = TenancyGate(Mode.STRICT, lambda: policies(), lambda ns: {}, read)
    assert g.refusal("team-a", team_a_spec()) is not None
    store.append(TEAM_A)
    now[0] = 4.0
    assert g.refusal("team-a", team_a_spec()) is not None  # cached
    now[0] = 5.5
    assert g.refusal("team-a", team_a_spec()) is None


def test_a_malformed_policy_grants_nothing() -> None:
    bad = merge(TEAM_A, {"spec": {"roleArn": "not-an-arn"}})
    assert gate([bad]).refusal("team-a", team_a_spec()) is not None


ROLE_A = "arn:aws:iam::111122223333:role/release-team-a"
ROLE_B = "arn:aws:iam::111122223333:role/release-team-b"


def with_role(body: dict[str, Any], name: str, role: str | None) -> dict[str, Any]:
    spec = {**body["spec"], **({"roleArn": role} if role else {})}
    return {"metadata": {"name": name}, "spec": spec}


def test_the_role_is_the_covering_policys_and_two_roles_refuse() -> None:
    assert gate([TEAM_A]).role("team-a") is None  # no roleArn: the operator's own
    assert gate([with_role(TEAM_A, "team-a", ROLE_A)]).role("team-a") == ROLE_A
    # A second covering policy without a role does not widen the first's role to the operator's own.
    both = [with_role(TEAM_A, "team-a", ROLE_A), with_role(TEAM_A, "team-a-extra", None)]
    assert gate(both).role("team-a") == ROLE_A and gate(both).refusal("team-a", team_a_spec()) is None
    # Two roles: refused, naming both and the policies that name them; no role is picked.
    two = [with_role(TEAM_A, "team-a", ROLE_A), with_role(TEAM_A, "team-a-b", ROLE_B)]
    refused = gate(two).refusal("team-a", team_a_spec())
    assert refused is not None and ROLE_A in refused and ROLE_B in refused and "team-a-b" in refused
    try:
        gate(two).role("team-a")
    except NotPermitted as exc:
        assert ROLE_A in exc.message and ROLE_B in exc.message
    else:
        raise AssertionError("two roles must not pick one")
    # Open tenancy reads no policy: the operator's own credentials, as before.
    assert gate(two, Mode.OPEN).role("team-a") is None
    assert gate([with_role(TEAM_A, "team-a", ROLE_A)]).role("team-b") is None  # not covered: refused elsewhere
