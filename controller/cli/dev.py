"""`dev up`, `dev down` and `dev world`: the local environment (real kube-apiserver, moto, Prometheus)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import console

def dev_up(directory: Annotated[Path, typer.Option("--dir", help="Where state, logs and env.sh go.")]) -> None:
    """Start etcd, kube-apiserver, moto and Prometheus in the background; install the CRD."""
    from controller.testing.env import LocalEnvironment

    env = LocalEnvironment(directory)
    env.up()
    console.print(f"local environment up; run:  source {directory / 'env.sh'}")


def dev_down(directory: Annotated[Path, typer.Option("--dir", help="The directory given to `dev up`.")]) -> None:
    """Stop everything `dev up` started in DIR."""
    from controller.testing.env import LocalEnvironment

    LocalEnvironment(directory).down()
    console.print("local environment down")


def dev_world(
    name: str,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the printed Release.")] = "default",
) -> None:
    """Seed an ECS service, ALB and CloudFront running NAME 1.0.0 in the local moto; print a Release for it."""
    from controller.testing.first_release import seed_and_manifest

    sys.stdout.write(seed_and_manifest(name, namespace))
