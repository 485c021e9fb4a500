"""RFC 9162 proofs over the audit log: inclusion of one entry, consistency of two signed heads;
each verified here before it is returned."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from control_plane.audit import heads, merkle
from control_plane.audit.candidates import Candidate, collect_heads, describe
from control_plane.audit.entry import leaf_data, stored_columns
from control_plane.audit.models import AuditRow, TreeHeadRow
from control_plane.audit.records import AuditEntry, AuditReport
from control_plane.errors import MlctlError, NotFound, VerificationFailed
from control_plane.store import get_engine


def _leaves(conn: Connection, size: int) -> list[bytes]:
    rows = conn.execute(select(AuditRow.seq, AuditRow.leaf_hash).where(AuditRow.seq <= size).order_by(AuditRow.seq)
                        .execution_options(yield_per=50_000))
    out = []
    for i, (seq, leaf) in enumerate(rows, 1):
        if seq != i:
            raise MlctlError(f"entry #{i} is missing", hint="run `mlctl audit verify` to see what was changed")
        out.append(bytes.fromhex(leaf))
    if len(out) < size:
        raise MlctlError(f"the log has {len(out)} entries, fewer than the signed head's {size}",
                         hint="run `mlctl audit verify`: the newest entries were deleted")
    return out


def _best_head(conn: Connection, keyring: heads.Keyring, at_least: int) -> Candidate | None:
    report = AuditReport(ok=True, entries=0)
    by_size = collect_heads(conn, keyring, report)
    ok = [c for cs in by_size.values() for c in cs if c.head.size >= at_least]
    if not ok:
        return None
    return max(ok, key=lambda c: c.head.size)


def prove(seq: int) -> dict[str, Any]:
    """An RFC 9162 inclusion proof of entry ``seq`` against the newest signed head covering it,
    verified here from the entry's own content (so a tampered entry or leaf fails)."""
    keyring = heads.Keyring.trusted()
    with get_engine().connect() as conn:
        row = Session(bind=conn).get(AuditRow, seq)
        if row is None:
            raise NotFound(f"audit entry #{seq} does not exist", hint="`mlctl audit export` lists the entries")
        best = _best_head(conn, keyring, seq)
        if best is None:
            raise NotFound(f"audit entry #{seq} is not covered by a signed tree head yet",
                           hint="run `mlctl audit checkpoint` to sign one now")
        leaves = _leaves(conn, best.head.size)
        anchored_at = conn.execute(select(TreeHeadRow.anchor).where(TreeHeadRow.size == best.head.size)).scalar()
    entry = AuditEntry.from_row(row)
    leaf = merkle.leaf_hash(leaf_data(list(stored_columns(entry.hashed_fields()).values())))
    proof = merkle.inclusion_proof(leaves, seq - 1, best.head.size)
    try:
        merkle.verify_inclusion(leaf, seq - 1, best.head.size, proof, bytes.fromhex(best.head.root))
    except merkle.ProofError as exc:
        raise VerificationFailed(
            f"entry #{seq} is not included in the {describe(best)}: {exc}",
            hint="the entry or the log was changed after the head was signed; run `mlctl audit verify`",
        ) from None
    return {
        "entry": entry.as_dict(),
        "leaf_index": seq - 1,
        "leaf_hash": leaf.hex(),
        "tree_size": best.head.size,
        "inclusion_path": [p.hex() for p in proof],
        "head": best.head.as_dict(),
        "head_source": best.source,
        "anchor": anchored_at,
        "verified": True,
    }


def consistency(old_size: int, new_size: int | None = None) -> dict[str, Any]:
    """An RFC 9162 consistency proof between two signed heads of this log, verified here."""
    keyring = heads.Keyring.trusted()
    with get_engine().connect() as conn:
        report = AuditReport(ok=True, entries=0)
        by_size = collect_heads(conn, keyring, report)
        new_size = new_size or max(by_size, default=0)
        if old_size not in by_size or new_size not in by_size:
            have = ", ".join(str(s) for s in sorted(by_size)[-10:]) or "none"
            raise NotFound(f"no validly signed head of size {old_size if old_size not in by_size else new_size}",
                           hint=f"sizes with signed heads (newest 10): {have}")
        leaves = _leaves(conn, new_size)
    old, new = by_size[old_size][0].head, by_size[new_size][0].head
    proof = merkle.consistency_proof(leaves, old_size, new_size)
    try:
        merkle.verify_consistency(old_size, new_size, bytes.fromhex(old.root), bytes.fromhex(new.root), proof)
    except merkle.ProofError as exc:
        raise VerificationFailed(f"head #{new_size} does not extend head #{old_size}: {exc}",
                                 hint="run `mlctl audit verify`") from None
    return {"old": old.as_dict(), "new": new.as_dict(), "consistency_path": [p.hex() for p in proof],
            "verified": True}
