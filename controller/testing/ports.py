"""Free loopback ports, readiness polling and stopping, shared by every local process we start."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# --- free ports, without a race between processes ---------------------------------------------
#
# The servers we start (etcd, kube-apiserver, moto, Prometheus, the operator) take their port on
# the command line, so the port is chosen before the server binds it. "Bind port 0, read it,
# close" leaves a gap in which another process doing the same (a second `dev up`, another
# pytest-xdist worker, another checkout's test run) gets the very same port from the kernel, and
# one of the two servers fails with "Address already in use". So instead:
#
# - ports come from a range outside the kernel's ephemeral range
#   (/proc/sys/net/ipv4/ip_local_port_range), which the kernel never hands out on its own, neither
#   for `bind(port 0)` nor for the local end of an outgoing connection: only explicit binds use it;
# - every port handed out is written to a ledger shared by all processes of this user on the
#   machine, under an exclusive lock, and not handed out again for PORT_LEASE_SECONDS (long enough
#   for any server to have bound it); after that a port is only reused if it can be bound, i.e. its
#   server is gone.
#
# Two callers therefore never get the same port while either may still be about to bind it.

PORT_LEASE_SECONDS = 600.0
_DEFAULT_LOW = 20000  # the lowest port used when the ephemeral range starts above it
_MIN_RANGE = 2000


def port_range() -> range:
    """The ports free_port() hands out: $RELEASE_CONTROLLER_PORT_RANGE ("LOW-HIGH"), else the
    largest span outside the kernel's ephemeral range (below it if it starts high enough)."""
    override = os.environ.get("RELEASE_CONTROLLER_PORT_RANGE")
    if override:
        low_text, _, high_text = override.partition("-")
        low, high = int(low_text), int(high_text)
        if not 1024 <= low < high <= 65535:
            raise ValueError(f"RELEASE_CONTROLLER_PORT_RANGE={override!r} is not LOW-HIGH within 1024-65535")
        return range(low, high + 1)
    try:
        eph_low, eph_high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        eph_low, eph_high = 32768, 60999  # Linux's default
    below = range(min(_DEFAULT_LOW, max(1024, eph_low - _MIN_RANGE)), eph_low)
    above = range(eph_high + 1, 65536)
    best = max(below, above, key=len)
    # A machine whose ephemeral range covers (almost) everything: the ledger still keeps our own
    # callers apart; only an unrelated program's outgoing connection could take a port meanwhile.
    return best if len(best) >= _MIN_RANGE else range(1024, 65536)


def _ledger_path() -> Path:
    configured = os.environ.get("RELEASE_CONTROLLER_PORTS_LEDGER")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"release-controller-ports-{os.getuid()}.json"


