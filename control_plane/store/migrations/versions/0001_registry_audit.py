"""Registry, approvals and the audit trail.

Revision ID: 0001
Revises: 0000
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = "0000"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("digests", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("checkpoint", sa.Text, nullable=False),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("checkpoint", sa.Text, nullable=True),
    )
    # The single row every append locks; it exists from the start so the lock always has a target.
    op.bulk_insert(head, [{"id": 1, "seq": 0, "entry_hash": GENESIS, "checkpoint": None}])

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("root_digest", sa.String(71), nullable=False),
        sa.Column("files", sa.Text, nullable=False),
        sa.Column("artifact_uri", sa.String(1024), nullable=False),
        sa.Column("classification", sa.String(20), nullable=False),
        sa.Column("lineage", sa.Text, nullable=False),
        sa.Column("derived_from", sa.String(200), nullable=True),
        sa.Column("registered_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("provenance", sa.Text, nullable=False),
        sa.Column("provenance_envelope", sa.Text, nullable=True),
        sa.Column("signature", sa.LargeBinary, nullable=True),
        sa.Column("signer_kind", sa.String(20), nullable=True),
        sa.Column("key_id", sa.String(200), nullable=True),
        sa.Column("public_key_pem", sa.Text, nullable=True),
        sa.Column("signed_by", sa.String(200), nullable=True),
        sa.Column("signed_at", sa.String(40), nullable=True),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("env", sa.String(32), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("root_digest", sa.String(71), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("name", "version", "env", "approver", name="uq_approvals_once_per_approver"),
    )


def downgrade() -> None:
    op.drop_table("approvals")
    op.drop_table("model_versions")
    op.drop_table("audit_head")
    op.drop_table("audit_entries")
