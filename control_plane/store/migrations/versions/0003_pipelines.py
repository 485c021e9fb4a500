"""Continuous-training pipelines: runs, and the input changes that `mlctl pipeline watch` has seen.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("pipeline", sa.String(63), nullable=False, index=True),
        sa.Column("engine", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("change_key", sa.String(64), nullable=False, index=True),
        sa.Column("dataset", sa.Text, nullable=False),
        sa.Column("features", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("failed_step", sa.String(40), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("hint", sa.Text, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("registered", sa.String(200), nullable=True),
        sa.Column("steps", sa.Text, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40), nullable=True),
    )
    op.create_table(
        "pipeline_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(63), nullable=False),
        sa.Column("change_key", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(80), nullable=True),
        sa.Column("seen_by", sa.String(200), nullable=False),
        sa.Column("seen_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("pipeline", "change_key", name="uq_pipeline_changes_key"),
    )


def downgrade() -> None:
    op.drop_table("pipeline_changes")
    op.drop_table("pipeline_runs")
