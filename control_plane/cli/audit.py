"""``mlctl audit``: verify and export the tamper-evident audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane import audit
from control_plane.errors import VerificationFailed
from control_plane.output import OutputFormat, OutputOption, console, emit_json, err_console

app = typer.Typer(help="Verify and export the tamper-evident audit trail.", no_args_is_help=True)


@app.command()
def verify(output: OutputOption = OutputFormat.table) -> None:
    """Check the hash chain and the signed checkpoints; name the first bad entry (exit 8)."""
    report = audit.verify()
    if output is OutputFormat.json:
        emit_json(report.as_dict())
    elif report.ok:
        cp = report.checkpoint or {}
        console.print(f"[green]audit trail intact[/]: {report.entries} entries; head #{cp.get('seq', 0)} "
                      f"signed by {cp.get('key_id', '-')} ({cp.get('source', '-')})")
    for note in report.notes:
        err_console.print(f"note: {note}", highlight=False)
    if not report.ok:
        raise VerificationFailed(
            "audit trail tampered: " + "; ".join(report.problems),
            hint=(f"entry #{report.first_bad} is the first bad one; restore the audit tables from backup and "
                  "investigate who changed them" if report.first_bad else
                  "restore the audit tables and checkpoint from backup"),
        )


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="Write JSON lines here (one entry per line, chain order).")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Export every entry as JSONL (requires the audit.export permission)."""
    from control_plane.access import authorize

    authorize("audit.export", str(path))
    count = audit.export(path)
    audit.record(action="audit.export", subject=str(path.name), details={"entries": count})
    if output is OutputFormat.json:
        emit_json({"path": str(path), "entries": count})
    else:
        console.print(f"exported {count} entries to {path}")
