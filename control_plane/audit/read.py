"""Read the audit log: entries, the signed heads, and the JSON-lines export an auditor verifies
offline (:mod:`control_plane.audit.offline`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from control_plane.audit.entry import canonical_json
from control_plane.audit.models import AuditRow, TreeHeadRow
from control_plane.audit.records import AuditEntry
from control_plane.store import session_scope


def entries(limit: int | None = None) -> list[AuditEntry]:
    with session_scope() as s:
        q = select(AuditRow).order_by(AuditRow.seq)
        if limit is not None:
            q = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
        rows = list(s.execute(q).scalars())
    out = [AuditEntry.from_row(r) for r in rows]
    return sorted(out, key=lambda e: e.seq)


def export(path: str | Path) -> int:
    """Write every entry as one JSON line (canonical JSON, log order). Returns the count.

    Each line carries its ``leaf_hash``; with the signed heads from the audit bucket and the
    public key, an auditor rebuilds the tree offline (docs/audit.md)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_name(path.name + ".tmp")
    with session_scope() as s, tmp.open("w", encoding="utf-8") as fh:
        for row in s.execute(select(AuditRow).order_by(AuditRow.seq).execution_options(yield_per=10_000)).scalars():
            fh.write(canonical_json(AuditEntry.from_row(row).as_dict()) + "\n")
            n += 1
    tmp.replace(path)
    return n


def signed_heads() -> list[dict[str, Any]]:
    """Every signed head in the database, oldest first, with where it was anchored."""
    with session_scope() as s:
        return [{**json.loads(h), "anchor": a}
                for h, a in s.execute(select(TreeHeadRow.head, TreeHeadRow.anchor).order_by(TreeHeadRow.size))]
