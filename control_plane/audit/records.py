"""The audit log's two result types: an entry as read back, and a verification report.

Kept apart from the code that writes and checks the log so that every part of it (append,
verification, proofs, export, offline checks) shares them without importing one another.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from control_plane.audit.entry import HASHED_FIELDS
from control_plane.audit.models import AuditRow


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    ts: str
    actor: str
    roles: list[str]
    action: str
    subject: str
    decision: str
    reasons: list[str]
    digests: dict[str, str]
    details: dict[str, Any]
    host: str
    identity: dict[str, Any] | None
    leaf_hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def hashed_fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in HASHED_FIELDS}

    @classmethod
    def from_row(cls, row: AuditRow) -> AuditEntry:
        return cls(
            seq=row.seq, ts=row.ts, actor=row.actor, roles=json.loads(row.roles), action=row.action,
            subject=row.subject, decision=row.decision, reasons=json.loads(row.reasons),
            digests=json.loads(row.digests), details=json.loads(row.details), host=row.host,
            identity=json.loads(row.identity) if row.identity else None, leaf_hash=row.leaf_hash,
        )


@dataclass
class AuditReport:
    ok: bool
    entries: int
    first_bad: int | None = None
    problems: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None  # the newest signed head the log was reconciled with
    anchor: dict[str, Any] | None = None  # the newest head in the audit bucket, if read
    heads_checked: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def age_seconds(ts: str) -> float:
    try:
        then = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (datetime.now(UTC) - then).total_seconds()

