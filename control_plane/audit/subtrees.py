"""Subtree roots for proofs: the stored roots of the log's aligned 1024-leaf subtrees, and the
leaves themselves only where a proof needs them.

An inclusion or consistency proof is O(log n) subtree roots, but computing them from the leaves
reads every leaf up to the head (5–6 s at a million entries). A complete aligned subtree of
:data:`CHUNK` leaves never changes once its entries exist, so its root is stored
(``audit_subtrees``, migration 0006) the first time a proof or a signed head passes it; a proof then
reads about a thousand stored roots and the leaves of at most two subtrees.

The stored roots are a cache of what the leaves say, never evidence: every proof is verified
against a signed tree head before it is returned, so a wrong stored root can make a proof fail,
never pass, and a proof that fails with them is made again from the leaves alone
(:mod:`control_plane.audit.proofs`), whose answer is the one given. ``mlctl audit verify`` reads the
entries, not this table.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Connection, Table, delete, insert, select
from sqlalchemy.exc import IntegrityError

from control_plane.audit import merkle
from control_plane.audit.models import AuditRow, AuditSubtreeRow
from control_plane.audit.scan import CHUNK
from control_plane.errors import MlctlError
from control_plane.store import get_engine

_SUBTREES = cast(Table, AuditSubtreeRow.__table__)


def _missing(i: int) -> MlctlError:
    return MlctlError(f"entry #{i} is missing", hint="run `mlctl audit verify` to see what was changed")


def _short(have: int, size: int) -> MlctlError:
    return MlctlError(f"the log has {have} entries, fewer than the signed head's {size}",
                      hint="run `mlctl audit verify`: the newest entries were deleted")


def read_leaves(conn: Connection, lo: int, hi: int, size: int) -> list[bytes]:
    """Leaf hashes ``[lo, hi)`` (entries #lo+1..#hi), each present and in order, else MlctlError
    naming the first missing entry (``size``: the head the proof is for, for the message)."""
    rows = conn.execute(select(AuditRow.seq, AuditRow.leaf_hash)
                        .where(AuditRow.seq > lo, AuditRow.seq <= hi).order_by(AuditRow.seq)
                        .execution_options(yield_per=50_000))
    out: list[bytes] = []
    for i, (seq, leaf) in enumerate(rows, lo + 1):
        if seq != i:
            raise _missing(i)
        out.append(bytes.fromhex(leaf))
    if len(out) < hi - lo:
        if hi == size:
            raise _short(lo + len(out), size)
        raise _missing(lo + len(out) + 1)
    return out


def _chunk_root(leaves: list[bytes]) -> bytes:
    return merkle.pyramid(leaves)[-1][0]


def fill(size: int, *, newest: int | None = None) -> int:
    """Store the roots of the complete subtrees below ``size`` that are not stored yet (each from
    its leaves, read once), or of the ``newest`` of them only; returns how many were added. A
    subtree with a missing entry is left out (the proof then reads its leaves and names the entry).
    Its own short transactions: two processes filling at once both succeed (the second's
    duplicates are dropped)."""
    engine = get_engine()
    with engine.connect() as conn:
        have = set(conn.execute(select(AuditSubtreeRow.start).where(AuditSubtreeRow.start < size)).scalars())
    todo = [start for start in range(0, size - size % CHUNK, CHUNK) if start not in have]
    if newest is not None:
        todo = todo[len(todo) - newest:] if newest < len(todo) else todo
    added = 0
    for first in range(0, len(todo), 64):  # ~64 k leaves a transaction: bounded memory, steady progress
        rows = []
        with engine.connect() as conn:
            for start in todo[first:first + 64]:
                try:
                    leaves = read_leaves(conn, start, start + CHUNK, size)
                except MlctlError:
                    continue
                rows.append({"start": start, "root": _chunk_root(leaves).hex()})
        if not rows:
            continue
        try:
            with engine.begin() as conn:
                conn.execute(insert(_SUBTREES), rows)
            added += len(rows)
        except IntegrityError:  # another process stored some of them first: keep its, add the rest
            for row in rows:
                try:
                    with engine.begin() as conn:
                        conn.execute(insert(_SUBTREES), row)
                    added += 1
                except IntegrityError:
                    pass
    return added


def forget() -> None:
    """Drop every stored root (after a proof failed with them and succeeded from the leaves:
    they no longer say what the leaves say). They are filled again on the next proof."""
    with get_engine().begin() as conn:
        conn.execute(delete(_SUBTREES))


class Roots:
    """MTH of any range of the first ``size`` leaves, from stored subtree roots where a range is a
    complete aligned power of two of at least :data:`CHUNK` leaves, and from the leaves (read per
    :data:`CHUNK`, on demand) below that. ``root_of`` is what ``merkle.inclusion_path`` and
    ``merkle.consistency_path`` take."""

    def __init__(self, conn: Connection, size: int) -> None:
        self.conn, self.size = conn, size
        self.stored = {start: bytes.fromhex(root) for start, root in conn.execute(
            select(AuditSubtreeRow.start, AuditSubtreeRow.root).where(AuditSubtreeRow.start < size - size % CHUNK))}
        self._leaves: dict[int, list[bytes]] = {}

    def _chunk_leaves(self, start: int) -> list[bytes]:
        got = self._leaves.get(start)
        if got is None:
            got = self._leaves[start] = read_leaves(self.conn, start, min(start + CHUNK, self.size), self.size)
        return got

    def _leaf_range(self, lo: int, hi: int) -> list[bytes]:
        start = lo - lo % CHUNK  # a range below CHUNK leaves never crosses an aligned CHUNK boundary
        return self._chunk_leaves(start)[lo - start:hi - start]

    def root_of(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n >= CHUNK and n & (n - 1) == 0 and lo % CHUNK == 0:
            roots = [self.stored.get(s) for s in range(lo, hi, CHUNK)]
            if all(r is not None for r in roots):
                return _chunk_root(cast(list[bytes], roots))
            if n == CHUNK:
                return _chunk_root(self._chunk_leaves(lo))
        if n <= CHUNK and lo // CHUNK == (hi - 1) // CHUNK:
            return merkle.root(self._leaf_range(lo, hi))
        k = 1 << ((n - 1).bit_length() - 1)
        return merkle.node_hash(self.root_of(lo, lo + k), self.root_of(lo + k, hi))
