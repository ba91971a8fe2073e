"""`release-controller run` that cannot start says why in one line and exits non-zero.

Real parts: a real listening socket holds the port; the real local kube-apiserver; a second moto
server started with authentication on (INITIAL_NO_AUTH_ACTION_COUNT=0), which refuses unknown
credentials as AWS does (InvalidClientTokenId).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.testing.moto import MotoServer

pytestmark = pytest.mark.timeout(120)

CLI = str(Path(sys.executable).parent / "release-controller")


def run_operator(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # A bounded wait: a preflight that let the operator start would otherwise run until killed.
    return subprocess.run([CLI, "run", "-n", "preflight", *args], env=env, capture_output=True, text=True, timeout=60)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture()
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("option", ["--metrics-port", "--liveness-port"])
def test_a_port_in_use(env_vars: dict[str, str], taken_port: int, option: str) -> None:
    other = "--liveness-port" if option == "--metrics-port" else "--metrics-port"
    proc = run_operator(env_vars, option, str(taken_port), other, "0")
    assert proc.returncode == 2
    assert one_line(proc) == (f"error: port {taken_port} ({option}) is already in use: give another with "
                              f"{option} PORT, or {option} 0 to turn it off")


def test_a_missing_kubeconfig(env_vars: dict[str, str], tmp_path: Path) -> None:
    env = {**env_vars, "KUBECONFIG": str(tmp_path / "absent.yaml")}
    proc = run_operator(env, "--metrics-port", "0", "--liveness-port", "0")
    assert proc.returncode == 4
    assert one_line(proc) == f"error: no cluster access: kubeconfig {tmp_path / 'absent.yaml'} (KUBECONFIG) does not exist"


@pytest.fixture(scope="module")
def authenticating_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(log_path=tmp_path_factory.mktemp("moto-auth") / "moto.log",
                        extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_aws_credentials_refused(env_vars: dict[str, str], authenticating_moto: MotoServer) -> None:
    env = {**env_vars, "AWS_ENDPOINT_URL": authenticating_moto.endpoint,
           "AWS_ACCESS_KEY_ID": "AKIANOTAREALKEY00000", "AWS_SECRET_ACCESS_KEY": "wrong"}
    proc = run_operator(env, "--metrics-port", "0", "--liveness-port", "0")
    assert proc.returncode == 4
    line = one_line(proc)
    assert line.startswith("error: no AWS access: the credentials (access key AKIANOTAREALKEY00000) were refused: "
                           "InvalidClientTokenId"), line
    assert "wrong" not in line  # the secret never appears


def test_no_aws_credentials(env_vars: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in env_vars.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                         "AWS_SESSION_TOKEN", "AWS_PROFILE")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    proc = run_operator(env, "--metrics-port", "0", "--liveness-port", "0")
    assert proc.returncode == 4
    assert one_line(proc).startswith("error: no AWS access: no credentials found"), proc.stderr


def test_a_missing_aws_profile(env_vars: dict[str, str]) -> None:
    env = {k: v for k, v in env_vars.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env["AWS_PROFILE"] = "no-such-profile"
    proc = run_operator(env, "--metrics-port", "0", "--liveness-port", "0")
    assert proc.returncode == 4
    line = one_line(proc)
    assert line.startswith("error: no AWS access:") and "no-such-profile" in line, line
