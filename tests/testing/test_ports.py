"""free_port() is race-free across processes: callers that ask at the same moment (several
pytest-xdist workers, several `dev up`) each get a port of their own, and a port handed out is not
handed out again while its server may still be about to bind it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.testing import ports
from controller.testing.ports import free_port, port_range

# Each child waits for the go file, takes PER_PROCESS ports as fast as it can, then binds them all
# (and keeps them): like a local environment, which picks its servers' ports first and whose
# servers bind them seconds later. (The old "bind port 0 and close" failed this most times: the
# kernel hands a closed port out again, to whoever asks next.)
CHILD = r"""
import json, os, socket, sys, time
from pathlib import Path
from controller.testing.ports import free_port
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.001)
held, got, failed = [], [], []
for _ in range(int(sys.argv[2])):
    got.append(free_port())
for port in got:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        held.append(sock)
    except OSError as exc:
        failed.append([port, str(exc)])
print(json.dumps({"ports": got, "failed": failed}))
sys.stdout.flush()
sys.stdin.read()  # hold the ports until the test has every child's answer
"""

PROCESSES = 6
PER_PROCESS = 40


def test_processes_asking_at_the_same_moment_never_get_the_same_port(tmp_path: Path) -> None:
    env = {**os.environ, "RELEASE_CONTROLLER_PORTS_LEDGER": str(tmp_path / "ledger.json")}
    go = tmp_path / "go"
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(go), str(PER_PROCESS)], env=env, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])
        for _ in range(PROCESSES)
    ]
    try:
        time.sleep(0.5)  # let every child reach its wait for the go file (the start line, not a sync)
        go.touch()
        answers = [json.loads(child.stdout.readline()) for child in children if child.stdout]
    finally:
        for child in children:
            child.communicate(input="", timeout=30)
    assert len(answers) == PROCESSES
    every = [port for answer in answers for port in answer["ports"]]
    assert [a["failed"] for a in answers] == [[]] * PROCESSES  # every port could be bound by its taker
    assert len(every) == len(set(every)) == PROCESSES * PER_PROCESS  # and none was handed out twice
    assert all(port in port_range() for port in every)
    assert set(json.loads((tmp_path / "ledger.json").read_text())) == {str(p) for p in every}


def test_a_port_is_not_handed_out_again_until_its_lease_ends_and_only_if_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELEASE_CONTROLLER_PORTS_LEDGER", str(tmp_path / "ledger.json"))
    monkeypatch.setattr(ports, "PORT_LEASE_SECONDS", 1.0)
    first = free_port()  # a port nothing holds, in the usual range, now leased
    monkeypatch.setenv("RELEASE_CONTROLLER_PORT_RANGE", f"{first}-{first + 1}")
    with socket.socket() as other:
        if ports._bindable(first + 1):  # else someone else holds it already, which serves as well
            other.bind(("127.0.0.1", first + 1))
            other.listen()
        # Of the range's two ports, `first` is leased and `first + 1` held: nothing to hand out.
        with pytest.raises(OSError, match="no free port"):
            free_port()
        time.sleep(1.1)  # the lease of `first` ends (the lease's length is what is under test)
        assert free_port() == first  # free again: handed out again, with a new lease
        with pytest.raises(OSError, match="no free port"):
            free_port()  # `first` is leased again, and `first + 1` is still held


def test_the_range_is_outside_the_kernels_ephemeral_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELEASE_CONTROLLER_PORT_RANGE", raising=False)
    low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    chosen = port_range()
    assert chosen.stop - 1 < low or chosen.start > high, (chosen, low, high)
    assert len(chosen) >= 2000
    monkeypatch.setenv("RELEASE_CONTROLLER_PORT_RANGE", "30000-30010")
    assert port_range() == range(30000, 30011)
    monkeypatch.setenv("RELEASE_CONTROLLER_PORT_RANGE", "80-90")
    with pytest.raises(ValueError, match="RELEASE_CONTROLLER_PORT_RANGE"):
        port_range()
