"""Operator settings: flags of `release-controller run`, with environment fallbacks
(RELEASE_CONTROLLER_RESYNC, ...), read once at start and passed down explicitly.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELEASE_CONTROLLER_", frozen=True)

    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    resync_seconds: float = Field(default=30.0, gt=0)
    liveness_port: int | None = 8080
    metrics_port: int | None = 9090
    peering: str | None = None  # kopf peering name: several replicas, one active
    priority: int = 0
    verbose: bool = False
    log_format: str = "text"  # controller/logs.py: json or text
    selector: str | None = None  # kopf label filter: this Deployment handles only matching Releases
