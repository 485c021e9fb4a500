"""The ``model_versions`` and ``approvals`` tables (created by migration 0001)."""

from __future__ import annotations

from sqlalchemy import Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.store import Base


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    root_digest: Mapped[str] = mapped_column(String(71))  # sha256:<hex>
    files: Mapped[str] = mapped_column(Text)  # JSON {relpath: sha256 hex}
    artifact_uri: Mapped[str] = mapped_column(String(1024))
    classification: Mapped[str] = mapped_column(String(20))
    lineage: Mapped[str] = mapped_column(Text)  # JSON
    derived_from: Mapped[str | None] = mapped_column(String(200), nullable=True)
    registered_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[str] = mapped_column(String(40))
    provenance: Mapped[str] = mapped_column(Text)  # JSON in-toto statement
    provenance_envelope: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON DSSE envelope
    signature: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # model-signing bundle
    signer_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    public_key_pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    signed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    signed_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class ApprovalRow(Base):
    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("name", "version", "env", "approver", name="uq_approvals_once_per_approver"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    env: Mapped[str] = mapped_column(String(32))
    approver: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(Text)
    root_digest: Mapped[str] = mapped_column(String(71))
    created_at: Mapped[str] = mapped_column(String(40))
