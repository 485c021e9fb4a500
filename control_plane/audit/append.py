"""Append one entry to the audit log: :func:`record`.

Appending is one short transaction: lock the head row, insert the entry with its leaf hash and
seal, extend the compact range. No signature is made per entry; a signed tree head is issued
when ``MLCTL_AUDIT_HEAD_EVERY`` entries or ``MLCTL_AUDIT_HEAD_SECONDS`` have passed since the last
one (the head itself is made in :mod:`control_plane.audit.checkpoints`).
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, event, insert, update
from sqlalchemy.orm import Session

from control_plane import identity as acting  # `identity` is record()'s parameter
from control_plane.audit import merkle, seal
from control_plane.audit.checkpoints import checkpoint
from control_plane.audit.entry import HASHED_FIELDS, Identity, canonical_json, leaf_data, stored_columns
from control_plane.audit.models import AuditHead, AuditRow
from control_plane.audit.records import AuditEntry, age_seconds, now
from control_plane.errors import MlctlError
from control_plane.settings import audit_head_every, audit_head_seconds
from control_plane.store import get_engine

DECISIONS = ("allow", "deny", "error")
_HEAD = cast(Table, AuditHead.__table__)
_ENTRIES = cast(Table, AuditRow.__table__)
# Prebuilt Core statements: the append path is a handful of cached, compiled statements, which is
# most of what makes one transaction per entry fast.
_NEXT_SEQ = (update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + 1)
             .returning(_HEAD.c.seq, _HEAD.c.peaks, _HEAD.c.signed_size, _HEAD.c.signed_at))
_INSERT_ENTRY = insert(_ENTRIES)
_SET_PEAKS = update(_HEAD).where(_HEAD.c.id == 1).values(peaks=bindparam("peaks"))


def _append(session: Session | Connection, fields: dict[str, Any]) -> tuple[AuditEntry, bool]:
    """Insert one entry; returns it and whether a signed head is due."""
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
           or age_seconds(signed_at) >= audit_head_seconds())
    entry = AuditEntry(
        seq=seq, ts=fields["ts"], actor=fields["actor"], roles=list(fields["roles"]), action=fields["action"],
        subject=fields["subject"], decision=fields["decision"], reasons=list(fields["reasons"]),
        digests=dict(fields["digests"]), details=dict(fields["details"]), host=fields["host"],
        identity=fields["identity"], leaf_hash=leaf.hex(),
    )
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


def _auto_checkpoint() -> None:
    """A head due after an append: never fails the action that was audited (the entry is durable
    and sealed); a failure leaves the head due, so the next append tries again."""
    try:
        checkpoint(strict=False)
    except MlctlError as exc:
        print(f"warning: audit tree head not signed yet: {exc}", file=sys.stderr)
