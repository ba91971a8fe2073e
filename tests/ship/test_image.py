"""The operator run from its image: the shipped Dockerfile built by `make image` (Debian's buildah on
a base of Debian packages, controller/testing/image.py), started the way a container runtime would
start it, against the local environment.

`buildah run --isolation chroot --network host` starts the image's ENTRYPOINT with the test's
arguments (the CMD's liveness and metrics flags on free ports, one namespace). The only thing lent
from the host is a read-only copy of the admin kubeconfig, readable by the image's user; the AWS
and Prometheus endpoints are the local ones, passed as environment variables as a Deployment would.

It proves what the static checks of test_dockerfile.py cannot: the wheel installs and imports in
the image, the process runs as uid 10001 (the image's USER, no `--user` given), `/healthz` and
`/metrics` answer, a Fast Release goes to Succeeded, and the process wrote nothing outside /tmp
(every file of the container's root is compared before and after, /tmp excepted).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from controller.aws.clients import AwsClients
from controller.testing.aws_world import WorldIds
from controller.testing.env import LocalEnvironment
from controller.testing.image import IMAGE, ensure_image
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from controller.testing.tenancy import policy_for
from tests.e2e.conftest import aws, crd_installed, env_vars, kubectl, own_namespace, releases, world  # noqa: F401
from tests.e2e.helpers import Kubectl, Releases, assert_serving_only, wait_converged

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

KUBECONFIG_IN_IMAGE = "/etc/release-controller/kubeconfig"
IMAGE_UID = 10001
# Not the image's files: the process's own views, and where buildah mounts the host's name files.
NOT_THE_IMAGE = ("tmp", "proc", "sys", "dev", "run")


def _buildah(*args: str, timeout: float = 120) -> str:
    out = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, f"buildah {' '.join(args)}:\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def image() -> str:
    """`make image`'s image (the same function; cached layers make this seconds when it is built)."""
    built = ensure_image()
    print(f"\n{built.ref}: {built.size}, ready in {built.seconds:.0f}s ({'; '.join(built.log)})")
    return built.ref


@dataclass
class Container:
    name: str
    mount: Path
    entrypoint: list[str]
    user: str


@pytest.fixture()
def container(image: str) -> Iterator[Container]:
    name = _buildah("from", "--pull-never", image).strip()
    try:
        config = json.loads(_buildah("inspect", "--type", "container", name))["OCIv1"]["config"]
        mount = Path(_buildah("mount", name).strip())
        yield Container(name, mount, config["Entrypoint"], config.get("User", ""))
    finally:
        subprocess.run(["buildah", "rm", name], capture_output=True, timeout=60, check=False)


@dataclass
class ImageOperator(OperatorProcess):
    """The operator as the container runtime starts it: the image's ENTRYPOINT plus arguments."""

    container: Container | None = None
    volumes: list[str] = field(default_factory=list)

    def command(self) -> list[str]:
        assert self.container is not None
        scope = [arg for ns in self.namespaces for arg in ("--namespace", ns)]
        env = [f"--env={key}={value}" for key, value in self.env.items()]
        return [
            "buildah", "run", "--isolation", "chroot", "--network", "host",
            *(f"--volume={v}" for v in self.volumes), *env, self.container.name, "--",
            *self.container.entrypoint, *scope, "--resync", "3",
            "--liveness-port", str(self.liveness_port), "--metrics-port", str(self.metrics_port),
            "--log-format", "json",
        ]


def files_of(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path of the container's root outside NOT_THE_IMAGE: (mode, size, mtime in ns)."""
    found: dict[str, tuple[int, int, int]] = {}
    for top in root.iterdir():
        if top.name in NOT_THE_IMAGE:
            continue
        paths = [top] if not top.is_dir() or top.is_symlink() else [top, *top.rglob("*")]
        for path in paths:
            st = path.lstat()
            found[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def uid_of_process_listening_on(port: int) -> int:
    """The real uid of the process with `--liveness-port <port>` in its command line (the chroot
    shares the host's PID namespace, so /proc shows it)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            status = (proc / "status").read_text()
        except OSError:
            continue
        if argv[0] != b"buildah" and b"--liveness-port" in argv and argv[argv.index(b"--liveness-port") + 1] == str(port).encode():
            return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    raise AssertionError(f"no process listens with --liveness-port {port}")


def test_the_operator_runs_from_its_image_and_rolls_a_fast_release(
    container: Container, local_env: LocalEnvironment, crd_installed: None, own_namespace: str,  # noqa: F811
    releases: Releases, world: WorldIds, aws: AwsClients, tmp_path: Path, kubectl: Kubectl,  # noqa: F811
) -> None:
    assert container.user.split(":")[0] == str(IMAGE_UID), f"the image's USER is {container.user!r}"
    assert shutil.which("buildah"), "make image installs buildah"

    # The admin kubeconfig, readable by the image's user only, mounted read-only.
    lent = tmp_path / "lent"
    lent.mkdir()
    kubeconfig = lent / "kubeconfig"
    shutil.copyfile(local_env.env_vars()["KUBECONFIG"], kubeconfig)
    os.chown(kubeconfig, IMAGE_UID, IMAGE_UID)
    kubeconfig.chmod(0o400)
    env = {**local_env.env_vars(), "KUBECONFIG": KUBECONFIG_IN_IMAGE}

    # The mount points buildah itself makes are not the operator's writes: a first run that does
    # nothing makes them, and the comparison starts after it.
    volumes = [f"{kubeconfig}:{KUBECONFIG_IN_IMAGE}:ro"]
    _buildah("run", "--isolation", "chroot", *(f"--volume={v}" for v in volumes), container.name, "--", "true")
    before = files_of(container.mount)
    assert any(p.startswith("opt/venv/bin/") for p in before), "the container's root is not where it was looked for"

    operator = ImageOperator(env, namespaces=(own_namespace,), log_path=tmp_path / "operator.log",
                             container=container, volumes=volumes)
    operator.start(timeout=180)
    try:
        assert uid_of_process_listening_on(operator.liveness_port) == IMAGE_UID
        assert operator.healthy()
        assert "release_controller_" in operator.metrics()

        # The image runs `--tenancy strict` (the default): an admin grants the namespace its world
        # first, as docs/tenancy.md says.
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(policy_for(world, f"image-{own_namespace}", [own_namespace])))
        releases.apply(release_for(world, name="app", namespace=own_namespace, version="2.0.0",
                                   strategy={"type": "Fast"}))
        status = releases.wait_phase(own_namespace, "app", "Succeeded", 180)
        assert status["backend"]["stableVersion"] == "2.0.0"
        wait_converged(releases, aws, world, own_namespace, "app", "2.0.0", generation=1, timeout=120)
        assert_serving_only(aws, world, "2.0.0")
        metrics = operator.metrics()
        assert 'release_controller_aws_calls_total{operation="ecs:CreateTaskSet"}' in metrics, metrics[-2000:]
    finally:
        operator.stop()
    lines = [line for line in (tmp_path / "operator.log").read_text().splitlines() if line.startswith("{")]
    assert any("level" in json.loads(line) for line in lines), "the image's operator logged no JSON lines"

    after = files_of(container.mount)
    changed = sorted(p for p in after.keys() | before.keys() if after.get(p) != before.get(p))
    assert changed == [], f"the operator wrote outside /tmp: {changed[:20]}"
