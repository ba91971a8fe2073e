"""Write a rollback back to Git: edit the file a Release comes from and push one commit (an effector).

When the controller rolls a Release back, Git still names the bad version; the GitOps tool would
re-apply it on the next sync. `write_back` edits `spec.gitops.path` so the Release names what
serves again (backend version and image, frontend version), leaving every other byte alone
(controller.manifests.edit), and pushes exactly one commit whose message says what was rolled back,
why, and the revision, with a trailer `Release-Rollback: <ns>/<name> revision <n>`.

Idempotent, because the operator may be killed at any line and retried:
- the remote is read first; a commit on the branch (the last `SCAN_DEPTH` commits) carrying this
  rollback's trailer means it was already pushed: its SHA is returned and nothing is written;
- a file that already names the live versions gets no commit;
- a push that loses a race (the branch moved since the fetch, or the server refuses the update)
  starts again from the new tip, up to `MAX_ATTEMPTS` times;
- `onRollback: Branch` pushes a new branch `release-rollback/<ns>/<name>/revision-<n>` off the
  branch tip instead (for a pull request); an existing branch of that name means it is done.

Git library: dulwich (pure Python, maintained, used by Poetry and Breezy), not the git CLI, so that
(1) the operator image needs no Debian git and writes no work tree (its root filesystem is
read-only; everything here happens in a MemoryRepo), (2) credentials are handed to the client
in-process, never on a command line or in a credential file another process could read, and (3)
refusals are values (`ref_status`) we act on, not stderr text to parse. Our own Git server for tests
is Debian's `git http-backend`, so client and server here are independent implementations.

SSH (`identity`, optional `known_hosts`) goes through dulwich's subprocess vendor, so it needs an
`ssh` client where the operator runs (the image ships none: HTTPS with a token is the tested path).

Credentials come only from the Secret (username + password/token, or an SSH key as `identity`);
they never reach a log, an exception message, an Event or the status: every error is re-raised as
`GitWriteBackError` with a scrubbed message and no chained cause.

Must not import kopf or the reconciler; the Kubernetes Secret is read by the caller.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from dulwich.client import GitClient, SSHGitClient, TCPGitClient, get_transport_and_path

from controller.tenancy.guard import Resolver, describe, forbidden, guarded_pool_manager, system_resolver
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import MemoryRepo

from controller.api.release import GitOps, GitOpsOnRollback
from controller.manifests import ManifestError, set_values

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
SCAN_DEPTH = 200
TRAILER = "Release-Rollback"
AUTHOR = b"release-controller <release-controller@noreply.invalid>"


class GitWriteBackError(RuntimeError):
    """The write-back could not be done; the message is safe to show (no credentials)."""

    def __init__(self, reason: str, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class GitCredentials:
    """From the Secret named by spec.gitops.secretRef (Flux's key names)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity: str | None = field(default=None, repr=False)  # an SSH private key (PEM/OpenSSH)
    known_hosts: str | None = field(default=None, repr=False)

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str | bytes]) -> GitCredentials:
        """From a Secret's decoded `data` (`username`, `password`, `identity`, `known_hosts`)."""

        def get(key: str) -> str | None:
            value = data.get(key)
            if value is None:
                return None
            return value.decode() if isinstance(value, bytes) else value

        creds = cls(get("username"), get("password"), get("identity"), get("known_hosts"))
        if creds.password is None and creds.identity is None:
            raise GitWriteBackError("GitCredentialsInvalid", "the Git secret has neither `password` nor `identity`",
                                    retryable=False)
        return creds

    def secrets(self) -> list[str]:
        return [s for s in (self.password, self.identity) if s]


