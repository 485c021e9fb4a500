"""Append, verify and export the audit trail."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from control_plane.audit import checkpoint as cpmod
from control_plane.audit.chain import canonical_json, entry_hash
from control_plane.audit.models import GENESIS, AuditHead, AuditRow
from control_plane.store import session_scope

DECISIONS = ("allow", "deny", "error")


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    ts: str
    actor: str
    roles: list[str]
    action: str
    subject: str
    decision: str
    reasons: list[str]
    digests: dict[str, str]
    details: dict[str, Any]
    host: str
    prev_hash: str
    entry_hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: AuditRow) -> AuditEntry:
        return cls(
            seq=row.seq, ts=row.ts, actor=row.actor, roles=json.loads(row.roles), action=row.action,
            subject=row.subject, decision=row.decision, reasons=json.loads(row.reasons),
            digests=json.loads(row.digests), details=json.loads(row.details), host=row.host,
            prev_hash=row.prev_hash, entry_hash=row.entry_hash,
        )


@dataclass
class AuditReport:
    ok: bool
    entries: int
    first_bad: int | None = None
    problems: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _fields(row: AuditRow, seq: int | None = None) -> dict[str, Any]:
    """The hashed content of a stored row, exactly as it was hashed (JSON columns decoded)."""
    return {
        "seq": row.seq if seq is None else seq, "ts": row.ts, "actor": row.actor,
        "roles": json.loads(row.roles), "action": row.action, "subject": row.subject,
        "decision": row.decision, "reasons": json.loads(row.reasons), "digests": json.loads(row.digests),
        "details": json.loads(row.details), "host": row.host,
    }


def _append(session: Session, fields: dict[str, Any]) -> tuple[AuditEntry, cpmod.Checkpoint]:
    # Lock the head row first, before reading anything: a row lock on PostgreSQL, the database write
    # lock on SQLite. Every appender queues here, so sequence numbers and links never fork.
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)
    ).scalar_one()
    seq = head.seq + 1
    entry = {**fields, "seq": seq}
    digest = entry_hash(head.entry_hash, entry)
    cp = cpmod.sign(seq, digest, entry["ts"])
    row = AuditRow(
        checkpoint=cp.to_json(), seq=seq, ts=entry["ts"], actor=entry["actor"], roles=canonical_json(entry["roles"]),
        action=entry["action"], subject=entry["subject"], decision=entry["decision"],
        reasons=canonical_json(entry["reasons"]), digests=canonical_json(entry["digests"]),
        details=canonical_json(entry["details"]), host=entry["host"], prev_hash=head.entry_hash,
        entry_hash=digest,
    )
    session.add(row)
    head.seq, head.entry_hash, head.checkpoint = seq, digest, cp.to_json()
    session.flush()
    return AuditEntry.from_row(row), cp


def record(
    *,
    action: str,
    subject: str,
    decision: str = "allow",
    reasons: Sequence[str] = (),
    digests: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
    session: Session | None = None,
) -> AuditEntry:
    """Append one entry. Safe from any process at any time (appends serialise on the head row).

    Pass ``session`` to append inside your own transaction, so that the state change and its
    audit entry commit or roll back together.
    """
    from control_plane import identity

    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    me = identity.current()
    who = me.name
    # How we know who acted: verified (issuer, subject, kind, client) or asserted / os-user.
    details = {**dict(details or {}), "identity": me.audit_view()}
    fields = {
        "ts": _now(),
        "actor": who,  # the only personal data in the trail: an actor id, never names or e-mails
        "roles": me.roles,
        "action": action,
        "subject": subject,
        "decision": decision,
        "reasons": [str(r) for r in reasons],
        "digests": {str(k): str(v) for k, v in (digests or {}).items()},
        "details": json.loads(canonical_json(dict(details or {}))),
        "host": socket.gethostname(),
    }
    if session is not None:
        entry, cp = _append(session, fields)
        # The file copy is written only once the entry is durable; before that it would be ahead.
        event.listen(session, "after_commit", lambda _s: cpmod.write_file(cp), once=True)
        return entry
    with session_scope() as own:
        entry, cp = _append(own, fields)
    cpmod.write_file(cp)
    return entry


def _diagnose_moved(row: AuditRow, last_seq: int) -> int | None:
    """If the row's content hashes correctly under another sequence number, it was moved from there."""
    for seq in range(1, last_seq + 2):
        if seq != row.seq and entry_hash(row.prev_hash, _fields(row, seq)) == row.entry_hash:
            return seq
    return None


def _signed_here(row: AuditRow, signer: object) -> bool:
    try:
        cp = cpmod.Checkpoint.from_json(row.checkpoint)
    except (ValueError, KeyError, TypeError):
        return False
    return cp.seq == row.seq and cp.head == row.entry_hash and cpmod.is_valid(cp, signer)


