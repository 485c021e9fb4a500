"""Baseline: an empty schema that later revisions build on.

Revision ID: 0000
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

revision = "0000"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
