"""Audit tables: the log's entries (Merkle leaves), one head row, and the signed tree heads.

The head row is what every append locks first (``UPDATE ... WHERE id = 1``): on PostgreSQL that
is a row lock, on SQLite it takes the database write lock, so appends from any number of
processes serialise on it and sequence numbers never fork. It carries the tree's compact range
(the peaks, so a head is issued without re-reading the log) and the newest signed head.

``prev_hash``/``entry_hash``/``checkpoint`` on entries are the pre-0004 hash chain, kept (nullable)
as evidence for entries recorded before the upgrade; new entries leave them empty.
"""

from __future__ import annotations

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.store import Base


class AuditRow(Base):
    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(Text)  # canonical JSON list
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(500))
    decision: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[str] = mapped_column(Text)  # canonical JSON list
    digests: Mapped[str] = mapped_column(Text)  # canonical JSON object
    details: Mapped[str] = mapped_column(Text)  # canonical JSON object
    host: Mapped[str] = mapped_column(String(255))
    identity: Mapped[str | None] = mapped_column(Text, nullable=True)  # canonical JSON object (entry.Identity)
    leaf_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256(0x00 || leaf data)
    seal: Mapped[str | None] = mapped_column(String(64), nullable=True)  # hex HMAC-SHA256(host key, leaf hash)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    entry_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checkpoint: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    entry_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # pre-0004 chain head
    checkpoint: Mapped[str | None] = mapped_column(Text, nullable=True)  # the newest signed tree head (JSON)
    peaks: Mapped[str] = mapped_column(Text)  # JSON list of hex subtree roots (merkle.CompactRange)
    signed_size: Mapped[int] = mapped_column(Integer)
    signed_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class TreeHeadRow(Base):
    __tablename__ = "audit_tree_heads"

    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(40))
    head: Mapped[str] = mapped_column(Text)  # the SignedHead JSON, exactly as signed
    anchor: Mapped[str | None] = mapped_column(String(1024), nullable=True)  # s3://... once anchored


class AuditSubtreeRow(Base):
    """The root of leaves ``[start, start + 1024)`` (0-based leaf indexes: entries #start+1..#start+1024),
    stored once all of them exist (``control_plane.audit.subtrees``)."""

    __tablename__ = "audit_subtrees"

    start: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(64))
