"""A real Git server for tests and the local environment: smart HTTP on a loopback port.

Git's own `git http-backend` (Debian's git package; `make deps` installs it) does the protocol work
as a CGI program; this module is only the small HTTP server in front of it, with basic
authentication, so clients (ours uses dulwich, people use git, Flux's source-controller uses
go-git) speak exactly what they would speak to GitHub or GitLab over HTTPS, minus TLS.

Repositories are bare directories under `root` that the test creates with `create_repo`. The
helpers `commit_files`, `log` and `show` use the git CLI on a scratch clone, as a person would.

    with GitServer(tmp_path) as git:
        git.create_repo("releases")
        git.commit_files("releases", {"prod/app.yaml": text}, "first")
        url = git.url("releases")            # http://127.0.0.1:PORT/releases.git
        git.username, git.password           # what a Kubernetes Secret would hold

Must not: listen anywhere but 127.0.0.1, or put the password in a URL it prints or logs.
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from controller.testing.ports import serve_in_background

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
}


def git_binary() -> str:
    found = shutil.which("git")
    if not found:
        raise RuntimeError("git is not installed (Debian package `git`; `make deps` installs it)")
    return found


def _http_backend() -> str:
    out = subprocess.run([git_binary(), "--exec-path"], capture_output=True, text=True, check=True)
    return str(Path(out.stdout.strip()) / "git-http-backend")


def _read_chunked(rfile: Any) -> bytes:
    body = bytearray()
    while True:
        size = int(rfile.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        body += rfile.read(size)
        rfile.readline()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(user, self.server.username) and hmac.compare_digest(
            password, self.server.password
        )

    def _serve(self) -> None:
        self.server.requests += 1
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = _read_chunked(self.rfile)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        if self.command == "POST" and url.path.endswith("/git-receive-pack") and self.server.hold.is_set():
            # A test holds pushes (to kill the pusher mid-push): the push is here, whole, and waits.
            self.server.held.set()
            self.server.release.wait(timeout=120)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            # http-backend enables receive-pack (push) only for an authenticated user.
            "REMOTE_USER": self.server.username,
            "REMOTE_ADDR": self.client_address[0],
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        proc = subprocess.run([self.server.backend], input=body, env=env, capture_output=True, check=False)
        head, sep, payload = proc.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name.strip(), value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, username: str, password: str, verbose: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root, self.username, self.password, self.verbose = root, username, password, verbose
        self.backend = _http_backend()
        self.requests = 0
        self.hold, self.held, self.release = threading.Event(), threading.Event(), threading.Event()


class GitServer:
    """A smart-HTTP Git server on 127.0.0.1 with one user (basic auth) and bare repos under `root`."""

    def __init__(self, root: Path, *, username: str = "releases-bot", password: str | None = None,
                 verbose: bool = False) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.username = username
        self.password = password if password is not None else "tok-" + secrets.token_urlsafe(24)
        self._server = _Server(self.root, self.username, self.password, verbose)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def requests(self) -> int:
        """How many HTTP requests reached the server (authenticated or not)."""
        return self._server.requests

    def hold_pushes(self) -> None:
        """From now on a push waits, received whole, until `release_pushes`; `push_held` says one did."""
        self._server.release.clear()
        self._server.held.clear()
        self._server.hold.set()

    def push_held(self, timeout: float) -> bool:
        return self._server.held.wait(timeout)

    def release_pushes(self) -> None:
        """Held pushes go on (applied, even if their client is gone meanwhile); later ones pass."""
        self._server.hold.clear()
        self._server.release.set()

    def url(self, repo: str) -> str:
        return f"http://127.0.0.1:{self.port}/{repo}.git"

    def start(self) -> GitServer:
        self._thread = serve_in_background(self._server, "git-http")
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.stop()

    # --- repositories, as a person with the git CLI would handle them ---

    def bare(self, repo: str) -> Path:
        return self.root / f"{repo}.git"

    def create_repo(self, repo: str, branch: str = "main") -> Path:
        path = self.bare(repo)
        self._git(["init", "--bare", "--quiet", f"--initial-branch={branch}", str(path)])
        return path

    def _git(self, args: list[str], cwd: Path | None = None) -> str:
        proc = subprocess.run([git_binary(), *args], cwd=cwd, env={**os.environ, **GIT_ENV},
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"git {args[0]} failed: {proc.stderr.strip()}")
        return proc.stdout

    def commit_files(self, repo: str, files: dict[str, str], message: str, branch: str = "main") -> str:
        """Commit `files` (path -> text) on `branch` directly in the bare repository; returns the SHA.

        Goes through a scratch clone of the local directory (no HTTP), as a colleague's push would.
        """
        with tempfile.TemporaryDirectory(prefix="git-work-") as tmp:
            work = Path(tmp) / "w"
            self._git(["clone", "--quiet", str(self.bare(repo)), str(work)])
            has_branch = self._git(["ls-remote", "--heads", "origin", branch], cwd=work).strip()
            self._git(["checkout", "--quiet", "-B", branch] + ([f"origin/{branch}"] if has_branch else []), cwd=work)
            for rel, text in files.items():
                target = work / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
                self._git(["add", rel], cwd=work)
            self._git(["commit", "--quiet", "--allow-empty", "-m", message], cwd=work)
            self._git(["push", "--quiet", "origin", f"HEAD:refs/heads/{branch}"], cwd=work)
            return self._git(["rev-parse", "HEAD"], cwd=work).strip()

    def log(self, repo: str, branch: str = "main") -> list[tuple[str, str]]:
        """(sha, full message) of every commit on `branch`, newest first."""
        out = self._git(["--git-dir", str(self.bare(repo)), "log", "--format=%H%x00%B%x01", branch])
        entries = [e.strip("\n") for e in out.split("\x01") if e.strip("\n")]
        return [(sha, msg.strip()) for sha, _, msg in (e.partition("\x00") for e in entries)]

    def show(self, repo: str, path: str, branch: str = "main") -> str:
        return self._git(["--git-dir", str(self.bare(repo)), "show", f"{branch}:{path}"])

    def branches(self, repo: str) -> list[str]:
        out = self._git(["--git-dir", str(self.bare(repo)), "for-each-ref", "--format=%(refname:short)", "refs/heads"])
        return out.split()
