"""RFC 9162 proofs over the audit log: inclusion of one entry, consistency of two signed heads;
each verified here before it is returned.

Subtree roots come from :mod:`control_plane.audit.subtrees` (stored 1024-leaf roots, leaves below
that). A proof that fails to verify with stored roots is made again from the leaves alone, and
that answer is the one given: a stored root can make a proof slow, never wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from control_plane.audit import heads, merkle, subtrees
from control_plane.audit.candidates import best_head, collect_heads, describe
from control_plane.audit.entry import leaf_data, stored_columns
from control_plane.audit.models import AuditRow, TreeHeadRow
from control_plane.audit.records import AuditEntry, AuditReport
from control_plane.errors import NotFound, VerificationFailed
from control_plane.store import get_engine


def _proved(size: int, make: Callable[[subtrees.Roots], list[bytes]],
            check: Callable[[list[bytes]], None]) -> list[bytes]:
    """A proof over the first ``size`` leaves that passes ``check`` (merkle.ProofError otherwise):
    made from stored subtree roots (storing the missing ones first), and again from the leaves
    alone if it fails with them."""
    with contextlib.suppress(SQLAlchemyError):  # a read-only connection, say: the leaves are read instead
        subtrees.fill(size)
    with get_engine().connect() as conn:
        roots = subtrees.Roots(conn, size)
        proof = make(roots)
        try:
            check(proof)
            return proof
        except merkle.ProofError:
            if not roots.stored:
                raise
        roots.stored.clear()  # they do not say what the leaves say: the leaves decide
        proof = make(roots)
        check(proof)
    with contextlib.suppress(SQLAlchemyError):
        subtrees.forget()
    return proof


def prove(seq: int) -> dict[str, Any]:
    """An RFC 9162 inclusion proof of entry ``seq`` against the newest signed head covering it,
    verified here from the entry's own content (so a tampered entry or leaf fails)."""
    keyring = heads.Keyring.trusted()
    with get_engine().connect() as conn:
        row = Session(bind=conn).get(AuditRow, seq)
        if row is None:
            raise NotFound(f"audit entry #{seq} does not exist", hint="`mlctl audit export` lists the entries")
        best = best_head(conn, keyring, seq)
        if best is None:
            raise NotFound(f"audit entry #{seq} is not covered by a signed tree head yet",
                           hint="run `mlctl audit checkpoint` to sign one now")
        anchored_at = conn.execute(select(TreeHeadRow.anchor).where(TreeHeadRow.size == best.head.size)).scalar()
    entry = AuditEntry.from_row(row)
    leaf = merkle.leaf_hash(leaf_data(list(stored_columns(entry.hashed_fields()).values())))
    size, root = best.head.size, bytes.fromhex(best.head.root)
    try:
        proof = _proved(size, lambda roots: merkle.inclusion_path(roots.root_of, seq - 1, size),
                        lambda path: merkle.verify_inclusion(leaf, seq - 1, size, path, root))
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
    old, new = by_size[old_size][0].head, by_size[new_size][0].head
    m, n = old_size, new_size
    try:
        proof = _proved(n, lambda roots: merkle.consistency_path(roots.root_of, m, n),
                        lambda path: merkle.verify_consistency(m, n, bytes.fromhex(old.root), bytes.fromhex(new.root),
                                                               path))
    except merkle.ProofError as exc:
        raise VerificationFailed(f"head #{new_size} does not extend head #{old_size}: {exc}",
                                 hint="run `mlctl audit verify`") from None
    return {"old": old.as_dict(), "new": new.as_dict(), "consistency_path": [p.hex() for p in proof],
            "verified": True}
