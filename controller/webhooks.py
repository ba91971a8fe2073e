"""Webhooks: one place that POSTs to a URL a Release names, for hooks and notifications alike, and
keeps the URL out of every log line.

A webhook URL from a Secret (`urlSecretRef`) is a secret: `http_poster` registers each URL it posts
to with a logging filter on the HTTP libraries (httpx logs every request's URL at INFO), and callers
report failures by kind and HTTP status only, never with the URL.

Hooks (`spec.hooks`): one hook call, made by the reconciler when the planner's `phases.hooks.due`
names a hook, its result handed to the planner in `Context.hooks`. `HookCalls` sends each hook to
its kind's runner: a webhook is called here (`WebhookHooks`), an `ecsTask` by
`controller.aws.tasks.EcsTaskHooks` (a one-off ECS task, started once per Release uid, revision,
point and hook, then read until it stops).

A hook webhook is a POST of this JSON document: `{"hook", "point", "namespace", "name", "revision",
"phase", "backend": {"stableVersion", "canaryVersion", "canaryWeight"}, "frontend":
{"stableVersion", "canaryVersion"}, "step", "stepCount"}`. A 2xx answer passes; anything else, or no
answer within `CALL_TIMEOUT`, is a failed attempt (the planner asks again with back-off until the
hook's timeout).

Must not: decide anything (the planner does), or put a response body or a URL into a result.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from controller.api.release import Hook, ReleaseSpec, ReleaseStatus
from controller.planner.decision import HookResult
from controller.planner.strategy import preview_header
from controller.tenancy.guard import describe
from controller.tenancy.secrets import NotPermitted


class Poster(Protocol):
    """POST a JSON body (with extra headers); returns the HTTP status (raises on no answer)."""

    def __call__(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> int: ...


class _Redact(logging.Filter):
    """Drops the webhook URLs from log lines of the HTTP libraries (httpx logs every request's URL
    at INFO): the URL is a secret."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()
        self._lock = threading.Lock()

    def add(self, url: str) -> None:
        with self._lock:
            self.urls.add(url)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        with self._lock:
            found = [u for u in self.urls if u in text]
        if found:
            for url in found:
                text = text.replace(url, "<webhook url>")
            record.msg, record.args = text, None
        return True


_REDACT = _Redact()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_REDACT)


def register_secret_url(url: str) -> None:
    """A URL that must not appear in the HTTP libraries' log lines."""
    _REDACT.add(url)


def http_poster(client: Any) -> Poster:
    """A Poster over an httpx.Client (its errors are named by kind only, never with the URL; the
    library's own request log lines have the URL redacted)."""

    def post(url: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> int:
        _REDACT.add(url)
        code: int = client.post(url, json=body, headers=dict(headers or {})).status_code
        return code

    return post


# --------------------------------------------------------------------------- hooks

CALL_TIMEOUT = 5.0


@dataclass
class WebhookHooks:
    client: Any  # httpx.Client
    secrets: Callable[[str, str, str], str] | None

    def __call__(self, namespace: str, name: str, uid: str, spec: ReleaseSpec, status: ReleaseStatus, point: str,
                 hook: Hook) -> HookResult:
        assert hook.webhook is not None
        ref = hook.webhook.url_secret_ref

        def result(passed: bool, message: str) -> HookResult:
            return HookResult(point, hook.name, status.revision, passed, message)

        if ref is not None:
            if self.secrets is None:
                return result(False, "no Secret reader")
            try:
                url = self.secrets(namespace, ref.name, ref.key)
            except NotPermitted as exc:
                return result(False, exc.message)
            except Exception as exc:  # the kind only: the API's answer may be long
                return result(False, f"Secret {ref.name} key {ref.key} cannot be read ({type(exc).__name__})")
            register_secret_url(url)
        else:
            assert hook.webhook.url is not None
            url = hook.webhook.url
        doc = {
            "hook": hook.name, "point": point, "namespace": namespace, "name": name, "revision": status.revision,
            "phase": status.phase.value,
            "backend": {"stableVersion": status.backend.stable_version, "canaryVersion": status.backend.canary_version,
                        "canaryWeight": status.backend.canary_weight},
            "frontend": {"stableVersion": status.frontend.stable_version,
                         "canaryVersion": status.frontend.canary_version},
            "step": status.current_step, "stepCount": status.step_count,
        }
        header = preview_header(spec, status.strategy) if point == "preview" else None
        if header is not None:
            doc["preview"] = {"header": header[0], "value": header[1]}  # a smoke test sends its requests with it
        try:
            code = http_poster(self.client)(url, doc)
        except Exception as exc:
            return result(False, f"no answer ({describe(exc).value})")
        return result(200 <= code < 300, f"HTTP {code}")


class HookRunner(Protocol):
    def __call__(self, namespace: str, name: str, uid: str, spec: ReleaseSpec, status: ReleaseStatus, point: str,
                 hook: Hook) -> HookResult: ...


@dataclass
class HookCalls:
    """One hook call, by the hook's kind. With no ecsTask runner (no ECS client) such a hook does not pass."""

    webhook: HookRunner
    ecs_task: HookRunner | None = None

    def __call__(self, namespace: str, name: str, uid: str, spec: ReleaseSpec, status: ReleaseStatus, point: str,
                 hook: Hook) -> HookResult:
        if hook.ecs_task is not None:
            if self.ecs_task is None:
                return HookResult(point, hook.name, status.revision, False, "no ECS task runner")
            return self.ecs_task(namespace, name, uid, spec, status, point, hook)
        return self.webhook(namespace, name, uid, spec, status, point, hook)
