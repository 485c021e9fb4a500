"""Append one entry to the audit log: :func:`record`.

Appending is one short transaction per entry: take the next sequence number from the head row,
insert the entry with its leaf hash and seal, extend the compact range (the peaks). Two ways, with
the same result and the same row-level guarantees (sequence numbers never fork or gap):

- the locking path (SQLite always; PostgreSQL when the process does not know the head, and inside
  a caller's transaction): lock the head row, read it, insert, write the peaks;
- PostgreSQL's fast path, when this process wrote the head last: one statement, its own
  transaction, that moves the head only if it is still exactly the one remembered (see ``_FAST``).

Durability: an entry's commit does not wait for the disk (SQLite ``synchronous=NORMAL``,
PostgreSQL ``synchronous_commit=off``, on the append connections only): a power cut may lose the
newest entries, never leave the log inconsistent. Nothing outside the database ever covers an
entry that could still be lost: a signed tree head is committed durably, which flushes the log up
to it with every entry before it, before it is written to ``$MLCTL_HOME`` or the audit bucket.

No signature is made per entry; a signed tree head is issued when ``MLCTL_AUDIT_HEAD_EVERY``
entries or ``MLCTL_AUDIT_HEAD_SECONDS`` have passed since the last one (the head itself is made in
:mod:`control_plane.audit.checkpoints`).
"""

from __future__ import annotations

import json
import socket
import sys
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, event, insert, text, update
from sqlalchemy.orm import Session

from control_plane import identity as acting  # `identity` is record()'s parameter
from control_plane.audit import merkle, seal
from control_plane.audit.checkpoints import checkpoint
from control_plane.audit.entry import HASHED_FIELDS, Identity, canonical_json, leaf_data, stored_columns
from control_plane.audit.models import AuditHead, AuditRow
from control_plane.audit.records import AuditEntry, age_seconds, now
from control_plane.errors import MlctlError
from control_plane.settings import current as current_settings
from control_plane.store import get_engine
from control_plane.store.db import append_engine

DECISIONS = ("allow", "deny", "error")
_HEAD = cast(Table, AuditHead.__table__)
_ENTRIES = cast(Table, AuditRow.__table__)
# Prebuilt Core statements: the append path is a handful of cached, compiled statements, which is
# most of what makes one transaction per entry fast.
_NEXT_SEQ = (update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + 1)
             .returning(_HEAD.c.seq, _HEAD.c.peaks, _HEAD.c.signed_size, _HEAD.c.signed_at))
_INSERT_ENTRY = insert(_ENTRIES)
_SET_PEAKS = update(_HEAD).where(_HEAD.c.id == 1).values(peaks=bindparam("peaks"))


def _next(fields: dict[str, Any], seq: int, peaks_json: str) -> tuple[dict[str, Any], str]:
    """Entry ``seq``'s column values (leaf hash and seal included) and the peaks after it, from the
    peaks before it. The leaf covers ``seq``, so the number must be known before anything is hashed."""
    cols = stored_columns({**fields, "seq": seq})
    leaf = merkle.leaf_hash(leaf_data([cols[f] for f in HASHED_FIELDS]))
    tree = merkle.CompactRange(seq - 1, [bytes.fromhex(p) for p in json.loads(peaks_json)])
    tree.append(leaf)
    return {**cols, "leaf_hash": leaf.hex(), "seal": seal.seal(leaf)}, json.dumps([p.hex() for p in tree.peaks])


def _entry(fields: dict[str, Any], row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        seq=row["seq"], ts=fields["ts"], actor=fields["actor"], roles=list(fields["roles"]), action=fields["action"],
        subject=fields["subject"], decision=fields["decision"], reasons=list(fields["reasons"]),
        digests=dict(fields["digests"]), details=dict(fields["details"]), host=fields["host"],
        identity=fields["identity"], leaf_hash=row["leaf_hash"],
    )


def _due(seq: int, signed_size: int, signed_at: str | None) -> bool:
    if signed_at is None:
        return True
    due = current_settings()
    return seq - signed_size >= due.audit_head_every or age_seconds(signed_at) >= due.audit_head_seconds


