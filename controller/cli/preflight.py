"""Checks `release-controller run` makes before it starts the operator, each failing with one line.

Without them a taken port, a missing kubeconfig or unusable AWS credentials show up as a traceback
from deep inside prometheus_client, kopf or botocore (or, for credentials, only at the first
reconcile, as a condition on every Release). Each check raises `CliError` with the exit code of
`controller.cli.common` (4: no access to a cluster or to AWS, 2: a port option that cannot work).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping

from controller.cli.common import EXIT_NO_CLUSTER, EXIT_USAGE, CliError


def check_port(port: int | None, option: str) -> None:
    """Refuse a port something already listens on (bound the way the servers bind it: all addresses)."""
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As http.server and aiohttp do, so a port in TIME_WAIT is not mistaken for a taken one.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliError(f"port {port} ({option}) is already in use: give another with {option} PORT, "
                               f"or {option} 0 to turn it off", EXIT_USAGE) from None
            raise CliError(f"port {port} ({option}) cannot be used: {exc.strerror}", EXIT_USAGE) from None


def check_kubernetes(timeout: float = 5.0) -> None:
    """Load the kubeconfig (or in-cluster config) and ask the API server for its version."""
    from kubernetes import client

    from controller.cli.common import explain_exception
    from controller.kube.client import load_api_client

    try:
        api_client = load_api_client()
        client.VersionApi(api_client).get_code(_request_timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - explained in one line, else a bug that should raise
        explained = explain_exception(exc)
        if explained is None:
            raise
        raise explained from None


# The codes AWS (and moto with authentication on) answers for credentials it does not accept.
_BAD_CREDENTIALS = {"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
                    "ExpiredToken", "ExpiredTokenException", "AuthFailure", "InvalidAccessKeyId", "AccessDenied"}


def check_aws(env: Mapping[str, str] | None = None) -> None:
    """Resolve AWS credentials and have STS say whose they are.

    sts:GetCallerIdentity needs no IAM permission, so it tells bad credentials from a policy that
    is too narrow; it is not among the actions the operator's policy lists (tests/ship).
    """
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    from controller.aws.clients import AwsClients, MissingRegion

    try:
        aws = AwsClients.from_env(env)
    except BotoCoreError as exc:  # a named profile that does not exist, a broken config file
        raise CliError(f"no AWS access: {exc}", EXIT_NO_CLUSTER) from None
    except MissingRegion as exc:
        raise CliError(f"no AWS access: {exc}", EXIT_NO_CLUSTER) from None
    if aws.session.get_credentials() is None:
        raise CliError("no AWS access: no credentials found (environment, shared files, web identity, "
                       "container or instance role)", EXIT_NO_CLUSTER)
    sts = aws.session.client(
        "sts", region_name=aws.region, endpoint_url=aws.endpoint_url,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=10),
    )
    try:
        sts.get_caller_identity()
    except NoCredentialsError:
        raise CliError("no AWS access: no credentials found", EXIT_NO_CLUSTER) from None
    except EndpointConnectionError as exc:
        raise CliError(f"no AWS access: cannot reach {exc.kwargs.get('endpoint_url')}", EXIT_NO_CLUSTER) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code in _BAD_CREDENTIALS or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
            key = aws.session.get_credentials()
            key_id = key.access_key if key is not None else "?"
            raise CliError(f"no AWS access: the credentials (access key {key_id}) were refused: {code}: "
                           f"{error.get('Message', '')}".rstrip(": "), EXIT_NO_CLUSTER) from None
        raise CliError(f"no AWS access: STS answered {code}: {error.get('Message', '')}", EXIT_NO_CLUSTER) from None


def check_all(liveness_port: int | None, metrics_port: int | None) -> None:
    """Everything `run` needs, cheapest first."""
    check_port(metrics_port, "--metrics-port")
    check_port(liveness_port, "--liveness-port")
    check_kubernetes()
    check_aws()
