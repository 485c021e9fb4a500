"""The signed tree heads a verification or proof can trust: every validly signed head of this log
from the database, the local copy in ``$MLCTL_HOME``, by size (forks reported)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from sqlalchemy import Connection, select

from control_plane.audit import heads
from control_plane.audit.models import AuditHead, TreeHeadRow
from control_plane.audit.records import AuditReport


@dataclass
class Candidate:
    head: heads.SignedHead
    source: str


def collect_heads(conn: Connection, keyring: heads.Keyring, report: AuditReport) -> dict[int, list[Candidate]]:
    """Every validly signed head from the database, the local copy and the bucket, by size."""
    log = heads.log_id()
    found: list[Candidate] = []

    def consider(text_or_head: str | heads.SignedHead, source: str, what: str) -> None:
        try:
            h = text_or_head if isinstance(text_or_head, heads.SignedHead) else heads.SignedHead.from_json(text_or_head)
        except (ValueError, KeyError, TypeError):
            report.problems.append(f"{what} is unreadable (edited)")
            return
        if h.log != log:
            report.problems.append(f"{what} belongs to log {h.log}, not this log ({log}): a head from elsewhere")
        elif not keyring.verifies(h):
            report.problems.append(f"{what}'s signature does not verify with {keyring.source} (forged or edited)")
        else:
            found.append(Candidate(h, source))

    current = conn.execute(select(AuditHead.checkpoint).where(AuditHead.id == 1)).scalar()
    if current:
        consider(current, "database", "the database checkpoint")
    for size, text in conn.execute(select(TreeHeadRow.size, TreeHeadRow.head)):
        consider(text, "database", f"the database's tree head #{size}")
    local, unreadable = heads.read_local(log)
    report.problems.extend(unreadable)
    for h in local:
        consider(h, f"file {heads.local_file(log)}", f"the head #{h.size} in {heads.local_file(log)}")
    if not local:
        report.notes.append(f"no local copy of signed heads at {heads.local_file(log)} (first use of this database "
                            "from this $MLCTL_HOME?)")
    by_size: dict[int, list[Candidate]] = {}
    for c in found:
        by_size.setdefault(c.head.size, []).append(c)
    for size, cands in by_size.items():
        roots = {c.head.root for c in cands}
        if len(roots) > 1:
            report.problems.append(
                f"two validly signed heads for size {size} with different roots ({', '.join(sorted(c.source for c in cands))}):"
                " the log was forked"
            )
    return by_size


def best_head(conn: Connection, keyring: heads.Keyring, at_least: int) -> Candidate | None:
    """The largest validly signed head of this log of at least ``at_least`` entries (what a proof is
    made against): the same head ``collect_heads`` would rank first, ties going to the database's
    checkpoint, then its tree heads, then the local copy, but found by checking signatures from the
    largest head down, not all of them (a year's log has a thousand heads; a proof needs one)."""
    log = heads.log_id()
    offers: list[tuple[heads.SignedHead, int, str]] = []  # (head, preference, source)

    def offer(text: str, preference: int) -> None:
        # An unreadable head is left out: `audit verify` reports it; a proof uses the next one.
        with contextlib.suppress(ValueError, KeyError, TypeError):
            offers.append((heads.SignedHead.from_json(text), preference, "database"))

    current = conn.execute(select(AuditHead.checkpoint).where(AuditHead.id == 1)).scalar()
    if current:
        offer(current, 0)
    for (text,) in conn.execute(select(TreeHeadRow.head)):
        offer(text, 1)
    local, _unreadable = heads.read_local(log)
    offers.extend((h, 2, f"file {heads.local_file(log)}") for h in local)
    # By the size each head itself says it signed (never a row's column), largest first.
    offers.sort(key=lambda o: (-o[0].size, o[1]))
    for h, _preference, source in offers:
        if h.size < at_least:
            break
        if h.log == log and keyring.verifies(h):
            return Candidate(h, source)
    return None


def describe(c: Candidate) -> str:
    return f"signed tree head #{c.head.size} ({c.source}, {c.head.ts})"
