"""``mlctl blueprint validate``: check environment blueprints without synthesizing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._show import show
from control_plane.output import OutputFormat, OutputOption
from control_plane.services import Context
from control_plane.services import infra as service

app = typer.Typer(
    help="Environment blueprints: validate the YAML that the infrastructure and the control plane share.",
    no_args_is_help=True,
)


@app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="Blueprint YAML files.", show_default=False)],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Load and validate each file: residency, CIDRs, GPU catalogue, required fields.

    Exits 2 naming the file, the field and the fix when any file is invalid.
    """
    show(service.validate_blueprints(Context(), files), output)
