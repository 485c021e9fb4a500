"""The hot loop of verification: stream every entry once, checking order, leaf hash and seal, and
compare the rebuilt Merkle tree's root at every signed or anchored head's size."""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from control_plane.audit import merkle, seal
from control_plane.audit.candidates import Candidate, describe
from control_plane.audit.entry import HASHED_FIELDS, leaf_data
from control_plane.audit.models import AuditRow
from control_plane.audit.records import AuditReport
from control_plane.audit.scan import cursor_batches


def _batches(conn: Connection, after: int = 0) -> Generator[Sequence[Any], None, None]:
    """The entries after #``after`` in log order straight from the driver (no per-row SQLAlchemy
    objects), streamed: a server-side cursor on PostgreSQL, ``fetchmany`` on SQLite."""
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    return cursor_batches(dbapi, conn.dialect.name == "postgresql", after, None)


def last_seq(conn: Connection) -> int:
    return conn.execute(select(AuditRow.seq).order_by(AuditRow.seq.desc()).limit(1)).scalar() or 0


def _diagnose_moved(values: list[Any], stored_leaf: str, last_seq: int) -> int | None:
    """If the row's content hashes to its stored leaf under another sequence number, it was moved."""
    i = HASHED_FIELDS.index("seq")
    for seq in range(1, last_seq + 2):
        if seq != values[i]:
            values[i] = seq
            if merkle.leaf_hash(leaf_data(values)).hex() == stored_leaf:
                return seq
    return None


@dataclass
class Walk:
    size: int = 0  # entries verified in order
    covered: int = 0  # entries covered by a reconciled head
    reconciled: Candidate | None = None
    anchored_ok: Any = None  # the largest anchored head that matched (anchor.Listed)
    anchor_mismatches: list[tuple[Any, int]] = field(default_factory=list)  # (anchor.Listed, covered before)


@dataclass
class Resume:
    """Where the sequential walk starts again: just after a signed head that matched (``walk.covered``),
    with the tree at that size and the heads counted so far, as they were when it got there."""

    walk: Walk
    tree: merkle.CompactRange
    heads_checked: int


def _first_bad_seal(pending: list[tuple[int, bytes, str | None]], sealer: seal.Sealer) -> int | None:
    for seq, leaf, stored in pending:
        if sealer.hexdigest(leaf) != stored:
            return seq
    return None


def _bad_seal(report: AuditReport, seq: int) -> None:
    report.problems.append(
        f"entry #{seq}: its seal is missing or does not verify with the host audit key (the entry was forged, or "
        "the log rewritten from here)"
    )
    report.first_bad = seq


def walk_entries(conn: Connection, by_size: dict[int, list[Candidate]], anchored: dict[int, list[Any]],
                 report: AuditReport, start: Resume | None = None) -> Walk:
    """Stream every entry once: order, leaf hash, and the tree root at every signed head's size.
    Stops at the first bad entry (report.first_bad). The hot loop of verification.

    Seals are checked where no signature speaks for the entries: after the newest head that
    matches, and inside a range whose head does not match (to name the entry that changed). Where
    a validly signed root matches, it already proves every entry under it.

    ``start`` resumes after a head that matched (the parallel path stops at a problem and lets this
    walk name it, from there, exactly as a walk from the first entry would)."""
    walk = start.walk if start else Walk()
    tree = start.tree if start else merkle.CompactRange()
    if start:
        report.heads_checked = start.heads_checked
    last = last_seq(conn)
    sealer = seal.Sealer()
    sha256, append = hashlib.sha256, tree.append
    check = set(by_size) | set(anchored)
    pending: list[tuple[int, bytes, str | None]] = []  # entries since the newest matching head
    # The entries up to a matched head were read in order, one row each, before it.
    expected, count = walk.covered + 1, walk.covered
    try:
        for batch in _batches(conn, walk.covered):
            for row in batch:
                seq = row[9]
                count += 1
                if seq != expected:
                    if (bad := _first_bad_seal(pending, sealer)) is not None:
                        _bad_seal(report, bad)
                        return walk
                    missing = f"#{expected}" if seq == expected + 1 else f"#{expected}..#{seq - 1}"
                    report.problems.append(f"entry {missing} is missing: the log jumps from #{expected - 1} to "
                                           f"#{seq} (entries deleted)")
                    report.first_bad = expected
                    return walk
                leaf = sha256(b"\x00" + leaf_data(row)).digest()
                if leaf.hex() != row[12]:
                    if (bad := _first_bad_seal(pending, sealer)) is not None:
                        _bad_seal(report, bad)
                        return walk
                    moved = _diagnose_moved(list(row[:12]), row[12] or "", last)
                    why = (f"it is entry #{moved} moved here (entries reordered or inserted)" if moved
                           else "its content was edited after it was recorded")
                    report.problems.append(f"entry #{seq}: content does not match its hash: {why}")
                    report.first_bad = seq
                    return walk
                append(leaf)
                pending.append((seq, leaf, row[13]))
                expected += 1
                if seq in check:
                    walk.size = seq
                    if not _at_head(walk, tree, seq, by_size, anchored, pending, sealer, report):
                        return walk
        walk.size = expected - 1
        if (bad := _first_bad_seal(pending, sealer)) is not None:
            _bad_seal(report, bad)
        return walk
    finally:
        report.entries = count


def _at_head(walk: Walk, tree: merkle.CompactRange, seq: int, by_size: dict[int, list[Candidate]],
             anchored: dict[int, list[Any]], pending: list[tuple[int, bytes, str | None]], sealer: seal.Sealer,
             report: AuditReport) -> bool:
    """Compare the tree at a head's size; False when verification must stop here."""
    bad = judge(walk, tree.root().hex(), seq, by_size, anchored, report)
    if bad is None:
        return True
    if bad:
        if (first := _first_bad_seal(pending, sealer)) is not None:
            _bad_seal(report, first)
        else:
            report.problems.append(
                f"entries #{walk.covered + 1}..#{seq}: the tree root differs from the {describe(bad[0])} (the log "
                "was rewritten after that head was signed)"
            )
            report.first_bad = walk.covered + 1
        return False
    pending.clear()
    return True


def judge(walk: Walk, root: str, seq: int, by_size: dict[int, list[Candidate]], anchored: dict[int, list[Any]],
          report: AuditReport) -> list[Candidate] | None:
    """The heads of size ``seq`` against the tree's root (hex) there: anchored heads noted for
    reconciliation, signed heads that match move ``walk.covered`` up. Returns the signed heads that
    do not match ([] when all do; None when no signed head has this size)."""
    for item in anchored.get(seq, ()):
        if item.root == root:
            walk.anchored_ok = item
        else:
            walk.anchor_mismatches.append((item, walk.covered))
    cands = by_size.get(seq)
    if not cands:
        return None
    bad = [c for c in cands if c.head.root != root]
    if not bad:
        walk.covered, walk.reconciled = seq, cands[0]
        report.heads_checked += len(cands)
    return bad
