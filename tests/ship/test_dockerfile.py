"""The Dockerfile, read statically (no Docker engine here): pinned base, wheel install, numeric
non-root user, read-only-root friendly, `release-controller run` with flags the CLI accepts."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass

import typer

from tests.ship.conftest import ROOT

# An exact version, e.g. python:3.11.13-slim-bookworm, or a digest; never `latest`, never 3.11.
PINNED = re.compile(r"^[\w.\-/]+:\d+\.\d+\.\d+(-[\w.\-]+)?(@sha256:[0-9a-f]{64})?$|^[\w.\-/]+@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Instruction:
    command: str
    value: str


@dataclass(frozen=True)
class Stage:
    image: str
    alias: str | None
    instructions: tuple[Instruction, ...]

    def all(self, command: str) -> list[str]:
        return [i.value for i in self.instructions if i.command == command]

    def last(self, command: str) -> str | None:
        found = self.all(command)
        return found[-1] if found else None


def parse(text: str) -> list[Stage]:
    """Dockerfile -> stages (continuation lines joined, comments dropped, `${ARG}` in a FROM line
    replaced by the default of the ARG declared before the first FROM)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    current: list[Instruction] = []
    image, alias = "", None
    args: dict[str, str] = {}
    for line in logical:
        command, _, value = line.partition(" ")
        command = command.upper()
        if command == "ARG" and not image:
            name, _, default = value.strip().partition("=")
            args[name] = default
            continue
        if command == "FROM":
            value = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], value)
            if image:
                stages.append(Stage(image, alias, tuple(current)))
            words = value.split()
            words = [w for w in words if not w.startswith("--platform")]
            image = words[0]
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            current = []
        else:
            current.append(Instruction(command, value.strip()))
    stages.append(Stage(image, alias, tuple(current)))
    return stages


STAGES = parse((ROOT / "Dockerfile").read_text())
FINAL = STAGES[-1]


def test_every_base_image_is_pinned_to_an_exact_version() -> None:
    for stage in STAGES:
        if stage.image in {s.alias for s in STAGES}:
            continue
        assert PINNED.match(stage.image), f"base image {stage.image!r} is not pinned to an exact version"
        assert "slim" in stage.image, f"{stage.image!r}: use a slim base"


def test_the_base_is_a_build_argument_shared_by_both_stages() -> None:
    """`--build-arg BASE=...` swaps the base of every stage (the tests build from a Debian base)."""
    text = (ROOT / "Dockerfile").read_text()
    froms = [line.split()[1] for line in text.splitlines() if line.upper().startswith("FROM ")]
    assert froms and all(f == "${BASE}" for f in froms if f not in {s.alias for s in STAGES}), froms


def test_builder_makes_a_wheel_and_the_final_stage_copies_only_the_install() -> None:
    assert len(STAGES) >= 2, "the Dockerfile must be multi-stage"
    builder = STAGES[0]
    runs = " && ".join(builder.all("RUN"))
    assert "pip wheel" in runs and ".whl" in runs, "the builder must build the package's wheel and install it"
    assert not FINAL.all("RUN"), "the final stage runs nothing: it only copies the built venv"
    copies = FINAL.all("COPY")
    assert copies and all(c.startswith(f"--from={builder.alias}") for c in copies), copies


def test_runs_as_a_numeric_non_root_user() -> None:
    user = FINAL.last("USER")
    assert user, "the final stage sets no USER"
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {user!r}: use a numeric non-root uid (runAsNonRoot can only verify numbers)"
    assert not gid or (gid.isdigit() and int(gid) != 0), f"USER {user!r}: use a numeric non-root gid"


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in stage.all("ENV"):
        for word in shlex.split(value):
            key, _, val = word.partition("=")
            env[key] = val
    return env


def test_writes_nothing_outside_tmp() -> None:
    env = _env(FINAL)
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1", "Python would try to write .pyc files into the read-only root"
    assert env.get("HOME", "").startswith("/tmp"), "HOME must be writable under a read-only root filesystem"


def test_entrypoint_is_the_console_script_in_exec_form() -> None:
    entrypoint = json.loads(FINAL.last("ENTRYPOINT") or "null")
    assert entrypoint == ["release-controller", "run"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "release-controller" in scripts, "the entrypoint names a console script pyproject.toml does not declare"


def test_health_and_metrics_ports_are_exposed_and_match_the_default_command() -> None:
    exposed = {int(p.split("/")[0]) for value in FINAL.all("EXPOSE") for p in value.split()}
    assert exposed == {8080, 9090}
    cmd = json.loads(FINAL.last("CMD") or "[]")
    assert cmd[cmd.index("--liveness-port") + 1] == "8080"
    assert cmd[cmd.index("--metrics-port") + 1] == "9090"


def test_the_default_command_parses_with_the_real_cli() -> None:
    from controller.cli import app

    run = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    cmd = json.loads(FINAL.last("CMD") or "[]")
    ctx = run.make_context("run", list(cmd))
    assert ctx.params["liveness_port"] == 8080 and ctx.params["metrics_port"] == 9090
