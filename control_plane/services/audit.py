"""Audit-log verbs: verify (online or an offline export), prove, consistency, checkpoint, list, export.

Permissions (``policies/rbac.rego``): proofs and checkpoints need ``audit.verify``; reading the
entries (``list``, ``export``) needs ``audit.export``. ``verify`` needs none: anyone may check that
the trail is intact (it reveals no entry). ``export`` records its own ``audit.export`` entry.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text

from control_plane import audit
from control_plane.errors import MlctlError, NotFound, UsageError, VerificationFailed
from control_plane.output import table
from control_plane.query import since_cutoff
from control_plane.services.context import Context
from control_plane.settings import state_dir

__all__ = [
    "CheckpointView", "ConsistencyView", "EntriesView", "ExportView", "ProofView", "VerifyView", "checkpoint",
    "consistency", "export", "list_entries", "prove", "verify",
]


def _plain(markup: str) -> Text:
    """Console markup without rich's highlighter (digests and key ids stay one colour)."""
    return Text.from_markup(markup)


@dataclass(frozen=True)
class VerifyView:
    report: Any  # audit.VerifyReport (online) or the offline report: both have as_dict/ok/notes/problems

    def as_json(self) -> Any:
        return self.report.as_dict()

    def renderables(self) -> Iterator[Any]:
        report = self.report
        if report.ok:
            cp = report.checkpoint or {}
            anchored = f"; anchored {report.anchor['uri']}" if report.anchor else ""
            yield _plain(f"[green]audit log intact[/]: {report.entries} entries; signed head #{cp.get('size', 0)} "
                         f"by {cp.get('key_id', '-')} ({cp.get('source', '-')}){anchored}")

    @property
    def notes(self) -> Sequence[str]:
        return list(self.report.notes)

    def failure(self) -> MlctlError | None:
        """VerificationFailed (exit 8) naming the first bad entry, after the report is shown."""
        report = self.report
        if report.ok:
            return None
        return VerificationFailed(
            "audit log tampered: " + "; ".join(report.problems),
            hint=(f"entry #{report.first_bad} is the first bad one; restore the audit tables from backup and "
                  "investigate who changed them" if report.first_bad else
                  "restore the audit tables and signed heads from backup"),
        )


def verify(ctx: Context, *, export: Path | None = None, heads: Sequence[Path] | None = None,
           public_key: Sequence[Path] | None = None) -> VerifyView:
    """Check every entry and reconcile the Merkle tree with the signed heads (or, offline, an export
    against signed heads and public keys). A tampered log is a view whose ``failure()`` is exit 8."""
    with ctx.acting():
        if export is not None:
            from control_plane.audit.offline import (
                verify_export,  # lazy: one verb's code, kept off CLI start-up
            )

            if not heads or not public_key:
                raise MlctlError("--export needs --heads and --public-key",
                                 hint="copy the heads from the audit bucket and the key from KMS (docs/audit.md)")
            return VerifyView(verify_export(export, list(heads), list(public_key)))
        return VerifyView(audit.verify())


@dataclass(frozen=True)
class ProofView:
    entry: int
    proof: Mapping[str, Any]

    def as_json(self) -> Any:
        return self.proof

    def renderables(self) -> Iterator[Any]:
        proof, head = self.proof, self.proof["head"]
        yield _plain(f"[green]entry #{self.entry} is included[/] in the signed tree head #{head['size']} "
                     f"({proof['head_source']}, {head['ts']})")
        yield _plain(f"  leaf hash  {proof['leaf_hash']}\n  root       {head['root']}\n  signed by  {head['key_id']} "
                     f"({head['signer']})\n  path       {len(proof['inclusion_path'])} hashes")
        for h in proof["inclusion_path"]:
            yield _plain(f"    {h}")


def prove(ctx: Context, entry: int) -> ProofView:
    """An RFC 9162 inclusion proof of ENTRY against the newest signed tree head (``audit.verify``)."""
    ctx.authorize("audit.verify", f"audit/{entry}")
    with ctx.acting():
        return ProofView(entry, audit.prove(entry))


@dataclass(frozen=True)
class ConsistencyView:
    proof: Mapping[str, Any]

    def as_json(self) -> Any:
        return self.proof

    def renderables(self) -> Iterator[Any]:
        p = self.proof
        yield _plain(f"[green]head #{p['new']['size']} extends head #{p['old']['size']}[/] "
                     f"({len(p['consistency_path'])} hashes)")


def consistency(ctx: Context, old: int, new: int | None = None) -> ConsistencyView:
    """An RFC 9162 consistency proof: the newer signed head extends the older (``audit.verify``)."""
    ctx.authorize("audit.verify", "audit")
    with ctx.acting():
        return ConsistencyView(audit.consistency(old, new))