def _append(session: Session | Connection, fields: dict[str, Any]) -> tuple[AuditEntry, bool, str]:
    """Insert one entry, the locking way; returns it, whether a signed head is due, and the peaks after it."""
    # Lock the head row first, before reading anything (a row lock on PostgreSQL, the database
    # write lock on SQLite) and take the next sequence number in the same statement: every
    # appender queues here, so sequence numbers and the tree never fork.
    seq, peaks_json, signed_size, signed_at = session.execute(_NEXT_SEQ).one()
    row, peaks = _next(fields, seq, peaks_json)
    session.execute(_INSERT_ENTRY, row)
    session.execute(_SET_PEAKS, {"peaks": peaks})
    return _entry(fields, row), _due(seq, signed_size, signed_at), peaks


# --- PostgreSQL's fast path: one statement, its own transaction ---
#
# The locking path costs a round trip per step (BEGIN, lock the head and read it, insert, write the
# peaks, COMMIT). A process appending again usually knows the head already: it wrote it last. So it
# computes entry seq+1 from the head it remembers and sends ONE statement that moves the head and
# inserts the entry only if the head is still exactly that one (same seq and same peaks: the peaks
# fix the whole tree up to seq, so nothing else about the head matters to the next leaf). Under
# READ COMMITTED an UPDATE that waits for another appender's row lock re-checks its WHERE against
# the row that appender committed, so at most one of two racing appenders matches; the other gets
# no row, inserts nothing (the INSERT reads the CTE) and takes the locking path, which also
# refreshes what it remembers. The guard is the whole head, never a guess: a database restored
# from a backup, another process or a `session=` append all make it miss, never fork the tree.
# SQLite has no data-modifying CTEs, and its statements cost no round trip: it keeps the locking path.
# Sent through the pooled DBAPI connection itself, not a Core statement: on a path this short,
# SQLAlchemy's per-execution work (compiled-cache lookup, parameter processing, result set-up) is a
# fair share of the client's time. psycopg prepares it on the server after a few uses.
_COLUMNS = (*HASHED_FIELDS, "leaf_hash", "seal")
_FAST = (
    "WITH h AS (UPDATE audit_head SET seq = %(seq)s, peaks = %(peaks)s"  # noqa: S608 (only our column names)
    " WHERE id = 1 AND seq = %(seq)s - 1 AND peaks = %(prev_peaks)s RETURNING seq, signed_size, signed_at),"
    f" i AS (INSERT INTO audit_entries ({', '.join(_COLUMNS)})"
    f" SELECT {', '.join('h.seq' if c == 'seq' else f'CAST(%({c})s AS TEXT)' for c in _COLUMNS)} FROM h"
    " RETURNING seq)"
    " SELECT h.signed_size, h.signed_at FROM h JOIN i ON i.seq = h.seq"
)
# Engine -> (seq, peaks) this process last committed there: a hint, checked by the statement itself.
# Engines, not URLs: a new engine (reset_engines) starts without a hint.
_known: weakref.WeakKeyDictionary[Engine, tuple[int, str]] = weakref.WeakKeyDictionary()
_LANDED = text("SELECT leaf_hash FROM audit_entries WHERE seq = :seq")
_LOCK_HEAD = text("SELECT signed_size, signed_at FROM audit_head WHERE id = 1 FOR UPDATE")


class _Lost(Exception):
    """The fast statement's connection broke: it may or may not have committed."""

    def __init__(self, row: dict[str, Any], peaks: str) -> None:
        super().__init__(row["seq"])
        self.row, self.peaks = row, peaks


