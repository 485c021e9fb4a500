"""Append, checkpoint, verify, prove and export the audit log.

Appending is one short transaction: lock the head row, insert the entry with its leaf hash and
seal, extend the compact range. No signature is made per entry; a signed tree head is issued
when ``MLCTL_AUDIT_HEAD_EVERY`` entries or ``MLCTL_AUDIT_HEAD_SECONDS`` have passed since the last
one, when a release ends (``checkpoint``), and on ``mlctl audit checkpoint``.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane import identity as acting  # `identity` is record()'s parameter
from control_plane.audit import heads, merkle, seal
from control_plane.audit.entry import HASHED_FIELDS, Identity, canonical_json, leaf_data, stored_columns
from control_plane.audit.models import AuditHead, AuditRow, TreeHeadRow
from control_plane.errors import MlctlError, NotFound
from control_plane.store import get_engine, session_scope

DECISIONS = ("allow", "deny", "error")
_COLUMNS = [getattr(AuditRow, f) for f in HASHED_FIELDS]
_HEAD = cast(Table, AuditHead.__table__)
_ENTRIES = cast(Table, AuditRow.__table__)
_TREE_HEADS = cast(Table, TreeHeadRow.__table__)
# Prebuilt Core statements: the append path is a handful of cached, compiled statements, which is
# most of what makes one transaction per entry fast.
_NEXT_SEQ = (update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + 1)
             .returning(_HEAD.c.seq, _HEAD.c.peaks, _HEAD.c.signed_size, _HEAD.c.signed_at))
_INSERT_ENTRY = insert(_ENTRIES)
_SET_PEAKS = update(_HEAD).where(_HEAD.c.id == 1).values(peaks=bindparam("peaks"))


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
    identity: dict[str, Any] | None
    leaf_hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def hashed_fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in HASHED_FIELDS}

    @classmethod
    def from_row(cls, row: AuditRow) -> AuditEntry:
        return cls(
            seq=row.seq, ts=row.ts, actor=row.actor, roles=json.loads(row.roles), action=row.action,
            subject=row.subject, decision=row.decision, reasons=json.loads(row.reasons),
            digests=json.loads(row.digests), details=json.loads(row.details), host=row.host,
            identity=json.loads(row.identity) if row.identity else None, leaf_hash=row.leaf_hash,
        )


@dataclass
class AuditReport:
    ok: bool
    entries: int
    first_bad: int | None = None
    problems: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None  # the newest signed head the log was reconciled with
    anchor: dict[str, Any] | None = None  # the newest head in the audit bucket, if read
    heads_checked: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _age_seconds(ts: str) -> float:
    try:
        then = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (datetime.now(UTC) - then).total_seconds()


# --- append ---

def _append(session: Session | Connection, fields: dict[str, Any]) -> tuple[AuditEntry, bool]:
    """Insert one entry; returns it and whether a signed head is due."""
    from control_plane.settings import audit_head_every, audit_head_seconds

    # Lock the head row first, before reading anything (a row lock on PostgreSQL, the database
    # write lock on SQLite) and take the next sequence number in the same statement: every
    # appender queues here, so sequence numbers and the tree never fork.
    seq, peaks_json, signed_size, signed_at = session.execute(_NEXT_SEQ).one()
    cols = stored_columns({**fields, "seq": seq})
    leaf = merkle.leaf_hash(leaf_data([cols[f] for f in HASHED_FIELDS]))
    tree = merkle.CompactRange(seq - 1, [bytes.fromhex(p) for p in json.loads(peaks_json)])
    tree.append(leaf)
    session.execute(_INSERT_ENTRY, {**cols, "leaf_hash": leaf.hex(), "seal": seal.seal(leaf)})
    session.execute(_SET_PEAKS, {"peaks": json.dumps([p.hex() for p in tree.peaks])})
    due = (signed_at is None or seq - signed_size >= audit_head_every()
           or _age_seconds(signed_at) >= audit_head_seconds())
    entry = AuditEntry(
        seq=seq, ts=fields["ts"], actor=fields["actor"], roles=list(fields["roles"]), action=fields["action"],
        subject=fields["subject"], decision=fields["decision"], reasons=list(fields["reasons"]),
        digests=dict(fields["digests"]), details=dict(fields["details"]), host=fields["host"],
        identity=fields["identity"], leaf_hash=leaf.hex(),
    )
    return entry, due


_METHODS = {"verified": "oidc", "asserted": "asserted", "os-user": "os-user"}


def _acting_identity() -> dict[str, Any]:
    """The process's acting identity (control_plane.identity), as an entry's identity field."""
    me = acting.current()
    v = me.verified
    return Identity(actor=me.name, roles=me.roles, method=_METHODS[me.source],
                    issuer=v.issuer if v else None, subject=v.subject if v else None,
                    client=v.client_id if v else None, kind=v.kind if v else None).as_dict()


def record(
    *,
    action: str,
    subject: str,
    decision: str = "allow",
    reasons: Sequence[str] = (),
    digests: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
    identity: Identity | Mapping[str, Any] | None = None,
    session: Session | None = None,
) -> AuditEntry:
    """Append one entry. Safe from any process at any time (appends serialise on the head row).

    Pass ``session`` to append inside your own transaction, so that the state change and its
    audit entry commit or roll back together. ``identity`` says who acted and how that was
    established (a verified token's issuer/subject/client); by default the acting id as asserted.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    if isinstance(identity, Identity):
        ident: dict[str, Any] = identity.as_dict()
    elif identity is not None:
        ident = json.loads(canonical_json(dict(identity)))
    else:
        ident = _acting_identity()
    who = str(ident.get("actor") or "unknown")
    roles = [str(r) for r in ident.get("roles", [])]
    if identity is None:
        # How we know who acted, also in the entry's details (what `audit list` shows).
        details = {**dict(details or {}), "identity": acting.current().audit_view()}
    fields = {
        "ts": _now(),
        "actor": who,  # the only personal data in the trail: an actor id, never names or e-mails
        "roles": roles,
        "action": action,
        "subject": subject,
        "decision": decision,
        "reasons": [str(r) for r in reasons],
        "digests": {str(k): str(v) for k, v in (digests or {}).items()},
        "details": json.loads(canonical_json(dict(details or {}))),
        "host": socket.gethostname(),
        "identity": {**Identity(actor=who, method="unknown").as_dict(), **ident, "actor": who, "roles": roles},
    }
    if session is not None:
        entry, due = _append(session, fields)
        if due:
            # The head is signed only once the entry is durable; before that it would be ahead.
            event.listen(session, "after_commit", lambda _s: _auto_checkpoint(), once=True)
        return entry
    with get_engine().begin() as conn:  # a plain Core transaction: no ORM session to set up per entry
        if conn.dialect.name == "postgresql":
            # The PostgreSQL twin of SQLite's synchronous=NORMAL, for this transaction only: commit
            # without waiting for the WAL flush (never inconsistent; a crash may lose the newest
            # entries). The next signed head's commit flushes them before the head leaves the database.
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
        entry, due = _append(conn, fields)
    if due:
        _auto_checkpoint()
    return entry


# --- signed tree heads ---

def _auto_checkpoint() -> None:
    """A head due after an append: never fails the action that was audited (the entry is durable
    and sealed); a failure leaves the head due, so the next append tries again."""
    try:
        checkpoint(strict=False)
    except MlctlError as exc:
        print(f"warning: audit tree head not signed yet: {exc}", file=sys.stderr)


def _anchor_target(*, for_write: bool) -> tuple[Any, str]:
    """The S3 anchor to use now, or None (with the reason) when anchoring does not apply."""
    from control_plane.audit.anchor import S3Anchor
    from control_plane.settings import audit_anchor_mode

    mode = audit_anchor_mode()
    if mode == "off":
        return None, "anchoring is off (MLCTL_AUDIT_ANCHOR=off): heads live in the database and $MLCTL_HOME only"
    env = heads.audit_environment()
    if mode == "auto" and env.is_local:
        return None, (f"environment '{env.name}' is emulated: its heads are anchored only with "
                      "MLCTL_AUDIT_ANCHOR=s3")
    if mode == "auto" and str(env.cloud) != "aws":
        return None, f"environment '{env.name}' is on {env.cloud}: anchoring is implemented for AWS S3 Object Lock"
    anchor = S3Anchor.for_environment(env)
    if for_write:
        anchor.ensure_bucket(create=mode == "s3")
    return anchor, ""


def _anchor_pending(strict: bool) -> None:
    from control_plane.errors import InfraError

    try:
        anchor, _why = _anchor_target(for_write=True)
        if anchor is None:
            return
        with session_scope() as s:
            pending = list(s.execute(select(TreeHeadRow.size, TreeHeadRow.head).where(TreeHeadRow.anchor.is_(None))
                                     .order_by(TreeHeadRow.size)))
        for size, text in pending:
            uri = anchor.put(heads.SignedHead.from_json(text))
            with session_scope() as s:
                s.execute(update(TreeHeadRow).where(TreeHeadRow.size == size).values(anchor=uri))
    except InfraError:
        if strict:
            raise


def _store_head(head: heads.SignedHead) -> None:
    """Commit the head durably: it is published outside the database only after this, so a copy
    outside can never be ahead of what a power cut leaves in the database."""
    with get_engine().connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA synchronous=FULL")  # this commit fsyncs the WAL, every entry in it
            conn.commit()
        try:
            with conn.begin():
                conn.execute(insert(_TREE_HEADS), {"size": head.size, "root": head.root, "ts": head.ts,
                                                            "head": head.to_json()})
                conn.execute(update(_HEAD).where(_HEAD.c.id == 1, _HEAD.c.signed_size < head.size)
                             .values(signed_size=head.size, signed_at=head.ts, checkpoint=head.to_json()))
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                conn.commit()


def checkpoint(*, strict: bool = True) -> heads.SignedHead | None:
    """Sign a tree head over every entry recorded so far (if any are unsigned), keep it in the
    database and ``$MLCTL_HOME``, and anchor it in the audit bucket. Called by the release engine at
    every terminal state; cheap when nothing changed. Returns the newest head (None: empty log)."""
    with session_scope() as s:
        size, peaks_json, signed_size, current = s.execute(
            select(AuditHead.seq, AuditHead.peaks, AuditHead.signed_size, AuditHead.checkpoint)
            .where(AuditHead.id == 1)
        ).one()
    if size == 0:
        return None
    if size == signed_size and current:
        _anchor_pending(strict)
        return heads.SignedHead.from_json(current)
    tree = merkle.CompactRange(size, [bytes.fromhex(p) for p in json.loads(peaks_json)])
    # Signed outside any transaction: a KMS call must not hold the lock every appender waits on.
    head = heads.sign(size, tree.root(), _now())
    try:
        _store_head(head)
    except IntegrityError:
        # Another process signed this very size first; its head is as good as ours.
        with session_scope() as s:
            head = heads.SignedHead.from_json(s.execute(select(TreeHeadRow.head)
                                                        .where(TreeHeadRow.size == size)).scalar_one())
    heads.write_local(head)
    _anchor_pending(strict)
    return head


# --- verify ---

@dataclass
class _Candidate:
    head: heads.SignedHead
    source: str


def _collect_heads(conn: Connection, keyring: heads.Keyring, report: AuditReport) -> dict[int, list[_Candidate]]:
    """Every validly signed head from the database, the local copy and the bucket, by size."""
    log = heads.log_id()
    found: list[_Candidate] = []

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
            found.append(_Candidate(h, source))

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
    by_size: dict[int, list[_Candidate]] = {}
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


@dataclass
class _Anchored:
    anchor: Any  # anchor.S3Anchor
    by_size: dict[int, list[Any]]  # size -> [anchor.Listed]


def _anchored(conn: Connection, report: AuditReport) -> _Anchored | None:
    """What the audit bucket holds for this log (names only; heads are fetched when they matter)."""
    from control_plane.errors import InfraError
    from control_plane.settings import audit_anchor_mode

    try:
        anchor, why = _anchor_target(for_write=False)
        if anchor is None:
            report.notes.append(why)
            return None
        listed, odd = anchor.listing(heads.log_id())
    except InfraError as exc:
        msg = f"the anchored heads could not be read: {exc}"
        (report.problems if audit_anchor_mode() == "s3" else report.notes).append(msg)
        return None
    for uri in odd:
        report.problems.append(f"{uri} in the audit bucket is not named like a signed head (written by someone else)")
    if not listed:
        claimed = conn.execute(select(TreeHeadRow.size, TreeHeadRow.anchor).where(TreeHeadRow.anchor.is_not(None))
                               .order_by(TreeHeadRow.size.desc()).limit(1)).first()
        if claimed:
            report.problems.append(f"the database records head #{claimed[0]} anchored at {claimed[1]}, but the audit "
                                   f"bucket s3://{anchor.bucket} holds no head of this log")
        else:
            report.notes.append(f"no head of this log is anchored in s3://{anchor.bucket} yet")
    by_size: dict[int, list[Any]] = {}
    for item in listed:
        by_size.setdefault(item.size, []).append(item)
    return _Anchored(anchor, by_size)


def _fetch_valid(anchored: _Anchored, item: Any, keyring: heads.Keyring, report: AuditReport) -> heads.SignedHead | None:
    head = anchored.anchor.fetch(item.key)
    ok = (head is not None and head.log == heads.log_id() and head.size == item.size and head.root == item.root
          and keyring.verifies(head))
    if not ok:
        report.problems.append(f"{anchored.anchor.uri(item.key)} in the audit bucket is not a validly signed head of "
                               f"this log ({keyring.source}): someone wrote into the audit bucket")
        return None
    return head


def _reconcile_anchors(walk: _Walk, anchored: _Anchored, keyring: heads.Keyring, report: AuditReport) -> None:
    """The bucket is the copy the host cannot roll back: every anchored head must match the local
    tree at its size, and none may be larger than the local tree."""
    uri = anchored.anchor.uri
    for item, covered_before in walk.anchor_mismatches:
        head = _fetch_valid(anchored, item, keyring, report)
        if head is not None:
            report.problems.append(
                f"entries #{covered_before + 1}..#{item.size}: cannot reconcile the anchored signed tree head "
                f"#{item.size} ({uri(item.key)}, {head.ts}): the local tree has another root at that size (the log "
                "was rewritten or forked after the head was anchored)"
            )
            report.first_bad = covered_before + 1
            return
    beyond = sorted((i for items in anchored.by_size.values() for i in items if i.size > walk.size),
                    key=lambda i: i.size, reverse=True)
    for item in beyond:
        head = _fetch_valid(anchored, item, keyring, report)
        if head is not None:
            missing = f"#{walk.size + 1}" if item.size == walk.size + 1 else f"#{walk.size + 1}..#{item.size}"
            report.problems.append(
                f"entry {missing} is missing: cannot reconcile the anchored signed tree head #{item.size} "
                f"({uri(item.key)}, {head.ts}) with the local log of {walk.size} entries: the database and "
                "$MLCTL_HOME were rolled back or truncated"
            )
            report.first_bad = walk.size + 1
            report.anchor = {**head.payload(), "uri": uri(item.key), "reconciled": False}
            return
    if walk.anchored_ok is not None:
        item = walk.anchored_ok
        report.anchor = {"size": item.size, "root": item.root, "uri": uri(item.key), "reconciled": True}


# Built from constant column names only (no input reaches it).
_SCAN_SQL = f"SELECT {', '.join(HASHED_FIELDS)}, leaf_hash, seal FROM audit_entries ORDER BY seq"  # noqa: S608


def _batches(conn: Connection, size: int = 20_000) -> Iterator[list[Any]]:
    """All entries in log order straight from the driver (no per-row SQLAlchemy objects), streamed:
    a server-side cursor on PostgreSQL, ``fetchmany`` on SQLite."""
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    cur = dbapi.cursor(name="mlctl_audit_scan") if conn.dialect.name == "postgresql" else dbapi.cursor()
    try:
        cur.execute(_SCAN_SQL)
        while batch := cur.fetchmany(size):
            yield batch
    finally:
        cur.close()


def _diagnose_moved(values: list[Any], stored_leaf: str, last_seq: int) -> int | None:
    """If the row's content hashes to its stored leaf under another sequence number, it was moved."""
    i = HASHED_FIELDS.index("seq")
    for seq in range(1, last_seq + 2):
        if seq != values[i]:
            values[i] = seq
            if merkle.leaf_hash(leaf_data(values)).hex() == stored_leaf:
                return seq
    return None


def _describe(c: _Candidate) -> str:
    return f"signed tree head #{c.head.size} ({c.source}, {c.head.ts})"


@dataclass
class _Walk:
    size: int = 0  # entries verified in order
    covered: int = 0  # entries covered by a reconciled head
    reconciled: _Candidate | None = None
    anchored_ok: Any = None  # the largest anchored head that matched (anchor.Listed)
    anchor_mismatches: list[tuple[Any, int]] = field(default_factory=list)  # (anchor.Listed, covered before)


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


def _walk(conn: Connection, by_size: dict[int, list[_Candidate]], anchored: dict[int, list[Any]],
          report: AuditReport) -> _Walk:
    """Stream every entry once: order, leaf hash, and the tree root at every signed head's size.
    Stops at the first bad entry (report.first_bad). The hot loop of verification.

    Seals are checked where no signature speaks for the entries: after the newest head that
    matches, and inside a range whose head does not match (to name the entry that changed). Where
    a validly signed root matches, it already proves every entry under it."""
    walk = _Walk()
    last_seq = conn.execute(select(AuditRow.seq).order_by(AuditRow.seq.desc()).limit(1)).scalar() or 0
    sealer = seal.Sealer()
    tree = merkle.CompactRange()
    sha256, append = hashlib.sha256, tree.append
    check = set(by_size) | set(anchored)
    pending: list[tuple[int, bytes, str | None]] = []  # entries since the newest matching head
    expected, count = 1, 0
    try:
        for batch in _batches(conn):
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
                    moved = _diagnose_moved(list(row[:12]), row[12] or "", last_seq)
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


def _at_head(walk: _Walk, tree: merkle.CompactRange, seq: int, by_size: dict[int, list[_Candidate]],
             anchored: dict[int, list[Any]], pending: list[tuple[int, bytes, str | None]], sealer: seal.Sealer,
             report: AuditReport) -> bool:
    """Compare the tree at a head's size; False when verification must stop here."""
    root = tree.root().hex()
    for item in anchored.get(seq, ()):
        if item.root == root:
            walk.anchored_ok = item
        else:
            walk.anchor_mismatches.append((item, walk.covered))
    cands = by_size.get(seq)
    if not cands:
        return True
    bad = [c for c in cands if c.head.root != root]
    if bad:
        if (first := _first_bad_seal(pending, sealer)) is not None:
            _bad_seal(report, first)
        else:
            report.problems.append(
                f"entries #{walk.covered + 1}..#{seq}: the tree root differs from the {_describe(bad[0])} (the log "
                "was rewritten after that head was signed)"
            )
            report.first_bad = walk.covered + 1
        return False
    walk.covered, walk.reconciled = seq, cands[0]
    report.heads_checked += len(cands)
    pending.clear()
    return True


def verify() -> AuditReport:
    """Check every entry (order, leaf hash, seal), rebuild the Merkle tree and reconcile it with every
    validly signed head: database, local copy and the audit bucket. Names the first bad entry, or
    the head that cannot be reconciled."""
    from control_plane.signing.signers import LocalSigner

    report = AuditReport(ok=True, entries=0)
    keyring = heads.Keyring.trusted()
    if keyring.source.startswith(f"the {LocalSigner.kind}"):
        report.notes.append("heads verified with the development key: set MLCTL_AUDIT_TRUSTED_KEYS to the operator's "
                            "keyring (or MLCTL_AUDIT_SIGNER=kms) for an environment that matters")
    with get_engine().connect() as conn:
        by_size = _collect_heads(conn, keyring, report)
        anchored = _anchored(conn, report)
        walk = _walk(conn, by_size, anchored.by_size if anchored else {}, report)
    size, covered = walk.size, walk.covered
    if report.first_bad is None and anchored is not None:
        _reconcile_anchors(walk, anchored, keyring, report)
    if report.first_bad is None:
        beyond = [c for cs in by_size.values() for c in cs if c.head.size > size]
        if beyond:
            worst = max(beyond, key=lambda c: c.head.size)
            missing = f"#{size + 1}" if worst.head.size == size + 1 else f"#{size + 1}..#{worst.head.size}"
            report.problems.append(
                f"entry {missing} is missing: the {_describe(worst)} covers {worst.head.size} entries but the log "
                f"ends at #{size} (newest entries deleted)"
            )
            report.first_bad = size + 1
        elif size and walk.reconciled is None:
            report.problems.append("entry #1 is not covered by any validly signed tree head (heads removed or forged)")
            report.first_bad = 1
        elif size > covered:
            report.notes.append(
                f"entries #{covered + 1}..#{size} are sealed but not yet covered by a signed head (one is issued "
                "every MLCTL_AUDIT_HEAD_EVERY entries or MLCTL_AUDIT_HEAD_SECONDS, at the end of each release, "
                "or by `mlctl audit checkpoint`)"
            )
    if walk.reconciled is not None:
        report.checkpoint = {**walk.reconciled.head.payload(), "source": walk.reconciled.source}
    report.ok = not report.problems
    return report


# --- proofs ---

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


def _best_head(conn: Connection, keyring: heads.Keyring, at_least: int) -> _Candidate | None:
    report = AuditReport(ok=True, entries=0)
    by_size = _collect_heads(conn, keyring, report)
    ok = [c for cs in by_size.values() for c in cs if c.head.size >= at_least]
    if not ok:
        return None
    return max(ok, key=lambda c: c.head.size)


def prove(seq: int) -> dict[str, Any]:
    """An RFC 9162 inclusion proof of entry ``seq`` against the newest signed head covering it,
    verified here from the entry's own content (so a tampered entry or leaf fails)."""
    from control_plane.errors import VerificationFailed

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
            f"entry #{seq} is not included in the {_describe(best)}: {exc}",
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
    from control_plane.errors import VerificationFailed

    keyring = heads.Keyring.trusted()
    with get_engine().connect() as conn:
        report = AuditReport(ok=True, entries=0)
        by_size = _collect_heads(conn, keyring, report)
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


# --- read and export ---

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
