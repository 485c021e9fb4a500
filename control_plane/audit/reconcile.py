"""Reconcile the log with the heads anchored in the audit bucket: the copy the host cannot roll
back, so an anchored head that the local tree does not match, or one larger than it, is tampering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from control_plane.audit import heads
from control_plane.audit.checkpoints import anchor_target
from control_plane.audit.models import TreeHeadRow
from control_plane.audit.records import AuditReport
from control_plane.audit.walk import Walk
from control_plane.errors import InfraError
from control_plane.settings import audit_anchor_mode


@dataclass
class Anchored:
    anchor: Any  # anchor.S3Anchor
    by_size: dict[int, list[Any]]  # size -> [anchor.Listed]


def anchored_heads(conn: Connection, report: AuditReport) -> Anchored | None:
    """What the audit bucket holds for this log (names only; heads are fetched when they matter)."""
    try:
        anchor, why = anchor_target(for_write=False)
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
    return Anchored(anchor, by_size)


def _fetch_valid(anchored: Anchored, item: Any, keyring: heads.Keyring, report: AuditReport) -> heads.SignedHead | None:
    head = anchored.anchor.fetch(item.key)
    ok = (head is not None and head.log == heads.log_id() and head.size == item.size and head.root == item.root
          and keyring.verifies(head))
    if not ok:
        report.problems.append(f"{anchored.anchor.uri(item.key)} in the audit bucket is not a validly signed head of "
                               f"this log ({keyring.source}): someone wrote into the audit bucket")
        return None
    return head


def reconcile_anchors(walk: Walk, anchored: Anchored, keyring: heads.Keyring, report: AuditReport) -> None:
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
