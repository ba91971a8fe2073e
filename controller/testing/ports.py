"""Free loopback ports, readiness polling and stopping, shared by every local process we start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