def verify() -> AuditReport:
    """Walk the chain from the first entry, then compare its head with the signed checkpoints."""
    report = AuditReport(ok=True, entries=0)
    signer = cpmod.trusted_signer()
    with session_scope() as s:
        head = s.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
        last_seq = s.execute(select(AuditRow.seq).order_by(AuditRow.seq.desc()).limit(1)).scalar()
        prev_hash, expected, count = GENESIS, 1, 0
        rows = s.execute(select(AuditRow).order_by(AuditRow.seq)).scalars()
        for row in rows:
            count += 1
            if row.seq != expected:
                missing = expected if row.seq == expected + 1 else f"{expected}..{row.seq - 1}"
                report.problems.append(
                    f"entry #{missing} is missing: the chain jumps from #{expected - 1} to #{row.seq} "
                    "(entries deleted)"
                )
                report.first_bad = expected
                break
            if entry_hash(row.prev_hash, _fields(row)) != row.entry_hash:
                moved = _diagnose_moved(row, last_seq or 0)
                why = (f"it is entry #{moved} moved here (entries reordered or inserted)" if moved
                       else "its content was edited after it was recorded")
                report.problems.append(f"entry #{row.seq}: content does not match its hash: {why}")
                report.first_bad = row.seq
                break
            if row.prev_hash != prev_hash:
                report.problems.append(
                    f"entry #{row.seq}: does not link to entry #{row.seq - 1} (an entry before it was "
                    "replaced, inserted or reordered)"
                )
                report.first_bad = row.seq
                break
            if not _signed_here(row, signer):
                report.problems.append(
                    f"entry #{row.seq}: its signed checkpoint is missing or does not verify with the signing "
                    "key (the entry was forged, or the chain rewritten from here)"
                )
                report.first_bad = row.seq
                break
            prev_hash, expected = row.entry_hash, expected + 1
        report.entries = count
        chain_len = expected - 1  # entries verified in order
        head_cp = head.checkpoint if head is not None else None

    if report.first_bad is not None:
        report.ok = False
        return report

    candidates: list[tuple[str, cpmod.Checkpoint]] = []
    if head_cp:
        try:
            cp = cpmod.Checkpoint.from_json(head_cp)
        except (ValueError, KeyError, TypeError):
            report.problems.append("the database checkpoint is unreadable (edited)")
        else:
            if cpmod.is_valid(cp, signer):
                candidates.append(("database", cp))
            else:
                report.problems.append("the database checkpoint's signature does not verify with the signing key")
    try:
        fcp = cpmod.read_file()
    except cpmod.UnreadableCheckpoint as exc:
        report.problems.append(f"the checkpoint file is unreadable: {exc}")
        fcp = None
    if fcp is not None:
        if cpmod.is_valid(fcp, signer):
            candidates.append(("file", fcp))
        else:
            report.problems.append(f"the checkpoint file {cpmod.file_path()} does not verify with the signing key")
    else:
        report.notes.append(
            f"no checkpoint file at {cpmod.file_path()} (first use of this database from this $MLCTL_HOME?): "
            "deleting the newest entries is detectable only against the database copy"
        )

    if candidates:
        where, best = max(candidates, key=lambda c: c[1].seq)
        report.checkpoint = {**best.payload(), "source": where}
        if best.seq > chain_len:
            missing = f"#{chain_len + 1}" if best.seq == chain_len + 1 else f"#{chain_len + 1}..#{best.seq}"
            report.problems.append(
                f"entry {missing} is missing: the signed checkpoint ({where}, {best.ts}) records {best.seq} "
                f"entries but the chain ends at #{chain_len} (newest entries deleted)"
            )
            report.first_bad = chain_len + 1
        elif best.seq < chain_len:
            report.problems.append(
                f"entry #{best.seq + 1} is not covered by a signed checkpoint (the newest checkpoint is "
                f"#{best.seq}): entries were added without mlctl"
            )
            report.first_bad = best.seq + 1
        else:
            with session_scope() as s:
                at = s.execute(select(AuditRow.entry_hash).where(AuditRow.seq == best.seq)).scalar()
            if at != best.head:
                report.problems.append(
                    f"entry #{best.seq}: its hash differs from the signed checkpoint (the chain was rewritten)"
                )
                report.first_bad = best.seq
    elif chain_len > 0:
        report.problems.append("no validly signed checkpoint covers the chain (checkpoints removed or forged)")
        report.first_bad = chain_len
    report.ok = not report.problems
    return report


def entries(limit: int | None = None) -> list[AuditEntry]:
    with session_scope() as s:
        q = select(AuditRow).order_by(AuditRow.seq)
        if limit is not None:
            q = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
        rows = list(s.execute(q).scalars())
    out = [AuditEntry.from_row(r) for r in rows]
    return sorted(out, key=lambda e: e.seq)


def export(path: str | Path) -> int:
    """Write every entry as one JSON line (canonical JSON, chain order). Returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_name(path.name + ".tmp")
    with session_scope() as s, tmp.open("w", encoding="utf-8") as fh:
        for row in s.execute(select(AuditRow).order_by(AuditRow.seq)).scalars():
            # The entry's signed checkpoint travels with it, so an export can be checked offline.
            fh.write(canonical_json({**AuditEntry.from_row(row).as_dict(),
                                     "checkpoint": json.loads(row.checkpoint)}) + "\n")
            n += 1
    tmp.replace(path)
    return n