@dataclass(frozen=True)
class Rollback:
    """What happened: the Release, the version that was rolled back, and what serves again."""

    namespace: str
    name: str
    revision: int
    failed_backend_version: str
    backend_version: str
    backend_image: str
    frontend_version: str | None = None
    failed_frontend_version: str | None = None
    reason: str = ""
    service_images: tuple[tuple[str, str], ...] = ()  # a tier of several: (service name, its image serving again)

    @property
    def trailer(self) -> str:
        return f"{TRAILER}: {self.namespace}/{self.name} revision {self.revision}"

    @property
    def branch_name(self) -> str:
        return f"release-rollback/{self.namespace}/{self.name}/revision-{self.revision}"

    def message(self, path: str) -> str:
        what = f"backend {self.failed_backend_version} -> {self.backend_version}"
        if self.failed_frontend_version and self.frontend_version and self.failed_frontend_version != self.frontend_version:
            what += f", frontend {self.failed_frontend_version} -> {self.frontend_version}"
        images = ", ".join(f"{n} {i}" for n, i in self.service_images) or self.backend_image
        serving = f"backend {self.backend_version} ({images})"
        if self.frontend_version:
            serving += f", frontend {self.frontend_version}"
        return (
            f"Roll back {self.namespace}/{self.name}: {what}\n\n"
            f"release-controller rolled back revision {self.revision} of Release "
            f"{self.namespace}/{self.name} (backend {self.failed_backend_version}).\n"
            f"Why: {self.reason or 'no reason given'}\n\n"
            f"{path} now names what serves traffic again: {serving}.\n\n"
            f"{self.trailer}\n"
        )


@dataclass(frozen=True)
class WriteBackResult:
    commit: str | None  # the rollback commit (new or found), None when the file needed no change
    ref: str  # the branch it is on
    pushed: bool  # False when it was already there (or nothing to change)
    attempts: int = 1


class GitWriter(Protocol):
    """What the reconciler calls once per transition to RolledBack."""

    def write_back(self, gitops: GitOps, credentials: GitCredentials | None, rollback: Rollback) -> WriteBackResult: ...


# --------------------------------------------------------------------------- scrubbing

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def scrub(text: str, secrets: list[str]) -> str:
    """`text` without the secrets and without any user:password@ in URLs."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
            for line in secret.splitlines():  # a key quoted line by line
                if len(line.strip()) >= 8:
                    text = text.replace(line.strip(), "***")
    return _USERINFO.sub(r"\g<scheme>***@", text)


# --------------------------------------------------------------------------- the effector


class _Moved(Exception):
    """The branch is not where our commit's parent is: start again from the new tip."""


