"""``mlctl pii``: scan data for personal identifiers (kinds and places only, never values)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.output import OutputFormat, OutputOption, console, emit_json, table

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
    from control_plane.pii import refuse_unless_classified, scan_path, summarize

    findings = scan_path(path)
    if output is OutputFormat.json:
        emit_json(
            {
                "path": str(path),
                "classification": classification,
                "counts": summarize(findings),
                "findings": [f.to_dict() for f in findings],
            }
        )
    else:
        console.print(
            table(
                f"PII in {path}",
                ["kind", "row", "column", "count", "file"],
                [(f.kind, f.row, f.column, f.count, f.file) for f in findings],
            )
        )
        console.print(
            "no personal identifiers found"
            if not findings
            else ", ".join(f"{n} {k}" for k, n in summarize(findings).items())
        )
    if classification is not None:
        refuse_unless_classified(findings, classification)
