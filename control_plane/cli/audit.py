"""``mlctl audit``: verify, prove, checkpoint and export the audit log (a Merkle transparency log)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from control_plane import audit
from control_plane.errors import NotFound, UsageError, VerificationFailed
from control_plane.output import OutputFormat, OutputOption, console, emit_json, err_console, table

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



def _subject_is_model(subject: str, model: str) -> bool:
    import re

    name, _, version = model.partition(":")
    pattern = rf"(^|/){re.escape(name)}" + (rf":{re.escape(version)}(@|$)" if version else r"(:|@|$)")
    return re.search(pattern, subject) is not None


def _keep(entry: dict[str, Any], model: str | None, actor: str | None, cutoff: str | None) -> bool:
    if actor is not None and entry.get("actor") != actor:
        return False
    if model is not None and not _subject_is_model(str(entry.get("subject", "")), model):
        return False
    return cutoff is None or str(entry.get("ts", "")) >= cutoff


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
    from control_plane.access import authorize
    from control_plane.query import since_cutoff

    authorize("audit.export", "list")
    cutoff = since_cutoff(since)
    rows = [e.as_dict() for e in audit.entries()]
    rows = [e for e in rows if _keep(e, model, actor, cutoff)]
    if limit is not None:
        rows = rows[-limit:] if limit > 0 else []
    if output is OutputFormat.json:
        emit_json(rows)
        return
    console.print(table("audit entries", ["seq", "time", "actor", "action", "subject", "decision", "reasons"],
                        [(e["seq"], e["ts"], e["actor"], e["action"], e["subject"], e["decision"],
                          "; ".join(e.get("reasons") or [])) for e in rows]))


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
    import os
    import sys
    import tempfile

    from control_plane.access import authorize
    from control_plane.query import since_cutoff
    from control_plane.settings import state_dir

    to_stdout = str(path) == "-"
    if not to_stdout:
        if path.is_dir():
            raise UsageError(f"{path} is a directory", hint=f"name a file in it, e.g. {path / 'trail.jsonl'}")
        if not path.parent.is_dir():
            raise NotFound(f"directory {path.parent} does not exist",
                           hint=f"create it first (mkdir -p {path.parent}), or export to - for stdout")
    cutoff = since_cutoff(since)
    authorize("audit.export", "-" if to_stdout else str(path))
    # The trail's own export writes the full file (entries and checkpoints); filters apply to its lines.
    fd, tmp_name = tempfile.mkstemp(prefix="audit-export-", suffix=".jsonl", dir=state_dir("tmp"))
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        audit.export(tmp)
        lines = [line for line in tmp.read_text(encoding="utf-8").splitlines() if line.strip()]
    finally:
        tmp.unlink(missing_ok=True)
    if model or actor or cutoff:
        lines = [line for line in lines if _keep(json.loads(line), model, actor, cutoff)]
    body = "".join(line + "\n" for line in lines)
    if to_stdout:
        sys.stdout.write(body)
        sys.stdout.flush()
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
        os.chmod(path, 0o600)
    audit.record(action="audit.export", subject="-" if to_stdout else str(path.name),
                 details={"entries": len(lines), "filters": {"model": model, "actor": actor, "since": since}})
    if to_stdout:
        return
    if output is OutputFormat.json:
        emit_json({"path": str(path), "entries": len(lines)})
    else:
        console.print(f"exported {len(lines)} entries to {path}", highlight=False, markup=False)
