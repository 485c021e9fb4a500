"""Audit tables: an append-only chain of entries plus one head row.

The head row is what every append locks first (``UPDATE ... WHERE id = 1``): on PostgreSQL that
is a row lock, on SQLite it takes the database write lock, so appends from any number of
processes serialise on it and the chain never forks. The head row also carries the newest signed
checkpoint; a second copy lives outside the database (``$MLCTL_HOME/audit/checkpoint.json``).
"""

from __future__ import annotations

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.store import Base

GENESIS = "0" * 64


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
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
    # The signed checkpoint made when this entry was the head: rewriting the chain from an entry
    # onwards (recomputing every hash) is caught at that entry, since nobody else can sign.
    checkpoint: Mapped[str] = mapped_column(Text)


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    entry_hash: Mapped[str] = mapped_column(String(64))
    checkpoint: Mapped[str | None] = mapped_column(Text, nullable=True)  # signed checkpoint JSON
