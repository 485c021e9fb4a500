"""The tamper-evident audit trail: an append-only hash chain with signed head checkpoints.

Every state-changing action anywhere in mlctl calls :func:`record`; :func:`verify` names the first
bad entry; :func:`export` writes JSON lines. The only personal data is the actor id.
"""

from control_plane.audit.trail import AuditEntry, AuditReport, entries, export, record, verify

__all__ = ["AuditEntry", "AuditReport", "entries", "export", "record", "verify"]
