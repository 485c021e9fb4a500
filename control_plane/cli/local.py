"""``mlctl local``: the embedded environment on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from blueprints import load_environment
from control_plane.local import emulator
from control_plane.output import OutputFormat, OutputOption, console, emit_json
from control_plane.settings import DEFAULT_BLUEPRINT

app = typer.Typer(help="Start and stop the embedded local environment (AWS emulator on 127.0.0.1).",
                  no_args_is_help=True)

BlueprintOption = Annotated[
    Path, typer.Option("--blueprint", "-b", help="Blueprint whose emulator endpoint to use.")
]


@app.command()
def up(blueprint: BlueprintOption = DEFAULT_BLUEPRINT, output: OutputOption = OutputFormat.table) -> None:
    """Start the AWS emulator (moto server) in the background; idempotent."""
    env = load_environment(blueprint)
    info = emulator.up(env)
    if output is OutputFormat.json:
        emit_json({"emulator": {"endpoint": info.endpoint, "pid": info.pid, "running": True}})
    else:
        console.print(f"AWS emulator up at [bold]{info.endpoint}[/] (pid {info.pid}); stop it with `mlctl local down`")


@app.command()
def down(output: OutputOption = OutputFormat.table) -> None:
    """Stop the AWS emulator (its state is lost: it keeps everything in memory)."""
    was = emulator.down()
    if output is OutputFormat.json:
        emit_json({"emulator": {"stopped": was}})
    else:
        console.print("AWS emulator stopped" if was else "AWS emulator was not running")


@app.command()
def status(blueprint: BlueprintOption = DEFAULT_BLUEPRINT, output: OutputOption = OutputFormat.table) -> None:
    """Show whether the local environment is running."""
    info = emulator.status(load_environment(blueprint))
    if output is OutputFormat.json:
        emit_json({"emulator": {"endpoint": info.endpoint, "pid": info.pid, "running": info.running}})
    else:
        state = f"running (pid {info.pid})" if info.running else "stopped"
        console.print(f"AWS emulator at {info.endpoint}: {state}")
