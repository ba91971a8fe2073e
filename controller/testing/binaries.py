"""etcd, kube-apiserver and kubectl for the local environment, built from Go modules and cached.

Nothing is downloaded prebuilt: each binary is compiled by the `go` command from its Go module,
fetched through the module proxy, with `CGO_ENABLED=0` so the result is static. Kubernetes cannot
be `go get`-ed directly (its go.mod points every `k8s.io/*` staging module at `./staging/...`), so a
throwaway wrapper module requires `k8s.io/kubernetes` and replaces each staging module by its
published `v0.x.y` release. etcd's `main` sits at the root of `go.etcd.io/etcd/server/v3`.

Binaries are cached by version under `~/.cache/release-controller/bin/<name>-<version>/<name>`
(or `$RELEASE_CONTROLLER_CACHE/bin/...`), outside the repository, so only the first build on a
machine is slow (kube-apiserver: about 4 minutes on 2 cores). A file lock keeps two processes from
building the same binary at once; a finished build is renamed into place atomically, so a reader
never sees half a binary.

This module must not start anything: it only builds and finds programs. `python -m
controller.testing.binaries` builds what is missing and prints the paths and timings.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.5"

# The wrapper's `go` directive; the toolchain on the machine must be at least this new.
_WRAPPER_GO = "1.24"

# build(name, version, work_dir, log) leaves the binary at work_dir/out/name.
_Builder = Callable[[str, str, Path, TextIO], None]


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kubectl: Path


class BuildError(RuntimeError):
    """A `go` step failed; the message carries the command and the end of its output."""


def cache_root(cache_dir: Path | None = None) -> Path:
    """Where built binaries live: `cache_dir`, else $RELEASE_CONTROLLER_CACHE, else ~/.cache/..."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("RELEASE_CONTROLLER_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "release-controller"


def cached_path(name: str, version: str, cache_dir: Path | None = None) -> Path:
    return cache_root(cache_dir) / "bin" / f"{name}-{version}" / name


def ensure_binaries(cache_dir: Path | None = None, *, log: TextIO | None = None) -> Binaries:
    """Return paths to etcd, kube-apiserver and kubectl, building the missing ones first.

    kubectl is the one on PATH when there is one (any recent client talks to this server);
    otherwise it is built from the same Kubernetes release as the API server.
    """
    out = log if log is not None else sys.stderr
    etcd = _ensure("etcd", ETCD_VERSION, _build_etcd, cache_dir, out)
    apiserver = _ensure("kube-apiserver", KUBERNETES_VERSION, _build_kubernetes_cmd, cache_dir, out)
    on_path = shutil.which("kubectl")
    kubectl = (
        Path(on_path)
        if on_path
        else _ensure("kubectl", KUBERNETES_VERSION, _build_kubernetes_cmd, cache_dir, out)
    )
    return Binaries(etcd=etcd, kube_apiserver=apiserver, kubectl=kubectl)


# --- building ---------------------------------------------------------------------------------


def _ensure(name: str, version: str, build: _Builder, cache_dir: Path | None, log: TextIO) -> Path:
    target = cached_path(name, version, cache_dir)
    if _is_executable(target):
        return target
    bin_dir = target.parent.parent
    bin_dir.mkdir(parents=True, exist_ok=True)
    with _locked(bin_dir / f".{name}-{version}.lock", name, log):
        # Another process may have finished the build while we waited for the lock.
        if _is_executable(target):
            return target
        # Build inside the cache directory so the final rename stays on one filesystem.
        work = Path(tempfile.mkdtemp(prefix=f".build-{name}-{version}-", dir=bin_dir))
        try:
            started = time.monotonic()
            print(f"[binaries] building {name} {version} with go (first time on this machine)",
                  file=log, flush=True)
            build(name, version, work, log)
            staged = work / "out" / name
            if not _is_executable(staged):
                raise BuildError(f"go build finished but {staged} is missing")
            # A version directory without a usable binary (deleted by hand) would block the rename.
            shutil.rmtree(target.parent, ignore_errors=True)
            # Renaming the whole directory is atomic: readers see no binary or a complete one.
            os.rename(work / "out", target.parent)
            print(f"[binaries] built {name} {version} in {time.monotonic() - started:.0f}s "
                  f"-> {target}", file=log, flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _build_etcd(name: str, version: str, work: Path, log: TextIO) -> None:
    module = "go.etcd.io/etcd/server/v3"
    (work / "go.mod").write_text(f"module wrapper\n\ngo {_WRAPPER_GO}\n")
    _go(["get", f"{module}@{version}"], work, log)
    _go(["build", "-trimpath", "-o", str(work / "out" / name), module], work, log)


def _build_kubernetes_cmd(name: str, version: str, work: Path, log: TextIO) -> None:
    """Build k8s.io/kubernetes/cmd/<name> (kube-apiserver or kubectl) through a wrapper module."""
    gomod, released = _kubernetes_wrapper_gomod(version, work, log)
    (work / "go.mod").write_text(gomod)
    package = f"k8s.io/kubernetes/cmd/{name}"
    _go(["get", f"{package}@{version}"], work, log)
    ldflags = " ".join(_kubernetes_version_ldflags(version, released))
    _go(["build", "-trimpath", "-ldflags", ldflags, "-o", str(work / "out" / name), package], work, log)


def _kubernetes_version_ldflags(version: str, released: str) -> list[str]:
    """Stamp the release into the binary, as Kubernetes' own build does from git.

    Without it the server reports `v0.0.0-master+$Format:%H$`, which kubectl refuses to parse.
    """
    major, minor, _ = version.removeprefix("v").split(".", 2)
    values = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": released,
        "gitCommit": "",
    }
    return [
        f"-X {package}.{var}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for var, value in values.items()
    ]


def _kubernetes_wrapper_gomod(version: str, work: Path, log: TextIO) -> tuple[str, str]:
    """A go.mod requiring k8s.io/kubernetes with one `replace` per module it keeps in ./staging/,
    and the release's publication time (from the module proxy) to stamp as the build date.

    The list comes from Kubernetes' own go.mod at that version, so a new release that adds a
    staging module needs no change here.
    """
    scratch = work / "download"
    scratch.mkdir()
    (scratch / "go.mod").write_text(f"module download\n\ngo {_WRAPPER_GO}\n")
    info = json.loads(_go(["mod", "download", "-json", f"k8s.io/kubernetes@{version}"], scratch, log))
    upstream = Path(info["GoMod"]).read_text()
    released = str(json.loads(Path(info["Info"]).read_text()).get("Time", "1970-01-01T00:00:00Z"))
    staging = staging_modules(upstream)
    if not staging:
        raise BuildError(f"no ./staging/ replace lines in k8s.io/kubernetes@{version} go.mod")
    # Kubernetes v1.X.Y publishes its staging modules as v0.X.Y.
    staging_version = "v0." + version.removeprefix("v").split(".", 1)[1]
    replaces = "".join(f"\t{mod} => {mod} {staging_version}\n" for mod in staging)
    gomod = (
        f"module wrapper\n\ngo {_WRAPPER_GO}\n\nrequire k8s.io/kubernetes {version}\n\n"
        f"replace (\n{replaces})\n"
    )
    return gomod, released


_STAGING_LINE = re.compile(r"^\s*(?:replace\s+)?(\S+)\s*=>\s*\./staging/", re.MULTILINE)


def staging_modules(gomod: str) -> list[str]:
    """Module paths that a Kubernetes go.mod replaces with `./staging/...` directories.

    >>> staging_modules("replace (\\n\\tk8s.io/api => ./staging/src/k8s.io/api\\n)\\n")
    ['k8s.io/api']
    """
    return sorted(set(_STAGING_LINE.findall(gomod)))


