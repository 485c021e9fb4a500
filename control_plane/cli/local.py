"""``mlctl local``: the embedded environment on this machine (verbs: ``services.operations``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._served_names import served_blueprint
from control_plane.cli._show import show
from control_plane.client import remote
from control_plane.output import OutputFormat, OutputOption, err_console, info
from control_plane.services import Context, operations
from control_plane.settings import DEFAULT_BLUEPRINT
from control_plane.settings import current as settings

app = typer.Typer(
    help="Start and stop the embedded local environment (AWS emulator, gateway and OpenID provider on 127.0.0.1).",
    no_args_is_help=True,
)

BlueprintOption = Annotated[
    Path, typer.Option("--blueprint", "-b", help="Blueprint whose emulator endpoint to use.")
]


@app.command()
def up(blueprint: BlueprintOption = DEFAULT_BLUEPRINT, output: OutputOption = OutputFormat.table) -> None:
    """Start the AWS emulator (moto server), the TLS gateway (nginx) and the OpenID provider in the
    background; idempotent. Needs the platform-admin role (policies/rbac.rego: local.up).

    Creates the local CA on first use ($MLCTL_HOME/ca/ca.pem: clients of the gateway trust it).

    With MLCTL_SERVER: the server's embedded environment (dev tier only; the emulator and the
    gateway; the CA and the OpenID provider it stands on stay as they are).

    Example:  export MLCTL_HOME=$PWD/.mlctl && mlctl --as pat local up
    """
    api = remote()
    if api is not None:
        served_blueprint(blueprint)  # a name the server has, never a file here
        with _waiting("starting the AWS emulator and the gateway on the server"):
            view = api.local.up(blueprint)
        show(view, output)
        return
    show(operations.local_up(Context(), blueprint), output)


@app.command()
def down(output: OutputOption = OutputFormat.table) -> None:
    """Stop the AWS emulator (its state is lost: it keeps everything in memory), the local model
    servers and the gateway. Needs the platform-admin role (local.down).

    With MLCTL_SERVER: the server's (dev tier only); its CA and OpenID provider stay up."""
    api = remote()
    if api is not None:
        with _waiting("stopping the AWS emulator, the model servers and the gateway on the server"):
            view = api.local.down()
        show(view, output)
        return
    show(operations.local_down(Context()), output)


@app.command()
def status(blueprint: BlueprintOption = DEFAULT_BLUEPRINT, output: OutputOption = OutputFormat.table) -> None:
    """Show whether the local environment is running (with MLCTL_SERVER: the server's)."""
    api = remote()
    if api is not None:
        served_blueprint(blueprint)  # a name the server has, never a file here
        show(api.local.status(blueprint), output)
        return
    show(operations.local_status(Context(), blueprint), output)


@contextlib.contextmanager
def _waiting(doing: str) -> Iterator[None]:
    """A line, then a spinner on stderr while the server works in the request (tens of seconds at worst)."""
    info(f"{doing} ({settings().server}) …")
    with err_console.status(doing, spinner="dots"):
        yield


def _attach_traffic() -> None:
    from control_plane.cli.local_traffic import traffic

    app.command("traffic")(traffic)


_attach_traffic()
