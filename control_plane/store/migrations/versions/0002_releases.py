"""Release engine: releases, transitions, the per-service lock and the live-service record.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("service", sa.String(63), nullable=False, index=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("digest", sa.String(100), nullable=False),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("target", sa.String(30), nullable=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("colour", sa.String(10), nullable=False),
        sa.Column("previous_colour", sa.String(10), nullable=True),
        sa.Column("previous_version", sa.String(100), nullable=True),
        sa.Column("paused", sa.Text, nullable=True),
        sa.Column("requested", sa.String(20), nullable=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("deployment", sa.Text, nullable=False),
        sa.Column("analysis", sa.Text, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("baseline", sa.Text, nullable=True),
        sa.Column("switched_at", sa.Float, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "release_transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("release_id", sa.String(40), nullable=False, index=True),
        sa.Column("from_state", sa.String(30), nullable=False),
        sa.Column("to_state", sa.String(30), nullable=False),
        sa.Column("phase", sa.String(10), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "release_locks",
        sa.Column("service", sa.String(63), primary_key=True),
        sa.Column("release_id", sa.String(40), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "release_services",
        sa.Column("service", sa.String(63), primary_key=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("live_colour", sa.String(10), nullable=False),
        sa.Column("live_version", sa.String(100), nullable=False),
        sa.Column("live_release_id", sa.String(40), nullable=False),
        sa.Column("previous_colour", sa.String(10), nullable=True),
        sa.Column("previous_version", sa.String(100), nullable=True),
        sa.Column("previous_release_id", sa.String(40), nullable=True),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    for table in ("release_services", "release_locks", "release_transitions", "releases"):
        op.drop_table(table)
