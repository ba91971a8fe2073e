"""What a release publishes, made locally (`make dist`), and the one version they all carry.

pyproject.toml's `version` is the only place a version is written by hand. `sync_versions` copies it
into the places that cannot read it (`make chart` runs it): the chart's `version` and `appVersion`,
the image tag of manifests/base, and the version docs/install.md installs. The image tag is the same
version (controller/testing/image.py), `release-controller --version` reads it from the installed
package. tests/ship/test_release.py fails when any of them disagrees.

`make dist` writes into dist/ what .github/workflows/release.yml publishes on a tag:

- `release-controller-<v>.oci.tar`: the image as an OCI archive (`make image`'s build);
- `release-controller-<v>.tgz`: the chart (`helm package`);
- `install.yaml`: the CRDs, then the development overlay (every namespace, one replica);
- `release-controller-<v>.cdx.json`: a CycloneDX SBOM of the Python packages installed in the
  image (cyclonedx-py over `pip list` run inside it);
- `SHA256SUMS` of the four.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from controller.testing.image import ROOT, ensure_image, save, version


class DistError(RuntimeError):
    pass


def _rewrite(path: Path, pattern: str, replacement: str) -> None:
    text = path.read_text()
    new, count = re.subn(pattern, replacement, text, flags=re.M)
    if count == 0:
        raise DistError(f"{path.relative_to(ROOT)}: nothing matches {pattern!r}")
    if new != text:
        path.write_text(new)


def sync_versions(root: Path = ROOT) -> str:
    """Write pyproject's version wherever it must be spelled out; return it."""
    v = version()
    chart = root / "charts" / "release-controller" / "Chart.yaml"
    _rewrite(chart, r"^version: .*$", f"version: {v}")
    _rewrite(chart, r"^appVersion: .*$", f'appVersion: "{v}"')
    _rewrite(root / "manifests" / "base" / "kustomization.yaml", r"^(    newTag: ).*$", rf"\g<1>{v}")
    install = root / "docs" / "install.md"
    _rewrite(install, r"(release-controller --version )\S+", rf"\g<1>{v}")
    _rewrite(install, r"\?ref=v[\w.+-]+", f"?ref=v{v}")
    return v


def _run(*cmd: str, timeout: float = 600) -> str:
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        raise DistError(f"{' '.join(cmd[:3])} ... failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout


def install_yaml() -> str:
    """The CRDs first, then the development overlay: one file for `kubectl apply -f`, as Argo
    Rollouts and Flagger publish theirs (the CRDs lead, so a single apply can create the rest)."""
    parts = [_run("kubectl", "kustomize", str(ROOT / "manifests" / "crds")),
             _run("kubectl", "kustomize", str(ROOT / "manifests" / "overlays" / "development"))]
    return "---\n".join(part if part.endswith("\n") else part + "\n" for part in parts)


def sbom(ref: str, out: Path) -> None:
    """CycloneDX JSON of the Python packages installed in the image's venv."""
    container = _run("buildah", "from", "--pull-never", ref).strip()
    try:
        frozen = _run("buildah", "run", "--isolation", "chroot", container, "--",
                      "/opt/venv/bin/python", "-m", "pip", "list", "--format=freeze", "--exclude-editable")
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, timeout=60, check=False)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
        requirements.write(frozen)
        requirements.flush()
        cyclonedx = Path(sys.executable).parent / "cyclonedx-py"
        _run(str(cyclonedx), "requirements", requirements.name, "--of", "JSON", "--output-reproducible",
             "-o", str(out))


def dist(out: Path, helm: Path) -> list[Path]:
    """Every artifact of a release into `out`; returns their paths."""
    v = sync_versions()
    out.mkdir(parents=True, exist_ok=True)
    built = ensure_image()
    archive = out / f"release-controller-{v}.oci.tar"
    save(built.ref, archive)
    _run(str(helm), "package", str(ROOT / "charts" / "release-controller"), "--version", v, "--app-version", v,
         "--destination", str(out))
    chart = out / f"release-controller-{v}.tgz"
    (out / "install.yaml").write_text(install_yaml())
    bom = out / f"release-controller-{v}.cdx.json"
    sbom(built.ref, bom)
    artifacts = [archive, chart, out / "install.yaml", bom]
    sums = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in artifacts)
    (out / "SHA256SUMS").write_text(sums)
    return [*artifacts, out / "SHA256SUMS"]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["sync"]:
        print(f"version {sync_versions()} written to the chart, manifests/base and docs/install.md")
        return
    from controller.testing.helm import ensure_helm

    started = time.monotonic()
    out = Path(args[0]) if args else ROOT / "dist"
    try:
        paths = dist(out, ensure_helm())
    except DistError as exc:
        print(f"make dist: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    for path in paths:
        print(f"{path}  {path.stat().st_size / 2**20:.1f} MiB")
    print(f"ready in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
