"""checkov in its own virtualenv, built with pip on first use and cached.

checkov pins boto3 and packaging versions that conflict with the project's own dependencies, so it
cannot live in .venv. The environment is built from checkov-requirements.txt (every package pinned,
so a new upstream release cannot change what CI runs) under the cache root the local binaries use
(controller/testing/binaries.py: $RELEASE_CONTROLLER_CACHE, else ~/.cache/release-controller), in a
directory named after the file's hash, so a change of pins builds a fresh one.

Network failures are pip's to retry (its per-request retries, then one more whole install); a
failed build is never mistaken for a good one (a marker file is written last), and concurrent test
sessions build it once (a file lock). Pre-build it outside pytest with
`python -m tests.ship.checkov_env` (it prints the checkov path).

This module must not run checkov (test_checkov.py does) nor skip anything when the build fails.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from controller.testing.binaries import cache_root

REQUIREMENTS = Path(__file__).with_name("checkov-requirements.txt")
ATTEMPTS = 2
INSTALL_TIMEOUT = 1500  # seconds per attempt: pip's own timeouts and retries end well before


class CheckovInstallError(RuntimeError):
    pass


def checkov_version() -> str:
    for line in REQUIREMENTS.read_text().splitlines():
        if line.startswith("checkov=="):
            return line.split("==", 1)[1].strip()
    raise CheckovInstallError(f"{REQUIREMENTS} pins no checkov version")


def env_dir(cache: Path | None = None) -> Path:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:10]
    return (cache or cache_root()) / f"checkov-{checkov_version()}-{digest}"


def ensure_checkov(cache: Path | None = None) -> Path:
    """$CHECKOV, else `checkov` on PATH, else the cached virtualenv's (built now if missing)."""
    if os.environ.get("CHECKOV"):
        return Path(os.environ["CHECKOV"])
    on_path = shutil.which("checkov")
    if on_path:
        return Path(on_path)
    target = env_dir(cache)
    binary, done = target / "bin" / "checkov", target / ".installed"
    if done.exists():
        return binary
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if done.exists():  # another session built it while this one waited
            return binary
        failures: list[str] = []
        for _ in range(ATTEMPTS):
            venv.EnvBuilder(with_pip=True, clear=True).create(target)
            try:
                out = subprocess.run(
                    [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--retries", "10",
                     "--no-input", "-r", str(REQUIREMENTS)],
                    capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False,
                )
            except subprocess.TimeoutExpired as exc:
                failures.append(f"pip install timed out after {exc.timeout}s")
                continue
            if out.returncode == 0 and binary.exists():
                done.touch()
                return binary
            failures.append(out.stderr[-3000:])
        raise CheckovInstallError(f"installing checkov into {target} failed {ATTEMPTS} times:\n" + "\n---\n".join(failures))


if __name__ == "__main__":
    sys.stdout.write(f"{ensure_checkov()}\n")
