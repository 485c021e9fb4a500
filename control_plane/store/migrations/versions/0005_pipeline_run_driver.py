"""Pipeline runs record the process driving them (``host:pid``), so that a server start can end the
runs a stopped process left ``running``. Older rows have none: nothing can tell whether their driver
lives, so they are left as they are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pipeline_runs", sa.Column("driver", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("driver")
