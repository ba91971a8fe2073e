"""`release-controller` and `kubectl release`: run the operator, inspect and steer Releases.

This module only registers the verbs; each group lives in its own module:

- `operate`: `run` (the operator, after `preflight`'s checks) and `crds`;
- `steer`: `promote`, `abort`, `retry`, `pause`, `resume`, `undo`;
- `claims`: `handover`;
- `show`: `status` (`--watch`) and `list`, one renderer for all three;
- `manifests`: `set-version` and `validate` (GitOps CI, offline);
- `classify`, `contract` (`contract check`), `dev` (`dev up|down|world`);
- `common`: what every verb shares (options, one-line errors and exit codes).
"""

from __future__ import annotations

import typer

from controller.cli import claims, classify, common, contract, dev, manifests, operate, show, steer

app = typer.Typer(help="Coordinated, progressive releases of an ECS backend and a CloudFront frontend.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

app.command()(operate.run)
app.command()(operate.crds)
for verb in (steer.promote, steer.abort, steer.retry, steer.pause, steer.resume):
    app.command()(verb)
app.command("handover")(claims.handover_command)
app.command("list")(show.list_releases)
app.command()(steer.undo)
app.command()(show.status)
app.command("classify")(classify.classify_command)
app.command("set-version")(manifests.set_version)
app.command("validate")(manifests.validate)

dev_app = typer.Typer(help="The local environment: real kube-apiserver, moto, Prometheus.", no_args_is_help=True)
dev_app.command("up")(dev.dev_up)
dev_app.command("down")(dev.dev_down)
dev_app.command("world")(dev.dev_world)
app.add_typer(dev_app, name="dev")

contract_app = typer.Typer(help="The frontend's API contract against a backend's OpenAPI document.",
                           no_args_is_help=True)
contract_app.command("check")(contract.contract_check)
app.add_typer(contract_app, name="contract")


def main() -> None:
    with common.one_line_errors():
        app()
