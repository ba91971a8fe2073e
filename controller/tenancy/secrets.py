"""No confused deputy: a Secret is used only for the URLs the Secret itself allows.

The operator may read every Secret of a watched namespace; a Release author may not. So a Release
naming a Secret (`gitops.secretRef`, a webhook's `urlSecretRef`) must not make the operator send its
contents somewhere the Secret's owner did not choose. Whoever writes the Secret says where it may go,
in the annotation `delivery.pratiko.ai/allowed-urls` (comma-separated URL globs, matched as in
`controller.tenancy.urls`): credentials go only to a repository URL it allows, and a URL kept in a
Secret is used only if it allows that URL itself. No annotation: the Secret is used for nothing.

A refusal (`NotPermitted`) names the Secret and the annotation, never a value or the secret URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from controller.tenancy.urls import any_matches

ALLOWED_URLS_ANNOTATION = "delivery.pratiko.ai/allowed-urls"


class NotPermitted(Exception):
    """A Secret (or a policy) does not allow this use; the message is safe to show the Release's author."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def allowed_globs(annotations: Mapping[str, str] | None) -> tuple[str, ...]:
    """The URL globs a Secret's annotation allows (none without it).

    >>> allowed_globs({ALLOWED_URLS_ANNOTATION: "https://hooks.slack.com/*, https://git.example.com/a/*"})
    ('https://hooks.slack.com/*', 'https://git.example.com/a/*')
    """
    raw = (annotations or {}).get(ALLOWED_URLS_ANNOTATION, "")
    return tuple(g.strip() for g in raw.split(",") if g.strip())


def secret_allows(annotations: Mapping[str, str] | None, url: str) -> bool:
    return any_matches(allowed_globs(annotations), url)


# (namespace, name) -> (annotations, decoded data); raises when the Secret cannot be read.
SecretObjectReader = Callable[[str, str], tuple[Mapping[str, str], Mapping[str, bytes]]]


def refusal(name: str, what: str) -> str:
    return (f"Secret {name} does not allow {what} (its annotation {ALLOWED_URLS_ANNOTATION} must list a URL glob "
            "that matches; whoever may write the Secret sets it)")


@dataclass(frozen=True)
class GuardedSecrets:
    """Secret reads for sending: each says where the contents go, and the Secret must allow it."""

    read: SecretObjectReader

    def url(self, namespace: str, name: str, key: str) -> str:
        """A URL kept in a Secret key, if the Secret allows that URL; NotPermitted otherwise."""
        annotations, data = self.read(namespace, name)
        if key not in data:
            raise KeyError(key)
        value = data[key].decode().strip()
        if not secret_allows(annotations, value):
            raise NotPermitted(refusal(name, f"the URL in its key {key} to be used"))
        return value

    def data_for(self, namespace: str, name: str, url: str) -> Mapping[str, bytes]:
        """The Secret's data, to be sent to `url` (not secret: a repository URL of the spec)."""
        annotations, data = self.read(namespace, name)
        if not secret_allows(annotations, url):
            raise NotPermitted(refusal(name, f"its contents to be sent to {url}"))
        return data
