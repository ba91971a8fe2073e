"""Logging set-up for `release-controller run`: one JSON object per line (or plain text), with the
Release a line is about, and nothing secret in it.

Every logger goes through the one root handler installed by `configure`: ours, botocore's and
kopf's. kopf marks the lines it logs about an object with a `k8s_ref` attribute (its per-object
logger adapter adds it); the formatter turns that into the same `namespace`/`name` fields our own
lines carry, so a log pipeline needs one parser for both.

Per-pass fields come from a context variable: `release_context(namespace, name)` wraps a
reconcile pass (it runs in a worker thread; `asyncio.to_thread` copies the context, so the value
stays with that pass), `note(...)` adds revision, phase and step once they are known, and
`aws_request` (a botocore `after-call` hook, registered in controller/aws/clients.py) records the
request id AWS returned for the pass's last call that changed something (or its last call).

Secrets: the controller never formats a credential into a message, and as a second line of
defence every value registered with `redact` (the AWS secret key and session token from the
environment, at `configure`; a Prometheus password or token read from a Secret) is replaced by
`***` in each formatted line, and so are the credentials of any URL (`http://user:pw@host`), in
every logger's lines, httpx's own request lines included.

This module must not import kopf or boto3.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["json", "text"]
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "text")

# The fields a pass adds to its lines, in the order a reader scans them.
PASS_FIELDS = ("namespace", "name", "revision", "phase", "step", "aws_request_id")

_pass: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("release_pass", default=None)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()

# Read-only calls: their request id is reported only when a pass made no change.
_READ_PREFIXES = ("Describe", "Get", "List", "Head")


def redact(value: str | None) -> None:
    """Never let `value` reach a log line (short values would mask ordinary words: ignored)."""
    if value and len(value) >= 8:
        with _secrets_lock:
            _secrets.add(value)


_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s]+@")


def scrub_urls(text: str) -> str:
    """Credentials in any URL (`scheme://user:password@host`) become `***`, wherever they appear.

    >>> scrub_urls("GET http://admin:pw@prom:9090/api/v1/query and https://tok@git.example/x.git")
    'GET http://***@prom:9090/api/v1/query and https://***@git.example/x.git'
    """
    return _USERINFO.sub(r"\g<scheme>***@", text) if "@" in text else text


def scrub(text: str) -> str:
    with _secrets_lock:
        secrets = tuple(_secrets)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return scrub_urls(text)


@contextmanager
def release_context(namespace: str, name: str) -> Iterator[dict[str, Any]]:
    """The fields of one reconcile pass; lines logged inside carry them."""
    fields: dict[str, Any] = {"namespace": namespace, "name": name}
    token = _pass.set(fields)
    try:
        yield fields
    finally:
        _pass.reset(token)


def note(**fields: Any) -> None:
    """Add fields (revision, phase, step, ...) to the current pass, if there is one."""
    current = _pass.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


def aws_request(operation: str, parsed: Mapping[str, Any] | None) -> None:
    """Remember the request id of an AWS response in the current pass (botocore `after-call`)."""
    current = _pass.get()
    if current is None or not isinstance(parsed, Mapping):
        return
    request_id = (parsed.get("ResponseMetadata") or {}).get("RequestId")
    if not request_id:
        return
    changed = not operation.startswith(_READ_PREFIXES)
    if changed or not current.get("_aws_changed"):
        current["aws_request_id"] = request_id
        current["aws_operation"] = operation
        current["_aws_changed"] = changed or current.get("_aws_changed", False)


class _ContextFilter(logging.Filter):
    """Puts the pass fields, or kopf's object reference, on each record as `release` (a dict).

    One attribute, not one per field: a LogRecord already has a `name` (the logger's).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        fields: dict[str, Any] = {}
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, Mapping):
            fields.update({k: ref[k] for k in ("namespace", "name") if ref.get(k)})
        current = _pass.get()
        if current:
            fields.update({k: v for k, v in current.items() if not k.startswith("_")})
        if fields:
            record.release = fields
        return True


class JsonLines(JsonFormatter):
    """One JSON object per line: time, level, logger, message, then the pass and extra fields."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # kopf's internals: its reference is flattened by _ContextFilter, the rest is noise.
            reserved_attrs=[*_RESERVED, "k8s_ref", "k8s_skip", "settings", "release"],
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            json_ensure_ascii=False,
        )

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        for key, value in (getattr(record, "release", None) or {}).items():
            log_record.setdefault(key, value)

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class Text(logging.Formatter):
    """`time level logger: [namespace/name] message` for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "release", None) or {}
        if fields.get("namespace") and fields.get("name"):
            extras = " ".join(f"{k}={fields[k]}" for k in PASS_FIELDS[2:] if fields.get(k) is not None)
            where = f"[{fields['namespace']}/{fields['name']}{' ' + extras if extras else ''}]"
            line = line.replace(": ", f": {where} ", 1)
        return scrub(line)


# LogRecord's own attributes: not repeated as fields of the JSON object.
_RESERVED = [
    "args", "asctime", "created", "exc_info", "exc_text", "filename", "funcName", "levelname",
    "levelno", "lineno", "module", "msecs", "message", "msg", "name", "pathname", "process",
    "processName", "relativeCreated", "stack_info", "thread", "threadName", "taskName",
]


def configure(
    log_format: LogFormat = "json", *, verbose: bool = False, stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Install the one handler on the root logger (replacing any earlier one of ours)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    environ = os.environ if env is None else env
    for key in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        redact(environ.get(key))
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else Text())
    handler.addFilter(_ContextFilter())
    handler.set_name("release-controller")
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "release-controller"]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Python's warnings (deprecations from libraries) would otherwise reach stderr unformatted.
    logging.captureWarnings(True)
    for noisy in ("kopf", "botocore", "urllib3", "urllib3.connectionpool", "httpx"):
        logging.getLogger(noisy).setLevel(logging.NOTSET)  # verbose: everything (an earlier quiet set-up undone)
    if not verbose:
        logging.getLogger("kopf").setLevel(logging.WARNING)
        logging.getLogger("botocore").setLevel(logging.WARNING)
        logging.getLogger("urllib3").setLevel(logging.WARNING)
        # Each retry of a Kubernetes request is a WARNING of its own: three lines per leader-election
        # try while the API server is away (a CI run: 1,000 lines in a 3-minute outage). The election
        # and the pass say once that it did not answer.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        # httpx logs each request's URL at INFO: one line per measurement is noise (and scrubbed).
        logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler
