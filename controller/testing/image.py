"""The operator's image, built here without a Docker daemon or a container registry (`make image`).

No registry is reachable from this machine or CI, so `python:3.11-slim-bookworm` cannot be pulled.
The shipped Dockerfile takes its base as a build argument (`BASE`), and this module builds it from
a base made of Debian's own packages instead:

1. Debian's `buildah` and `debootstrap`, installed with apt-get when missing.
2. The base: `debootstrap --variant=minbase bookworm` with python3 (3.11, the version the default
   base ships), pip and venv, imported into buildah's storage as `localhost/release-controller-base`
   tagged with a hash of its recipe. Built once per recipe; a second run finds it and skips it.
3. `buildah bud --isolation chroot --layers --build-arg BASE=<that base>` on the Dockerfile as it
   ships, tagged `localhost/release-controller:<version in pyproject.toml>` (IMAGE). The layer cache
   makes a rebuild of an unchanged tree take seconds.

`python -m controller.testing.image` builds what is missing and prints the reference, the image
size and the time each step took. `--save PATH` also writes the image as an OCI archive.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from controller.testing.binaries import cache_root

ROOT = Path(__file__).resolve().parents[2]

SUITE = "bookworm"  # Debian 12: python3 is 3.11, as in the python:3.11-slim-bookworm default base
MIRROR = "http://deb.debian.org/debian"
# What the Dockerfile's stages call on their base: `pip wheel`, `python -m venv`, and at run time
# python3 with TLS roots (boto3 and the Kubernetes client verify certificates).
PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BASE_REPOSITORY = "localhost/release-controller-base"
REPOSITORY = "localhost/release-controller"


class ImageBuildError(RuntimeError):
    pass


def version() -> str:
    """The one version of the project: pyproject.toml's (chart, image tag and CLI follow it)."""
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


IMAGE = f"{REPOSITORY}:{version()}"


def base_ref() -> str:
    recipe = json.dumps({"suite": SUITE, "mirror": MIRROR, "packages": PACKAGES, "revision": 1}, sort_keys=True)
    return f"{BASE_REPOSITORY}:{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def _run(*cmd: str, capture: bool = False, timeout: float = 1800) -> str:
    out = subprocess.run(list(cmd), capture_output=capture, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        detail = (out.stderr or "")[-3000:] if capture else ""
        raise ImageBuildError(f"{' '.join(cmd[:4])} ... failed ({out.returncode})\n{detail}")
    return out.stdout if capture else ""


def ensure_tools() -> None:
    """buildah and debootstrap from Debian, when this machine has neither (root: apt-get as is)."""
    missing = [pkg for pkg, exe in (("buildah", "buildah"), ("debootstrap", "debootstrap"))
               if not shutil.which(exe) and not Path("/usr/sbin", exe).exists()]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    _run(*sudo, "apt-get", "update", "-qq")
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive"]
    _run(*sudo, *env_cmd, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing)


def image_exists(ref: str) -> bool:
    return subprocess.run(["buildah", "inspect", "--type", "image", ref],
                          capture_output=True, timeout=60, check=False).returncode == 0


def ensure_base(log: list[str]) -> str:
    """The Debian base image in buildah's storage, debootstrapped when its recipe is new."""
    ref = base_ref()
    if image_exists(ref):
        log.append(f"base {ref}: cached")
        return ref
    started = time.monotonic()
    work = cache_root() / "image"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        rootfs = Path(tmp) / "rootfs"
        debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
        _run(debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), MIRROR,
             capture=True)
        # What an image does not need: the package lists and downloads, documentation.
        for sub in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man", "usr/share/info"):
            target = rootfs / sub
            if target.exists():
                shutil.rmtree(target)
                target.mkdir()
        container = _run("buildah", "from", "scratch", capture=True).strip()
        try:
            mount = _run("buildah", "mount", container, capture=True).strip()
            # tar keeps owners, modes, links and device nodes as debootstrap made them.
            pack = subprocess.Popen(["tar", "-C", str(rootfs), "-cf", "-", "."], stdout=subprocess.PIPE)
            unpack = subprocess.run(["tar", "-C", mount, "-xf", "-"], stdin=pack.stdout, check=False)
            if pack.wait() != 0 or unpack.returncode != 0:
                raise ImageBuildError("copying the debootstrapped tree into the image failed")
            _run("buildah", "umount", container, capture=True)
            _run("buildah", "config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 "--env", "LANG=C.UTF-8", "--cmd", "python3",
                 "--label", f"org.opencontainers.image.description=Debian {SUITE} minbase + {' '.join(PACKAGES)}",
                 container, capture=True)
            _run("buildah", "commit", "--quiet", "--rm", container, ref, capture=True)
        except BaseException:
            subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
            raise
    log.append(f"base {ref}: debootstrapped and imported in {time.monotonic() - started:.0f}s")
    return ref


def build(ref: str = IMAGE, *, log: list[str]) -> str:
    """`buildah bud` the shipped Dockerfile on the local base; the layer cache makes reruns fast."""
    base = ensure_base(log)
    started = time.monotonic()
    # The builder's pip reaches PyPI through this machine's TLS trust (which may hold a proxy's CA):
    # the host's bundle is lent to the RUN steps as a read-only mount, never written into a layer.
    trust = [f"--volume={HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"] if Path(HOST_CA_BUNDLE).exists() else []
    _run("buildah", "bud", "--isolation", "chroot", "--layers", "--quiet", *trust,
         "--build-arg", f"BASE={base}", "-f", str(ROOT / "Dockerfile"), "-t", ref, str(ROOT), capture=True)
    log.append(f"image {ref}: built in {time.monotonic() - started:.0f}s")
    return ref


def size(ref: str) -> str:
    """The image's size as buildah reports it (e.g. "316 MB": uncompressed, every layer)."""
    rows = json.loads(_run("buildah", "images", "--json", ref, capture=True))
    return str(rows[0]["size"]) if rows else "?"


@dataclass(frozen=True)
class Built:
    ref: str
    size: str
    seconds: float
    log: tuple[str, ...]


def ensure_image(ref: str = IMAGE) -> Built:
    """Install the tools, make the base when new, build the image (cached layers) and report it."""
    started = time.monotonic()
    ensure_tools()
    log: list[str] = []
    build(ref, log=log)
    return Built(ref, size(ref), time.monotonic() - started, tuple(log))


def save(ref: str, path: Path) -> None:
    """The image as an OCI archive (what `make dist` ships; `podman load` / `skopeo` read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    _run("buildah", "push", "--quiet", ref, f"oci-archive:{path}:{ref.rsplit('/', 1)[-1]}", capture=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", type=Path, help="also write the image as an OCI archive here")
    args = parser.parse_args(argv)
    try:
        built = ensure_image()
        if args.save:
            save(built.ref, args.save)
    except ImageBuildError as exc:
        print(f"make image: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    for line in built.log:
        print(line)
    print(f"image: {built.ref}  size {built.size}  ready in {built.seconds:.0f}s")
    if args.save:
        print(f"saved: {args.save} ({args.save.stat().st_size / 2**20:.0f} MiB)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
