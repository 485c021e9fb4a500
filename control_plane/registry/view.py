"""The read model of a registered version, as other parts of mlctl see it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from control_plane.registry.models import ModelVersionRow


@dataclass(frozen=True)
class SignatureInfo:
    signed: bool
    signer_kind: str | None = None
    key_id: str | None = None
    signed_by: str | None = None
    signed_at: str | None = None
    provenance_signed: bool = False


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    files: dict[str, str]  # relpath -> sha256 hex
    root_digest: str  # sha256:<hex>, the model-signing subject digest
    artifact_uri: str
    classification: str
    lineage: dict[str, Any]
    signature: SignatureInfo
    registered_by: str
    created_at: str
    derived_from: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    created: bool = field(default=False, compare=False)  # True when this call registered it

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def root_hex(self) -> str:
        return self.root_digest.split(":", 1)[1]

    @property
    def size_files(self) -> int:
        return len(self.files)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ref"] = self.ref
        return d

    @classmethod
    def from_row(cls, row: ModelVersionRow, *, created: bool = False) -> ModelVersion:
        return cls(
            name=row.name, version=row.version, files=json.loads(row.files), root_digest=row.root_digest,
            artifact_uri=row.artifact_uri, classification=row.classification, lineage=json.loads(row.lineage),
            signature=SignatureInfo(
                signed=row.signature is not None, signer_kind=row.signer_kind, key_id=row.key_id,
                signed_by=row.signed_by, signed_at=row.signed_at,
                provenance_signed=row.provenance_envelope is not None,
            ),
            registered_by=row.registered_by, created_at=row.created_at, derived_from=row.derived_from,
            provenance=json.loads(row.provenance), created=created,
        )
