"""What every metric provider shares: the `Provider` Protocol, the `Sample` it returns, the
`MeasureContext` it is asked in, and which spec field selects it (`provider_key`).

A provider turns one `Metric` spec into numbers (`Sample`); it never judges them, and it never
raises for an unreachable backend: it reports `Sample(error=...)` so the verdict can count provider
errors apart from failures. The concrete providers (`prometheus.py`, `cloudwatch.py`, `http.py`)
import only this module of the package; `providers.py` judges samples and `registry.py` builds the
providers, so nothing here imports a provider.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from controller.api.release import MeasurementError, Metric


@dataclass(frozen=True)
class MeasureContext:
    """What a query may refer to, and the clock, passed in.

    `window` is how far back a comparison with the stable version looks (range queries); the
    caller usually passes the time since the current step started, capped at a few minutes.
    """

    version: str
    stable_version: str | None
    environment: str
    now: datetime
    window: timedelta = timedelta(minutes=2)
    headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Per metric name, the request headers its credentials make (Authorization), resolved from the
    metric's Secret by the caller; a provider adds them and never shows them."""
    auth_errors: Mapping[str, str] = field(default_factory=dict)
    """Per metric name, why its credentials could not be read (no Secret, a missing key): a spec error."""
    signers: Mapping[str, Any] = field(default_factory=dict)
    """Per metric name, an `httpx.Auth` that signs each request (SigV4, `controller.analysis.sigv4`)."""

    def substitute(self, template: str, version: str | None = None) -> str:
        """Fill `{{version}}`, `{{stableVersion}}` and `{{environment}}` (spaces inside the braces
        allowed). `version` overrides `{{version}}`: the stable side of a comparison asks the same
        query for the stable version.

        >>> ctx = MeasureContext("2.0.0", "1.9.0", "production", datetime(2025, 1, 1))
        >>> ctx.substitute('rate(x{version="{{version}}",env="{{ environment }}"}[1m])')
        'rate(x{version="2.0.0",env="production"}[1m])'
        >>> ctx.substitute('x{version="{{version}}"}', version=ctx.stable_version)
        'x{version="1.9.0"}'
        """
        values = {
            "version": version if version is not None else self.version,
            "stableVersion": self.stable_version or "",
            "environment": self.environment,
        }
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s]+@")


def shown_url(url: str) -> str:
    """A URL as it may appear in a message (status, Events, logs): without its credentials.

    >>> shown_url("http://admin:pw@prometheus:9090/api/v1/query")
    'http://***@prometheus:9090/api/v1/query'
    """
    return _USERINFO.sub(r"\g<scheme>***@", url)


@dataclass(frozen=True)
class Sample:
    """What a provider saw for one metric.

    `value` None with no `error` means the source answered with nothing (NoData). `error_kind` says
    whose fault an `error` is: the source's (`PROVIDER`, monitoring down: the rollout holds), the
    spec's (`QUERY`: reported at once), the canary's (`NO_ANSWER`: a probe of the canary itself timed
    out, counted like no data) or too little traffic to judge yet (`LOW_TRAFFIC`). `samples` and
    `stable_samples` are the two versions' series over the window, filled only for
    `compareWithStable`. `note` is a human explanation the provider adds (e.g. which health check
    is down); it ends up in the measurement's message.
    """

    value: float | None = None
    stable_value: float | None = None
    samples: tuple[float, ...] = ()
    stable_samples: tuple[float, ...] = ()
    error: str | None = None
    note: str = ""
    error_kind: MeasurementError = MeasurementError.PROVIDER


class Provider(Protocol):
    def measure(self, metric: Metric, ctx: MeasureContext) -> Sample:
        """Measure `metric` for `ctx.version`; report unreachable sources as `Sample(error=...)`."""
        ...


PROVIDER_FIELDS = ("prometheus", "cloudwatch", "http")


def auth_headers(kind: str, data: Mapping[str, bytes]) -> dict[str, str]:
    """The Authorization header from a Secret's data: Basic from `username` and `password`,
    Bearer from `token`. A missing key raises KeyError naming it.

    >>> auth_headers("Bearer", {"token": b"abc\\n"})
    {'Authorization': 'Bearer abc'}
    >>> auth_headers("Basic", {"username": b"admin", "password": b"pw"})
    {'Authorization': 'Basic YWRtaW46cHc='}
    """
    import base64

    def key(name: str) -> str:
        if name not in data:
            raise KeyError(name)
        return data[name].decode().strip()

    if kind == "Bearer":
        return {"Authorization": f"Bearer {key('token')}"}
    pair = f"{key('username')}:{key('password')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def provider_key(metric: Metric) -> str | None:
    """The spec field that is set, which is the registry key of the metric's provider.

    >>> from controller.api.release import HttpCheck
    >>> provider_key(Metric(name="health", http=HttpCheck(url="http://x/health")))
    'http'
    """
    return next((name for name in PROVIDER_FIELDS if getattr(metric, name) is not None), None)