def _go(args: list[str], cwd: Path, log: TextIO) -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "the `go` command is not on PATH; install Go >= 1.24 (https://go.dev/dl or your "
            "distribution's golang package) to build etcd and kube-apiserver"
        )
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=mod",
        # Never fetch a different toolchain: only the module proxy is reachable.
        "GOTOOLCHAIN": "local",
    }
    shown = " ".join(arg if len(arg) <= 60 else arg[:40] + "..." for arg in args)
    print(f"[binaries]   go {shown}", file=log, flush=True)
    started = time.monotonic()
    proc = subprocess.run(
        [go, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    with open(cwd / "go.log", "a") as saved:
        saved.write(f"$ go {' '.join(args)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise BuildError(f"`go {' '.join(args)}` failed ({proc.returncode}) in {cwd}:\n{tail}")
    print(f"[binaries]   ... {time.monotonic() - started:.0f}s", file=log, flush=True)
    return proc.stdout


# --- other Go programs: tools built from their modules, and small programs of our own ----------


def ensure_go_tool(
    name: str,
    package: str,
    version: str,
    *,
    module: str | None = None,
    inherit_replaces: bool = False,
    ldflags: str = "",
    cache_dir: Path | None = None,
    log: TextIO | None = None,
) -> Path:
    """Build the main `package` of `module@version` (module defaults to the package) and cache it.

    With `inherit_replaces`, the wrapper copies the module's own non-local `replace` lines, which
    `go build` ignores in a dependency's go.mod (Flux's controllers, Helm and kubernetes have them).
    """
    out = log if log is not None else sys.stderr
    mod = module or package

    def build(name: str, version: str, work: Path, log: TextIO) -> None:
        replaces = ""
        if inherit_replaces:
            scratch = work / "download"
            scratch.mkdir()
            (scratch / "go.mod").write_text(f"module download\n\ngo {_WRAPPER_GO}\n")
            info = json.loads(_go(["mod", "download", "-json", f"{mod}@{version}"], scratch, log))
            replaces = "".join(f"replace {line}\n" for line in module_replaces(Path(info["GoMod"]).read_text()))
        (work / "go.mod").write_text(
            f"module wrapper\n\ngo {_WRAPPER_GO}\n\nrequire {mod} {version}\n\n{replaces}"
        )
        # `go get` the module, not the package: this proxy answers 403 (not 404) for a package
        # path probed as a module, and `go` gives up on a 403.
        _go(["get", f"{mod}@{version}"], work, log)
        args = ["build", "-trimpath"] + (["-ldflags", ldflags] if ldflags else [])
        _go([*args, "-o", str(work / "out" / name), package], work, log)

    return _ensure(name, version, build, cache_dir, out)


def ensure_go_source(
    name: str, source: Path, *, cache_dir: Path | None = None, log: TextIO | None = None
) -> Path:
    """Build a Go program kept in this repository (a directory with go.mod and *.go files).

    The cache key is a hash of the directory's files, so an edit rebuilds and nothing else does;
    `go mod tidy` resolves its requirements through the module proxy on the first build.
    """

    out = log if log is not None else sys.stderr
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    version = "src-" + digest.hexdigest()[:16]

    def build(name: str, version: str, work: Path, log: TextIO) -> None:
        shutil.copytree(source, work / "src")
        _go(["mod", "tidy"], work / "src", log)
        _go(["build", "-trimpath", "-o", str(work / "out" / name), "."], work / "src", log)

    return _ensure(name, version, build, cache_dir, out)


_REPLACE_BLOCK = re.compile(r"^replace\s*\((.*?)^\)", re.MULTILINE | re.DOTALL)
_REPLACE_ONE = re.compile(r"^replace\s+([^(\s].*)$", re.MULTILINE)


def module_replaces(gomod: str) -> list[str]:
    """The `replace` directives of a go.mod that point at other modules (not at local paths).

    >>> module_replaces("replace (\\n\\ta v1 => b v2\\n\\tc => ./c\\n)\\nreplace d => e v3\\n")
    ['a v1 => b v2', 'd => e v3']
    """
    lines = [line for block in _REPLACE_BLOCK.findall(gomod) for line in block.splitlines()]
    lines += _REPLACE_ONE.findall(gomod)
    kept = []
    for line in (raw.split("//", 1)[0].strip() for raw in lines):
        if "=>" in line and not line.split("=>", 1)[1].strip().startswith((".", "/")):
            kept.append(line)
    return kept


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@contextmanager
def _locked(path: Path, name: str, log: TextIO) -> Iterator[None]:
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"[binaries] another process is building {name}; waiting", file=log, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main() -> None:
    started = time.monotonic()
    binaries = ensure_binaries()
    for field, path in vars(binaries).items():
        print(f"{field}: {path}")
    print(f"ready in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
