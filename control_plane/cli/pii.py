"""``mlctl pii``: scan data for personal identifiers (kinds and places only, never values)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.client import remote
from control_plane.output import OutputFormat, OutputOption, render
from control_plane.services import Context
from control_plane.services import pii as service

app = typer.Typer(
    help="Find UAE personal identifiers in sample inputs and feature data.", no_args_is_help=True
)


@app.command()
def scan(
    path: Annotated[Path, typer.Argument(help="A CSV, JSON/JSONL, Parquet or text file, or a directory.")],
    classification: Annotated[
        str | None,
        typer.Option(
            help="The data's classification tag; anything but 'pii' makes findings an error (exit 4)."
        ),
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Report Emirates IDs, +971 phones, e-mails, AE IBANs and card numbers by kind and place."""
    api = remote()  # with MLCTL_SERVER, PATH is uploaded (the server's size limit applies) and scanned there
    view = (api.monitor.pii_scan(path, classification=classification) if api is not None
            else service.scan(Context(), path, classification=classification))
    render(view, output)
    failure = view.failure()
    if failure is not None:
        raise failure
