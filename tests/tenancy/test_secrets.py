"""A Secret is used only for the URLs its annotation allows."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from controller.tenancy.secrets import ALLOWED_URLS_ANNOTATION, GuardedSecrets, NotPermitted

HOOK = "https://hooks.slack.com/services/T0/B0/secret-token"
STORE: dict[tuple[str, str], tuple[dict[str, str], dict[str, bytes]]] = {
    ("team-a", "git"): ({ALLOWED_URLS_ANNOTATION: "https://git.example.com/team-a/*"},
                       {"username": b"dbadmin", "password": b"hunter2"}),
    ("team-a", "db"): ({}, {"username": b"dbadmin", "password": b"hunter2"}),  # no annotation
    ("team-a", "hook"): ({ALLOWED_URLS_ANNOTATION: "https://hooks.slack.com/*"}, {"url": HOOK.encode()}),
    ("team-a", "hook-elsewhere"): ({ALLOWED_URLS_ANNOTATION: "https://hooks.slack.com/*"},
                                   {"url": b"https://evil.test/collect"}),
}


def read(namespace: str, name: str) -> tuple[Mapping[str, str], Mapping[str, bytes]]:
    return STORE[(namespace, name)]


SECRETS = GuardedSecrets(read)


def test_credentials_go_only_where_the_secret_allows() -> None:
    assert SECRETS.data_for("team-a", "git", "https://git.example.com/team-a/releases.git")["password"] == b"hunter2"
    for name, url in (("git", "https://evil.test/r.git"), ("git", "https://git.example.com/team-b/r.git"),
                      ("db", "https://git.example.com/team-a/releases.git")):
        with pytest.raises(NotPermitted) as info:
            SECRETS.data_for("team-a", name, url)
        assert ALLOWED_URLS_ANNOTATION in info.value.message and "hunter2" not in info.value.message


def test_a_url_in_a_secret_is_used_only_if_the_secret_allows_it() -> None:
    assert SECRETS.url("team-a", "hook", "url") == HOOK
    with pytest.raises(NotPermitted) as info:
        SECRETS.url("team-a", "hook-elsewhere", "url")
    assert "evil.test" not in info.value.message  # the URL is a secret: never named
    with pytest.raises(KeyError):
        SECRETS.url("team-a", "hook", "nokey")