def _fast(engine: Engine, fields: dict[str, Any]) -> tuple[AuditEntry, bool] | None:
    """The one-statement append from the remembered head, or None when the head moved."""
    known = _known.get(engine)
    if known is None:
        return None
    seq, peaks = known[0] + 1, known[1]
    row, new_peaks = _next(fields, seq, peaks)
    conn = engine.raw_connection()  # autocommit (store.db.append_engine): the statement is the transaction
    try:
        cur = conn.cursor()
        cur.execute(_FAST, {**row, "seq": seq, "peaks": new_peaks, "prev_peaks": peaks})
        got = cur.fetchone()
        cur.close()
    except engine.dialect.loaded_dbapi.Error as exc:
        if engine.dialect.is_disconnect(exc, conn.dbapi_connection, None):  # no pre-ping on this pool
            conn.invalidate(exc)
            engine.dispose()  # as SQLAlchemy does on a disconnect: the others in the pool likely died too
            raise _Lost(row, new_peaks) from exc
        raise
    finally:
        conn.close()  # back to the pool; its reset sends nothing (no transaction is open)
    if got is None:
        return None
    # Always overwrite, never "keep the highest": after a database restore the lower head is the
    # true one. Two threads finishing out of order leave an older hint, which costs one miss.
    _known[engine] = (seq, new_peaks)
    return _entry(fields, row), _due(seq, got[0], got[1])


def _append_alone(fields: dict[str, Any]) -> tuple[AuditEntry, bool]:
    """Append in a transaction of its own: the fast path on PostgreSQL when this process knows the
    head, else (and whenever it misses) the locking path, on the main pool (which pings)."""
    fast_engine = append_engine()
    lost: _Lost | None = None
    if fast_engine.dialect.name == "postgresql":
        try:
            done = _fast(fast_engine, fields)
        except _Lost as exc:
            done, lost = None, exc
        if done is not None:
            return done
    with get_engine().begin() as conn:  # a plain Core transaction: no ORM session to set up per entry
        if conn.dialect.name == "postgresql":
            # The PostgreSQL twin of SQLite's synchronous=NORMAL, for this transaction only: commit
            # without waiting for the WAL flush (never inconsistent; a crash may lose the newest
            # entries). The next signed head's commit flushes them before the head leaves the database.
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
        if lost is not None:
            # Did the lost statement commit before its connection broke? Lock the head first: a
            # statement still running on the server holds that lock until it ends, so after it the
            # answer is final. Then its entry, with exactly our leaf hash, is there or not: one
            # entry either way, never two, never none.
            signed_size, signed_at = conn.execute(_LOCK_HEAD).one()
            if conn.execute(_LANDED, {"seq": lost.row["seq"]}).scalar() == lost.row["leaf_hash"]:
                _known[fast_engine] = (lost.row["seq"], lost.peaks)
                return _entry(fields, lost.row), _due(lost.row["seq"], signed_size, signed_at)
        entry, due, peaks = _append(conn, fields)
    _known[fast_engine] = (entry.seq, peaks)  # committed: the fast path may start from here
    return entry, due


_METHODS = {"verified": "oidc", "delegated": "delegated", "asserted": "asserted", "os-user": "os-user"}


def _acting_identity(me: acting.Actor) -> dict[str, Any]:
    """The process's acting identity (control_plane.identity), as an entry's identity field."""
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
    """Append one entry. Safe from any process at any time (appends serialise on the head row, or
    match it exactly on the fast path).

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
        me = acting.current()  # once: without a bound identity it reads the token cache and roles file
        ident = _acting_identity(me)
        # How we know who acted, also in the entry's details (what `audit list` shows).
        details = {**dict(details or {}), "identity": me.audit_view()}
    who = str(ident.get("actor") or "unknown")
    roles = [str(r) for r in ident.get("roles", [])]
    fields = {
        "ts": now(),
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
        # The caller's transaction may still roll back: nothing is remembered for the fast path
        # (this process's next append there misses once and takes the locking path).
        entry, due, _peaks = _append(session, fields)
        if due:
            # The head is signed only once the entry is durable; before that it would be ahead.
            event.listen(session, "after_commit", lambda _s: _auto_checkpoint(), once=True)
        return entry
    entry, due = _append_alone(fields)
    if due:
        _auto_checkpoint()
    return entry


def _auto_checkpoint() -> None:
    """A head due after an append: never fails the action that was audited (the entry is durable
    and sealed); a failure leaves the head due, so the next append tries again."""
    try:
        checkpoint(strict=False)
    except MlctlError as exc:
        print(f"warning: audit tree head not signed yet: {exc}", file=sys.stderr)
