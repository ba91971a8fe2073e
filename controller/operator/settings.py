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
    # Deprecated and ignored (`run --peering`, `--priority`): kopf peering is gone, the leader Lease
    # decides which process acts. Still accepted so that the Deployments of earlier releases start;
    # run_operator warns when either is set.
    peering: str | None = None
    priority: int | None = None
    verbose: bool = False
    log_format: str = "text"  # controller/logs.py: json or text
    selector: str | None = None  # kopf label filter: this Deployment handles only matching Releases
    # The RoleBinding that grants this operator its rights in each watched namespace (the chart: its
    # release name); it lets that binding's finalizer go once a namespace being deleted holds no Release.
    rolebinding: str = "release-controller"
    tenancy: str = Field(default="strict", pattern="^(strict|open)$")  # controller/tenancy: ReleasePolicies enforced
    # Leader election (controller/operator/leadership.py): one acting process per scope.
    leader_election: bool = True
    leader_lease: str | None = None  # the Lease's name; default: derived from namespaces and selector
    lease_seconds: float = Field(default=15.0, gt=0)
    renew_seconds: float = Field(default=10.0, gt=0)
    retry_seconds: float = Field(default=2.0, gt=0)
    # TEST ONLY: shifts this process's wall clock by this many seconds, to prove that timers take
    # their time from the API server (tests/e2e/test_one_writer.py). Never set it in a deployment.
    test_clock_offset_seconds: float = 0.0
