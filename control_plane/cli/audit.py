"""``mlctl audit``: verify, prove, checkpoint and export the audit log (a Merkle transparency log)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane import audit
from control_plane.errors import VerificationFailed
from control_plane.output import OutputFormat, OutputOption, console, emit_json, err_console

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
    if export is not None:
        from control_plane.audit.offline import verify_export
        from control_plane.errors import MlctlError

        if not heads or not public_key:
            raise MlctlError("--export needs --heads and --public-key",
                             hint="copy the heads from the audit bucket and the key from KMS (docs/audit.md)")
        report = verify_export(export, heads, public_key)
    else:
        report = audit.verify()
    if output is OutputFormat.json:
        emit_json(report.as_dict())
    elif report.ok:
        cp = report.checkpoint or {}
        anchored = f"; anchored {report.anchor['uri']}" if report.anchor else ""
        console.print(f"[green]audit log intact[/]: {report.entries} entries; signed head #{cp.get('size', 0)} "
                      f"by {cp.get('key_id', '-')} ({cp.get('source', '-')}){anchored}", highlight=False)
    for note in report.notes:
        err_console.print(f"note: {note}", highlight=False)
    if not report.ok:
        raise VerificationFailed(
            "audit log tampered: " + "; ".join(report.problems),
            hint=(f"entry #{report.first_bad} is the first bad one; restore the audit tables from backup and "
                  "investigate who changed them" if report.first_bad else
                  "restore the audit tables and signed heads from backup"),
        )


@app.command()
def prove(
    entry: Annotated[int, typer.Argument(help="The entry's sequence number (as in `mlctl audit export`).", min=1)],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Print and verify an RFC 9162 inclusion proof of ENTRY against the newest signed tree head.

    Example: mlctl audit prove 42 -o json > proof-42.json
    """
    from control_plane.access import authorize

    authorize("audit.verify", f"audit/{entry}")
    proof = audit.prove(entry)
    if output is OutputFormat.json:
        emit_json(proof)
        return
    head = proof["head"]
    console.print(f"[green]entry #{entry} is included[/] in the signed tree head #{head['size']} "
                  f"({proof['head_source']}, {head['ts']})", highlight=False)
    console.print(f"  leaf hash  {proof['leaf_hash']}\n  root       {head['root']}\n  signed by  {head['key_id']} "
                  f"({head['signer']})\n  path       {len(proof['inclusion_path'])} hashes", highlight=False)
    for h in proof["inclusion_path"]:
        console.print(f"    {h}", highlight=False)


@app.command()
def consistency(
    old: Annotated[int, typer.Argument(help="Size of the older signed head.", min=1)],
    new: Annotated[int | None, typer.Argument(help="Size of the newer signed head (default: the newest).")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Print and verify an RFC 9162 consistency proof: the newer signed head extends the older one.

    Example: mlctl audit consistency 1000
    """
    from control_plane.access import authorize

    authorize("audit.verify", "audit")
    proof = audit.consistency(old, new)
    if output is OutputFormat.json:
        emit_json(proof)
        return
    console.print(f"[green]head #{proof['new']['size']} extends head #{proof['old']['size']}[/] "
                  f"({len(proof['consistency_path'])} hashes)", highlight=False)


@app.command()
def checkpoint(output: OutputOption = OutputFormat.table) -> None:
    """Sign a tree head over every entry now, keep it locally and anchor it in the audit bucket.

    Example: MLCTL_AUDIT_ANCHOR=s3 mlctl audit checkpoint
    """
    from control_plane.access import authorize

    authorize("audit.verify", "audit")
    head = audit.checkpoint()
    heads = audit.signed_heads()
    anchor = next((h["anchor"] for h in heads if head and h["size"] == head.size), None)
    if output is OutputFormat.json:
        emit_json({"head": head.as_dict() if head else None, "anchor": anchor})
    elif head is None:
        console.print("the audit log is empty: nothing to sign")
    else:
        where = f"; anchored at {anchor}" if anchor else "; not anchored (see `mlctl audit verify`)"
        console.print(f"signed tree head #{head.size} ({head.signer} {head.key_id}){where}", highlight=False)


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
