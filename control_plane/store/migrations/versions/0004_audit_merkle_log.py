"""The audit trail becomes a Merkle transparency log with batched signed tree heads.

Entries gain ``identity`` (who acted and how that was established), ``leaf_hash`` (RFC 9162 leaf)
and ``seal`` (host HMAC); the head row gains the tree's compact range; ``audit_tree_heads`` keeps
every signed head. The old per-entry chain columns stay, nullable, as evidence.

Upgrade path from the hash chain: the old chain is re-walked first (every ``entry_hash`` recomputed
and linked); a broken chain stops the upgrade, naming the entry, rather than sealing tampered
entries into the new tree. The first append after the upgrade signs a head over all of them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
_OLD_FIELDS = ("seq", "ts", "actor", "roles", "action", "subject", "decision", "reasons", "digests", "details", "host")


def _old_chain_hash(prev: str, row: sa.Row) -> str:
    # Frozen copy of the 0001 chain formula (control_plane.audit.chain before 0004).
    fields = {k: (json.loads(getattr(row, k)) if k in ("roles", "reasons", "digests", "details") else getattr(row, k))
              for k in _OLD_FIELDS}
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("audit_entries") as b:
        b.add_column(sa.Column("identity", sa.Text, nullable=True))
        b.add_column(sa.Column("leaf_hash", sa.String(64), nullable=True))
        b.add_column(sa.Column("seal", sa.String(64), nullable=True))
        b.alter_column("prev_hash", existing_type=sa.String(64), nullable=True)
        b.alter_column("entry_hash", existing_type=sa.String(64), nullable=True)
        b.alter_column("checkpoint", existing_type=sa.Text, nullable=True)
    with op.batch_alter_table("audit_head") as b:
        b.add_column(sa.Column("peaks", sa.Text, nullable=False, server_default="[]"))
        b.add_column(sa.Column("signed_size", sa.Integer, nullable=False, server_default="0"))
        b.add_column(sa.Column("signed_at", sa.String(40), nullable=True))
        b.alter_column("entry_hash", existing_type=sa.String(64), nullable=True)
    op.create_table(
        "audit_tree_heads",
        sa.Column("size", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("ts", sa.String(40), nullable=False),
        sa.Column("head", sa.Text, nullable=False),
        sa.Column("anchor", sa.String(1024), nullable=True),
    )
    _migrate_chain()


def _migrate_chain() -> None:
    # A migration is otherwise self-contained (alembic loads every revision file to build its graph,
    # and a revision must not change when the code does); this data migration alone borrows the
    # audit trail's hashing, and only while the 0003 -> 0004 upgrade runs.
    from control_plane.audit import merkle, seal  # lazy: only this upgrade needs it
    from control_plane.audit.entry import HASHED_FIELDS, leaf_data  # lazy: only this upgrade needs it
    from control_plane.errors import VerificationFailed  # lazy: only this upgrade needs it

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT * FROM audit_entries ORDER BY seq")).fetchall()
    if not rows:
        return
    key = seal.key()
    prev, expected = GENESIS, 1
    tree = merkle.CompactRange()
    updates = []
    for row in rows:
        if row.seq != expected or row.prev_hash != prev or _old_chain_hash(prev, row) != row.entry_hash:
            raise VerificationFailed(
                f"audit entry #{row.seq} fails the old hash chain (edited, deleted or reordered): the upgrade to "
                "the Merkle audit log stops here rather than seal tampered entries",
                hint="restore the audit tables from backup, then run any mlctl command again to upgrade",
            )
        values = [None if f == "identity" else getattr(row, f) for f in HASHED_FIELDS]
        leaf = merkle.leaf_hash(leaf_data(values))
        tree.append(leaf)
        updates.append({"s": row.seq, "l": leaf.hex(), "m": seal.seal(leaf, key)})
        prev, expected = row.entry_hash, expected + 1
    conn.execute(sa.text("UPDATE audit_entries SET leaf_hash = :l, seal = :m WHERE seq = :s"), updates)
    conn.execute(sa.text("UPDATE audit_head SET peaks = :p WHERE id = 1"),
                 {"p": json.dumps([p.hex() for p in tree.peaks])})


def downgrade() -> None:
    op.drop_table("audit_tree_heads")
    with op.batch_alter_table("audit_head") as b:
        b.drop_column("signed_at")
        b.drop_column("signed_size")
        b.drop_column("peaks")
    with op.batch_alter_table("audit_entries") as b:
        b.drop_column("seal")
        b.drop_column("leaf_hash")
        b.drop_column("identity")