@dataclass(frozen=True)
class CheckpointView:
    head: Any  # audit.SignedHead | None (an empty log)
    anchor: str | None

    def as_json(self) -> Any:
        return {"head": self.head.as_dict() if self.head else None, "anchor": self.anchor}

    def renderables(self) -> Iterator[Any]:
        if self.head is None:
            yield "the audit log is empty: nothing to sign"
            return
        where = f"; anchored at {self.anchor}" if self.anchor else "; not anchored (see `mlctl audit verify`)"
        yield _plain(f"signed tree head #{self.head.size} ({self.head.signer} {self.head.key_id}){where}")


def checkpoint(ctx: Context) -> CheckpointView:
    """Sign a tree head over every entry now, keep it and anchor it in the audit bucket (``audit.verify``)."""
    ctx.authorize("audit.verify", "audit")
    with ctx.acting():
        head = audit.checkpoint()
        heads = audit.signed_heads()
    anchor = next((h["anchor"] for h in heads if head and h["size"] == head.size), None)
    return CheckpointView(head, anchor)


# --- reading entries -----------------------------------------------------------------------------


def _subject_is_model(subject: str, model: str) -> bool:
    name, _, version = model.partition(":")
    pattern = rf"(^|/){re.escape(name)}" + (rf":{re.escape(version)}(@|$)" if version else r"(:|@|$)")
    return re.search(pattern, subject) is not None


def _keep(entry: Mapping[str, Any], model: str | None, actor: str | None, cutoff: str | None) -> bool:
    if actor is not None and entry.get("actor") != actor:
        return False
    if model is not None and not _subject_is_model(str(entry.get("subject", "")), model):
        return False
    return cutoff is None or str(entry.get("ts", "")) >= cutoff


@dataclass(frozen=True)
class EntriesView:
    rows: Sequence[Mapping[str, Any]]

    def as_json(self) -> Any:
        return [dict(r) for r in self.rows]

    def renderables(self) -> Iterator[Any]:
        yield table("audit entries", ["seq", "time", "actor", "action", "subject", "decision", "reasons"],
                    [(e["seq"], e["ts"], e["actor"], e["action"], e["subject"], e["decision"],
                      "; ".join(e.get("reasons") or [])) for e in self.rows])


def list_entries(ctx: Context, *, model: str | None = None, actor: str | None = None, since: str | None = None,
                 limit: int | None = None) -> EntriesView:
    """Entries in chain order, filtered by model (NAME or NAME:V), actor and age (``audit.export``)."""
    ctx.authorize("audit.export", "list")
    cutoff = since_cutoff(since)
    rows = [e for e in (x.as_dict() for x in audit.entries()) if _keep(e, model, actor, cutoff)]
    if limit is not None:
        rows = rows[-limit:] if limit > 0 else []
    return EntriesView(rows)


@dataclass(frozen=True)
class ExportView:
    path: Path | None  # None: to stdout
    entries: int
    body: str  # the JSON lines (what ``-`` writes to stdout)

    def as_json(self) -> Any:
        return {"path": str(self.path), "entries": self.entries}

    def renderables(self) -> Iterator[Any]:
        yield Text(f"exported {self.entries} entries to {self.path}")


def check_export_path(path: Path) -> bool:
    """Where an export may be written (here, and by the CLI for a server's export); True for ``-``
    (stdout)."""
    if str(path) == "-":
        return True
    if path.is_dir():
        raise UsageError(f"{path} is a directory", hint=f"name a file in it, e.g. {path / 'trail.jsonl'}")
    if not path.parent.is_dir():
        raise NotFound(f"directory {path.parent} does not exist",
                       hint=f"create it first (mkdir -p {path.parent}), or export to - for stdout")
    return False


def export(ctx: Context, path: Path, *, model: str | None = None, actor: str | None = None,
           since: str | None = None) -> ExportView:
    """Write the entries (each with its signed checkpoint) as JSONL to ``path`` (0600), or return them
    for stdout when ``path`` is ``-`` (``audit.export``; audited)."""
    to_stdout = check_export_path(path)
    cutoff = since_cutoff(since)
    ctx.authorize("audit.export", "-" if to_stdout else str(path))
    with ctx.acting():
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
        if not to_stdout:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
            os.chmod(path, 0o600)
        audit.record(action="audit.export", subject="-" if to_stdout else str(path.name),
                     details={"entries": len(lines), "filters": {"model": model, "actor": actor, "since": since}})
    return ExportView(None if to_stdout else path, len(lines), body)
