"""The roots of the audit log's aligned 1024-leaf subtrees, stored once they are complete, so that a
proof at a million entries reads about a thousand rows instead of every leaf
(``control_plane.audit.subtrees``). A cache of what the leaves say: empty after the upgrade, filled
as proofs and signed heads need it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_subtrees",
        sa.Column("start", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("root", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_subtrees")