@contextmanager
def _locked_ledger() -> Iterator[dict[str, float]]:
    """The ledger (port -> when its lease ends), read and written under an exclusive lock."""
    path = _ledger_path()
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                leases: dict[str, float] = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                leases = {}
            now = time.time()
            leases = {port: until for port, until in leases.items() if until > now}
            yield leases
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(leases))
            os.replace(tmp, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _bindable(port: int) -> bool:
    """Whether nothing holds `port` on loopback (no SO_REUSEADDR: a port whose connections are
    still in TIME_WAIT counts as taken too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port() -> int:
    """A loopback TCP port nothing listens on, which no other free_port() caller on this machine
    (any process of this user) gets before PORT_LEASE_SECONDS have passed."""
    ports = port_range()
    with _locked_ledger() as leases:
        start = random.randrange(len(ports))
        for i in range(len(ports)):
            port = ports[(start + i) % len(ports)]
            if str(port) not in leases and _bindable(port):
                leases[str(port)] = time.time() + PORT_LEASE_SECONDS
                return port
    raise OSError(errno.EADDRINUSE, f"no free port in {ports.start}-{ports.stop - 1} (all leased or in use)")


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll `check` until it returns True; raise TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except ProcessLookupError:  # the process we wait for is gone: waiting longer cannot help
            raise
        except Exception as exc:  # noqa: BLE001 - readiness probes fail in many ways until ready
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s" + (f": {last}" if last else ""))


# --- processes we started, possibly from another (now gone) process ---------------------------
#
# `dev up` starts servers in their own sessions and exits; `dev down` runs later in a different
# process that only has their pids. A pid alone can be reused by an unrelated program, so each is
# paired with its start time from /proc, and nothing is signalled unless both match.


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    state, start_time = fields[0], fields[19]
    if state in ("Z", "X"):
        _reap(pid)
        return None
    return start_time


def process_alive(pid: int, start_time: str | None = None) -> bool:
    """True while `pid` runs and, when `start_time` is given, is still the same process."""
    _reap(pid)
    current = process_start_time(pid)
    return current is not None and (start_time is None or current == start_time)


def stop_process_group(pid: int, start_time: str | None = None, timeout: float = 15) -> None:
    """SIGTERM the process group led by `pid`, SIGKILL it after `timeout` s, wait until it is gone.

    The processes are started with `start_new_session=True`, so the pid is also the group id and
    this reaches any children too. A pid that no longer names the recorded process is left alone.
    """
    if not process_alive(pid, start_time):
        return
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process_alive(pid, start_time):
        if time.monotonic() > deadline:
            _signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            # Past the SIGKILL grace too: the kernel is stuck; say so rather than hang forever.
            while process_alive(pid, start_time):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"process {pid} survived SIGKILL")
                time.sleep(0.05)
            return
        time.sleep(0.05)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        # Not a group leader we own (should not happen for our processes): signal the pid alone.
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect `pid`'s exit status if it is our child, so a finished child is not kept as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


@dataclass(frozen=True)
class StartedProcess:
    """A process we started in its own session: enough for another process to stop it later."""

    name: str
    pid: int
    start_time: str | None

    def stop(self, timeout: float = 15) -> None:
        stop_process_group(self.pid, self.start_time, timeout)


def spawn(
    name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], StartedProcess]:
    """Start `argv` in a new session (so it outlives the caller), output appended to `log_path`."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(env) if env is not None else None,
        )
    return proc, StartedProcess(name, proc.pid, process_start_time(proc.pid))


def exited_error(proc: subprocess.Popen[bytes], name: str, log_path: Path) -> RuntimeError:
    """The error to raise when a server dies while we wait for it: names it and shows its log."""
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    return RuntimeError(f"{name} exited with {proc.returncode}; end of {log_path}:\n{tail}")


@contextmanager
def silent_listener(backlog: int = 64) -> Iterator[tuple[int, list[socket.socket]]]:
    """A loopback port that accepts connections and never answers (a hanging server): its port and
    the connections it accepted, all closed on exit."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(backlog)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], held
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


SHUTDOWN_POLL = 0.02
"""Seconds between `serve_forever`'s checks for a shutdown request. The standard library's default
(0.5 s) is how long every `shutdown()` waits; the suite stops a loopback server in dozens of tests."""


def serve_in_background(server: socketserver.BaseServer, name: str = "loopback-http") -> threading.Thread:
    """Start `server.serve_forever` on a daemon thread that stops within `SHUTDOWN_POLL` of
    `server.shutdown()`; the caller shuts the server down and closes it (`serving` does both)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                              name=name, daemon=True)
    thread.start()
    return thread


def stop_serving(server: socketserver.BaseServer | None, thread: threading.Thread | None,
                 timeout: float = 10.0) -> None:
    """Undo `serve_in_background`: shut `server` down, close it, and join its thread (each may be None)."""
    if server is not None:
        server.shutdown()
        server.server_close()
    if thread is not None:
        thread.join(timeout=timeout)


@contextmanager
def serving(server: socketserver.BaseServer, name: str = "loopback-http") -> Iterator[None]:
    """Serve `server` in the background for the `with` block, then shut it down and close it."""
    serve_in_background(server, name)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
