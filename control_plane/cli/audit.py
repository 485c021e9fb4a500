"""``mlctl audit``: verify, prove, checkpoint and export the audit log (a Merkle transparency log)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from control_plane.client import remote
from control_plane.output import OutputFormat, OutputOption, err_console, render
from control_plane.services import Context
from control_plane.services import audit as service

app = typer.Typer(help="Verify, prove and export the tamper-evident audit log.", no_args_is_help=True)


@app.command()
def verify(
    output: OutputOption = OutputFormat.table,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Verify offline: this JSONL export instead of the database.")] = None,
    heads: Annotated[list[Path] | None, typer.Option(
        "--heads", help="With --export: signed heads (files or directories, e.g. copied from the bucket).")] = None,
    public_key: Annotated[list[Path] | None, typer.Option(
        "--public-key", help="With --export: the PEM public key(s) heads must verify with.")] = None,
) -> None:
    """Check every entry and reconcile the Merkle tree with the signed heads in the database, in
    $MLCTL_HOME and in the audit bucket; name the first bad entry (exit 8).

    Examples: mlctl audit verify -o json;
    mlctl audit verify --export log.jsonl --heads heads/ --public-key audit-key.pem (offline, as an auditor)
    """
    api = remote() if export is None else None  # --export: offline, a file on this machine
    view = api.audit.verify() if api is not None else service.verify(Context(), export=export, heads=heads,
                                                                     public_key=public_key)
    render(view, output)
    for note in view.notes:
        err_console.print(f"note: {note}", highlight=False)
    failure = view.failure()
    if failure is not None:
        raise failure


@app.command()
def prove(
    entry: Annotated[int, typer.Argument(help="The entry's sequence number (as in `mlctl audit export`).", min=1)],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Print and verify an RFC 9162 inclusion proof of ENTRY against the newest signed tree head.

    Example: mlctl audit prove 42 -o json > proof-42.json
    """
    api = remote()
    render(api.audit.prove(entry) if api is not None else service.prove(Context(), entry), output)


@app.command()
def consistency(
    old: Annotated[int, typer.Argument(help="Size of the older signed head.", min=1)],
    new: Annotated[int | None, typer.Argument(help="Size of the newer signed head (default: the newest).")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Print and verify an RFC 9162 consistency proof: the newer signed head extends the older one.

    Example: mlctl audit consistency 1000
    """
    api = remote()
    render(api.audit.consistency(old, new) if api is not None else service.consistency(Context(), old, new), output)


@app.command()
def checkpoint(output: OutputOption = OutputFormat.table) -> None:
    """Sign a tree head over every entry now, keep it locally and anchor it in the audit bucket.

    Example: MLCTL_AUDIT_ANCHOR=s3 mlctl audit checkpoint
    """
    api = remote()
    render(api.audit.checkpoint() if api is not None else service.checkpoint(Context()), output)


ModelFilter = Annotated[str | None, typer.Option("--model", help="Only entries about NAME or NAME:VERSION.")]
ActorFilter = Annotated[str | None, typer.Option("--actor", help="Only entries by this actor.")]
SinceFilter = Annotated[str | None, typer.Option("--since", help="Only newer than 30m, 6h, 7d or an ISO date.")]


@app.command("list")
def list_(
    model: ModelFilter = None,
    actor: ActorFilter = None,
    since: SinceFilter = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the newest N (after filtering).")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List audit entries in chain order (requires the audit.export permission).

    Example:  mlctl --as ali audit list --model digits --since 1d
    """
    api = remote()
    render(api.audit.list_entries(model=model, actor=actor, since=since, limit=limit) if api is not None
           else service.list_entries(Context(), model=model, actor=actor, since=since, limit=limit), output)


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="Write JSON lines here (one entry per line, chain order); - for stdout.")],
    model: ModelFilter = None,
    actor: ActorFilter = None,
    since: SinceFilter = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Export entries as JSONL, each with its signed checkpoint (requires the audit.export permission).
    The file is written 0600; its directory must exist.

    Example:  mlctl --as ali audit export trail.jsonl --since 7d
    """
    api = remote()
    view = (api.audit.export(path, model=model, actor=actor, since=since) if api is not None
            else service.export(Context(), path, model=model, actor=actor, since=since))
    if view.path is None:  # `-`: the JSON lines are the output
        sys.stdout.write(view.body)
        sys.stdout.flush()
        return
    render(view, output)
