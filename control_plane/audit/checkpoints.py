"""Signed tree heads: :func:`checkpoint` signs a head over the log, stores it durably, keeps a copy
in ``$MLCTL_HOME`` and anchors it in the environment's object-locked audit bucket.

Called when a head is due after an append, when a release ends, and on ``mlctl audit checkpoint``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from control_plane.audit import heads, merkle, subtrees
from control_plane.audit.anchor import S3Anchor
from control_plane.audit.models import AuditHead, TreeHeadRow
from control_plane.audit.records import now
from control_plane.errors import InfraError, MlctlError
from control_plane.settings import audit_anchor_mode
from control_plane.store import get_engine, session_scope

_HEAD = cast(Table, AuditHead.__table__)
_TREE_HEADS = cast(Table, TreeHeadRow.__table__)


def anchor_target(*, for_write: bool) -> tuple[Any, str]:
    """The S3 anchor to use now, or None (with the reason) when anchoring does not apply."""
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
    try:
        anchor, _why = anchor_target(for_write=True)
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
    head = heads.sign(size, tree.root(), now())
    try:
        _store_head(head)
    except IntegrityError:
        # Another process signed this very size first; its head is as good as ours.
        with session_scope() as s:
            head = heads.SignedHead.from_json(s.execute(select(TreeHeadRow.head)
                                                        .where(TreeHeadRow.size == size)).scalar_one())
    heads.write_local(head)
    _anchor_pending(strict)
    # The subtrees this head completed, stored for proofs (audit.subtrees): one 1024-leaf read about
    # once per 1024 entries. Older gaps (a log from before migration 0006) are the first proof's.
    with contextlib.suppress(SQLAlchemyError, MlctlError):
        subtrees.fill(size, newest=2)
    return head
