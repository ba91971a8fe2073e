"""An AWS endpoint that accepts connections and never answers (a stopped process): the observer's
pass fails with AwsUnreachable naming the endpoint, after one read timeout rather than one per call
and attempt (the clients' Breaker)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from controller.aws.clients import AwsClients
from controller.aws.observe import Observer
from tests.planner.sim import make_spec


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A listening socket nobody accepts on: the kernel completes the TCP handshake, no byte comes back."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_silent_endpoint_is_unreachable_and_fails_the_pass_after_one_timeout(silent_endpoint: str) -> None:
    clients = AwsClients.from_env(
        {"AWS_ENDPOINT_URL": silent_endpoint, "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
         "AWS_SECRET_ACCESS_KEY": "testing"},
        read_timeout=1.0,
    )
    started = time.monotonic()
    obs = Observer(clients).observe(("ns", "web"), make_spec("1.0.0"))
    took = time.monotonic() - started
    assert obs.errors and {e.reason for e in obs.errors} == {"AwsUnreachable"}
    assert all(e.retryable for e in obs.errors)
    assert silent_endpoint in obs.errors[0].message
    # Every call but the first is refused by the breaker at once: far less than one timeout per call
    # and attempt (8 attempts x 1 s for each of the pass's calls).
    assert took < 8.0, took