class DulwichGitWriter:
    """`GitWriter` over dulwich; one instance serves every Release."""

    def __init__(self, *, max_attempts: int = MAX_ATTEMPTS, before_push: Callable[[int], None] | None = None) -> None:
        self.max_attempts = max_attempts
        # A hook for tests (a colleague's commit landing between our fetch and our push).
        self._before_push = before_push

    def write_back(self, gitops: GitOps, credentials: GitCredentials | None, rollback: Rollback) -> WriteBackResult:
        if gitops.on_rollback == GitOpsOnRollback.NONE:
            return WriteBackResult(commit=None, ref="", pushed=False)
        secrets = credentials.secrets() if credentials else []
        try:
            with _client(gitops.repository, credentials) as (client, path):
                for attempt in range(1, self.max_attempts + 1):
                    try:
                        result = self._attempt(client, path, gitops, rollback, attempt)
                    except _Moved:
                        log.info("git write-back for %s/%s lost a race (attempt %d); retrying on the new tip",
                                 rollback.namespace, rollback.name, attempt)
                        continue
                    return result
        except GitWriteBackError as exc:
            raise GitWriteBackError(exc.reason, scrub(exc.message, secrets), exc.retryable) from None
        except Exception as exc:  # noqa: BLE001 - anything dulwich raises may quote the URL, a header or the server
            raise GitWriteBackError("GitWriteBackFailed", f"{describe(exc).value} ({type(exc).__name__})") from None
        raise GitWriteBackError("GitPushRace", f"the branch kept moving: gave up after {self.max_attempts} attempts")

    def _attempt(self, client: GitClient, path: str, gitops: GitOps, rollback: Rollback, attempt: int) -> WriteBackResult:
        # dulwich types refs and SHAs as NewTypes of bytes; ours are plain bytes.
        base_ref: Any = f"refs/heads/{gitops.branch}".encode()
        branch_mode = gitops.on_rollback == GitOpsOnRollback.BRANCH
        target_ref: Any = f"refs/heads/{rollback.branch_name}".encode() if branch_mode else base_ref

        repo = MemoryRepo()
        fetched = client.fetch(path, repo, determine_wants=cast(Any, _want({base_ref, target_ref})))
        refs: dict[Any, Any] = dict(fetched.refs)
        tip = refs.get(base_ref)
        if tip is None:
            raise GitWriteBackError("GitBranchNotFound", f"branch {gitops.branch!r} not found in {gitops.repository}",
                                    retryable=False)
        if branch_mode and refs.get(target_ref) is not None:
            return WriteBackResult(refs[target_ref].decode(), rollback.branch_name, False, attempt)

        found = _find_trailer(repo, tip, rollback.trailer)
        if found is not None:
            return WriteBackResult(found, gitops.branch, False, attempt)

        old_text = _read_file(repo, tip, gitops.path)
        values = {"backend.version": rollback.backend_version}
        if rollback.service_images:
            # A tier of several: each service's image, found in the file by its name.
            values.update({f"backend.services.name={n}.image": image for n, image in rollback.service_images})
        else:
            values["backend.image"] = rollback.backend_image
        if rollback.frontend_version:
            values["frontend.version"] = rollback.frontend_version
        try:
            new_text = set_values(old_text, values, name=rollback.name, namespace=rollback.namespace)
        except ManifestError as exc:
            raise GitWriteBackError("GitManifestInvalid", f"{gitops.path}: {exc}", retryable=False) from None
        if new_text == old_text:
            return WriteBackResult(None, gitops.branch, False, attempt)

        commit = _commit(repo, tip, gitops.path, new_text.encode(), rollback.message(gitops.path))
        if self._before_push is not None:
            self._before_push(attempt)

        def update_refs(remote: dict[Any, Any]) -> dict[Any, Any]:
            # The server's refs at push time: refuse to push over a tip we did not build on.
            current = remote.get(target_ref)
            expected = None if branch_mode else tip
            if current != expected:
                raise _Moved()
            return {**remote, target_ref: commit}

        sent = client.send_pack(path.encode() if isinstance(path, str) else path, update_refs,
                                generate_pack_data=cast(Any, repo.generate_pack_data))
        status = (sent.ref_status or {}).get(target_ref)
        if status is not None:
            # e.g. "failed to update ref" or "non-fast-forward": the branch moved under us.
            log.info("git server refused %s: %s", target_ref.decode(), status)
            raise _Moved()
        ref_name = rollback.branch_name if branch_mode else gitops.branch
        log.info("pushed rollback of %s/%s revision %d to %s as %s", rollback.namespace, rollback.name,
                 rollback.revision, ref_name, commit.decode())
        return WriteBackResult(commit.decode(), ref_name, True, attempt)


def _want(refs: set[bytes]) -> Callable[..., list[bytes]]:
    def determine_wants(remote: Mapping[bytes, bytes], depth: int | None = None) -> list[bytes]:
        return [sha for ref, sha in remote.items() if ref in refs and sha]

    return determine_wants


def _find_trailer(repo: MemoryRepo, tip: Any, trailer: str) -> str | None:
    needle = trailer.encode()
    for entry in repo.get_walker(include=[tip], max_entries=SCAN_DEPTH):
        if any(line.strip() == needle for line in entry.commit.message.splitlines()):
            return str(entry.commit.id.decode())
    return None


def _read_file(repo: MemoryRepo, tip: Any, path: str) -> str:
    tree: Any = repo[repo[tip].tree]  # type: ignore[attr-defined]
    try:
        _mode, sha = tree.lookup_path(repo.__getitem__, path.encode())
    except KeyError:
        raise GitWriteBackError("GitFileNotFound", f"{path} is not in the branch", retryable=False) from None
    blob = repo[sha]
    if not isinstance(blob, Blob):
        raise GitWriteBackError("GitFileNotFound", f"{path} is not a file", retryable=False)
    return bytes(blob.data).decode()


