"""controller.testing.gitserver speaks Git's smart HTTP with basic auth to the git CLI itself."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from controller.testing.gitserver import GIT_ENV, GitServer


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True,
                          check=False, timeout=60)


def test_git_clones_and_pushes_with_credentials_and_is_refused_without(tmp_path: Path) -> None:
    with GitServer(tmp_path / "srv") as server:
        server.create_repo("releases")
        first = server.commit_files("releases", {"a.yaml": "a: 1\n"}, "first")
        assert server.url("releases").startswith("http://127.0.0.1:")

        refused = _git("clone", server.url("releases"), str(tmp_path / "anon"))
        # The server asked for credentials (401) and git, with prompts off, had none to give.
        assert refused.returncode != 0 and "could not read Username" in refused.stderr, refused.stderr

        token = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
        auth = ["-c", f"http.extraHeader=Authorization: Basic {token}"]
        work = tmp_path / "work"
        cloned = _git(*auth, "clone", server.url("releases"), str(work))
        assert cloned.returncode == 0, cloned.stderr
        assert (work / "a.yaml").read_text() == "a: 1\n"
        (work / "b.yaml").write_text("b: 2\n")
        assert _git("add", "b.yaml", cwd=work).returncode == 0
        assert _git("commit", "-m", "second", cwd=work).returncode == 0
        pushed = _git(*auth, "push", "origin", "HEAD:main", cwd=work)
        assert pushed.returncode == 0, pushed.stderr
        assert [m for _, m in server.log("releases")] == ["second", "first"]
        assert server.log("releases")[1][0] == first
