"""Release tables: releases, their transition history, the per-service lock and what is live.

The lock is a row keyed by service: taking it is one INSERT, which the primary key makes atomic
on SQLite and PostgreSQL alike, so two ``mlctl release`` processes can never both drive a
service. Timestamps are ISO-8601 UTC strings (as in the audit tables) so both engines agree.
JSON columns are text holding canonical JSON.
"""

from __future__ import annotations

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.store import Base


class ReleaseRow(Base):
    __tablename__ = "releases"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    service: Mapped[str] = mapped_column(String(63), index=True)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    digest: Mapped[str] = mapped_column(String(100), default="")
    environment: Mapped[str] = mapped_column(String(100))
    strategy: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(30))
    target: Mapped[str | None] = mapped_column(String(30), nullable=True)  # transition in progress
    step: Mapped[int] = mapped_column(Integer, default=0)  # canary step index
    colour: Mapped[str] = mapped_column(String(10))  # the candidate's colour
    previous_colour: Mapped[str | None] = mapped_column(String(10), nullable=True)
    previous_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    paused: Mapped[str | None] = mapped_column(Text, nullable=True)  # why a person is needed
    requested: Mapped[str | None] = mapped_column(String(20), nullable=True)  # promote | abort
    config: Mapped[str] = mapped_column(Text)  # strategy settings (JSON)
    deployment: Mapped[str] = mapped_column(Text, default="{}")  # drivers.base.Deployment (JSON)
    analysis: Mapped[str] = mapped_column(Text, default="[]")  # results (JSON list)
    reasons: Mapped[str] = mapped_column(Text, default="[]")  # failure reasons (JSON list)
    baseline: Mapped[str | None] = mapped_column(Text, nullable=True)  # open analysis window (JSON)
    switched_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[str] = mapped_column(String(40))


class TransitionRow(Base):
    __tablename__ = "release_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    release_id: Mapped[str] = mapped_column(String(40), index=True)
    from_state: Mapped[str] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    phase: Mapped[str] = mapped_column(String(10))  # begin | done
    at: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="{}")


class ServiceLockRow(Base):
    __tablename__ = "release_locks"

    service: Mapped[str] = mapped_column(String(63), primary_key=True)
    release_id: Mapped[str] = mapped_column(String(40))
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[str] = mapped_column(String(40))


class LiveServiceRow(Base):
    """What production traffic is served by, per service (kept in step with the driver)."""

    __tablename__ = "release_services"

    service: Mapped[str] = mapped_column(String(63), primary_key=True)
    environment: Mapped[str] = mapped_column(String(100))
    live_colour: Mapped[str] = mapped_column(String(10))
    live_version: Mapped[str] = mapped_column(String(100))
    live_release_id: Mapped[str] = mapped_column(String(40))
    previous_colour: Mapped[str | None] = mapped_column(String(10), nullable=True)
    previous_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    previous_release_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    updated_at: Mapped[str] = mapped_column(String(40))