def _commit(repo: MemoryRepo, parent: Any, path: str, data: bytes, message: str) -> bytes:
    """A commit on `parent` whose tree differs only in `path` (every other tree object is reused)."""
    store: Any = repo.object_store
    blob = Blob.from_string(data)
    store.add_object(blob)
    parts = path.encode().split(b"/")

    def rebuild(tree_id: Any, depth: int) -> Any:
        tree = store[tree_id]
        assert isinstance(tree, Tree)
        name = parts[depth]
        mode, child = tree[name]
        if depth == len(parts) - 1:
            tree[name] = (mode, blob.id)
        else:
            tree[name] = (mode, rebuild(child, depth + 1))
        store.add_object(tree)
        return bytes(tree.id)

    parent_commit = store[parent]
    assert isinstance(parent_commit, Commit)
    commit = Commit()
    commit.tree = rebuild(parent_commit.tree, 0)
    commit.parents = [parent]
    commit.author = commit.committer = AUTHOR
    now = int(time.time())
    commit.author_time = commit.commit_time = now
    commit.author_timezone = commit.commit_timezone = 0
    commit.encoding = b"UTF-8"
    commit.message = message.encode()
    store.add_object(commit)
    return bytes(commit.id)


@contextmanager
def _client(url: str, credentials: GitCredentials | None) -> Iterator[tuple[GitClient, str]]:
    """A dulwich client for `url` with the credentials; an SSH key lives in a 0600 temp file only
    while the client runs (ssh reads keys from files)."""
    if _USERINFO.match(url):
        raise GitWriteBackError("GitRepositoryInvalid", "put credentials in the Secret, not in spec.gitops.repository",
                                retryable=False)
    if credentials is not None and credentials.identity and not url.startswith(("http://", "https://")):
        with tempfile.TemporaryDirectory(prefix="rc-git-") as tmp:
            key = os.path.join(tmp, "identity")
            with open(key, "w", opener=lambda p, f: os.open(p, f, stat.S_IRUSR | stat.S_IWUSR)) as fh:
                fh.write(credentials.identity if credentials.identity.endswith("\n") else credentials.identity + "\n")
            options = ""
            if credentials.known_hosts:
                hosts = os.path.join(tmp, "known_hosts")
                with open(hosts, "w") as fh:
                    fh.write(credentials.known_hosts)
                options = f" -o UserKnownHostsFile={hosts} -o StrictHostKeyChecking=yes"
            client, path = get_transport_and_path(
                url, key_filename=key, ssh_command=f"ssh -o BatchMode=yes -o IdentitiesOnly=yes{options}", quiet=True
            )
            yield pin(client), path
        return
    username = credentials.username if credentials else None
    password = credentials.password if credentials else None
    # Over http(s), the tenancy guard's connections: never a link-local or metadata address, no proxy.
    extra: dict[str, Any] = {"pool_manager": guarded_pool_manager()} if url.startswith(("http://", "https://")) else {}
    client, path = get_transport_and_path(url, username=username or ("git" if password else None),
                                          password=password, quiet=True, **extra)
    yield pin(client), path


def pin(client: GitClient, resolver: Resolver = system_resolver) -> GitClient:
    """SSH and git:// connect to an address the tenancy guard allows, and to exactly the one checked.

    http(s) goes through the guard's own connections (`guarded_pool_manager`); ssh (a subprocess)
    and git:// (dulwich's own socket) do not, so their host is resolved here, refused when any of
    its addresses is link-local or instance metadata (controller/tenancy/guard.py, whatever a policy
    says), and the client is pointed at the checked address, so a name that resolves differently a
    moment later (DNS rebinding) changes nothing. ssh still checks the host key under the name
    (`HostKeyAlias`). Other clients (http, a local path) are returned as they are."""
    if isinstance(client, SSHGitClient):
        host, port = client.host, client.port or 22
    elif isinstance(client, TCPGitClient):
        host, port = client._host, client._port or 9418  # dulwich keeps them private; no setter exists
    else:
        return client
    try:
        addresses = list(resolver(host, port))
    except OSError:
        raise GitWriteBackError("GitWriteBackFailed", f"the repository's host {host} did not resolve") from None
    if not addresses or any(forbidden(a) for a in addresses):
        raise GitWriteBackError("GitRepositoryInvalid", f"the repository's host {host} resolves to an address the "
                                "operator never contacts (link-local or instance metadata)", retryable=False)
    if isinstance(client, SSHGitClient):
        client.ssh_command = f"{client.ssh_command or 'ssh'} -o HostKeyAlias={host}"
        client.host = addresses[0]
    else:
        client._host = addresses[0]
    return client
