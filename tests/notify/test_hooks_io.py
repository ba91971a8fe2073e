"""controller/webhooks.py against a loopback receiver: the documented document is POSTed, 2xx passes,
another answer fails with its HTTP status, a URL from a Secret never shows in the result or the
HTTP library's log, and an unreadable Secret is named without its content."""

from __future__ import annotations

import logging

import httpx
import pytest

from controller.api.release import Hook, ReleaseStatus
from controller.webhooks import WebhookHooks
from tests.notify.test_notify import SECRET_URL_TOKEN, Receiver
from tests.planner.sim import make_spec

STATUS = ReleaseStatus.model_validate({"phase": "Progressing", "revision": 4, "currentStep": 2, "stepCount": 2,
                                       "backend": {"stableVersion": "1.0.0", "canaryVersion": "2.0.0",
                                                   "canaryWeight": 50}})


def test_a_webhook_hook_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ok, refusing = Receiver(), Receiver(fail_first=10_000)
    try:
        secrets = {"ok": ok.url, "refusing": refusing.url}

        def read(namespace: str, name: str, key: str) -> str:
            if name == "missing":
                raise KeyError(key)
            return secrets[name]

        hooks = WebhookHooks(httpx.Client(timeout=5.0), read)
        spec = make_spec("2.0.0")

        def call(secret: str) -> tuple[bool, str]:
            hook = Hook.model_validate({"name": "approve", "webhook": {"urlSecretRef": {"name": secret, "key": "url"}}})
            r = hooks("production", "pratiko", "uid-1", spec, STATUS, "prePromotion", hook)
            assert (r.point, r.name, r.revision) == ("prePromotion", "approve", 4)
            return r.passed, r.message

        assert call("ok") == (True, "HTTP 200")
        assert ok.got == [{"hook": "approve", "point": "prePromotion", "namespace": "production", "name": "pratiko",
                           "revision": 4, "phase": "Progressing",
                           "backend": {"stableVersion": "1.0.0", "canaryVersion": "2.0.0", "canaryWeight": 50},
                           "frontend": {"stableVersion": None, "canaryVersion": None}, "step": 2, "stepCount": 2}]
        assert call("refusing") == (False, "HTTP 503")
        passed, message = call("missing")
        assert not passed and message == "Secret missing key url cannot be read (KeyError)"
        assert "POST" in caplog.text and SECRET_URL_TOKEN not in caplog.text
    finally:
        ok.close()
        refusing.close()


def test_a_preview_hook_is_given_the_header_that_reaches_the_new_version() -> None:
    receiver = Receiver()
    try:
        strategy = {"type": "Canary", "canary": {"steps": [
            {"preview": {"duration": "1m", "header": {"name": "X-Preview"}}}, {"setWeight": 20}]}}
        spec = make_spec("2.0.0", strategy)
        hooks = WebhookHooks(httpx.Client(timeout=5.0), None)
        hook = Hook.model_validate({"name": "smoke", "webhook": {"url": receiver.url}})
        status = STATUS.model_copy(update={"strategy": "Canary"})
        assert hooks("production", "pratiko", "uid-1", spec, status, "preview", hook).passed
        assert hooks("production", "pratiko", "uid-1", spec, status, "prePromotion", hook).passed
        preview, other = receiver.got
        assert preview["point"] == "preview" and preview["preview"] == {"header": "X-Preview", "value": "2.0.0"}
        assert "preview" not in other  # only the preview's hooks are told
    finally:
        receiver.close()
