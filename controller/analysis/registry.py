"""The registry of metric providers: `build_providers` makes the Prometheus, HTTP and CloudWatch
providers from the clients the caller owns (this module builds no global client)."""

from __future__ import annotations

from typing import Any

from controller.analysis.base import Provider
from controller.analysis.cloudwatch import CloudWatchProvider
from controller.analysis.http import HttpProvider
from controller.analysis.prometheus import PrometheusProvider


def build_providers(http_client: Any, cloudwatch_client: Any | None = None) -> dict[str, Provider]:
    """The registry of the three providers: `http_client` is an `httpx.Client` (Prometheus and
    HTTP checks share it), `cloudwatch_client` a boto3 CloudWatch client (without one, CloudWatch
    metrics report a provider error)."""
    providers: dict[str, Provider] = {
        "prometheus": PrometheusProvider(http_client),
        "http": HttpProvider(http_client),
    }
    if cloudwatch_client is not None:
        providers["cloudwatch"] = CloudWatchProvider(cloudwatch_client)
    return providers
