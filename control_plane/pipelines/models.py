"""The ``pipeline_runs`` and ``pipeline_changes`` tables (created by migration 0003; ``driver`` since 0005)."""

from __future__ import annotations

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.store import Base


class PipelineRunRow(Base):
    __tablename__ = "pipeline_runs"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # the run id (also KFP's run name)
    pipeline: Mapped[str] = mapped_column(String(63), index=True)
    engine: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(20))  # manual | watch | event
    change_key: Mapped[str] = mapped_column(String(64), index=True)
    dataset: Mapped[str] = mapped_column(Text)
    features: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # running | succeeded | failed | submitted
    failed_step: Mapped[str | None] = mapped_column(String(40), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    hint: Mapped[str | None] = mapped_column(Text, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    registered: Mapped[str | None] = mapped_column(String(200), nullable=True)
    steps: Mapped[str] = mapped_column(Text, default="{}")  # JSON: step -> state, times
    result: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[str] = mapped_column(String(40))
    finished_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # the process driving a local run, ``host:pid`` (migration 0005): a run left ``running`` by a
    # process that is gone is ended at the next server start (``service.end_orphaned_runs``)
    driver: Mapped[str | None] = mapped_column(String(200), nullable=True)


class PipelineChangeRow(Base):
    """One observed change of a pipeline's inputs; the unique key makes `watch` start one run per change."""

    __tablename__ = "pipeline_changes"
    __table_args__ = (UniqueConstraint("pipeline", "change_key", name="uq_pipeline_changes_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(63))
    change_key: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)  # JSON: version id, etag, digest, feature schema digest
    run_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    seen_by: Mapped[str] = mapped_column(String(200))
    seen_at: Mapped[str] = mapped_column(String(40))
