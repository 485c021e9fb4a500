"""Append, checkpoint, verify, prove and export the audit log: the names callers use, in one place.

The log's parts live in their own modules: :mod:`~control_plane.audit.append` (one short
transaction per entry), :mod:`~control_plane.audit.checkpoints` (signed tree heads and their
anchoring), :mod:`~control_plane.audit.verification` with :mod:`~control_plane.audit.walk` and
:mod:`~control_plane.audit.reconcile` (the full check), :mod:`~control_plane.audit.proofs`
(RFC 9162 inclusion and consistency) and :mod:`~control_plane.audit.read` (listing and export).
"""

from __future__ import annotations

from control_plane.audit.append import DECISIONS, record
from control_plane.audit.checkpoints import checkpoint
from control_plane.audit.proofs import consistency, prove
from control_plane.audit.read import entries, export, signed_heads
from control_plane.audit.records import AuditEntry, AuditReport, now
from control_plane.audit.verification import verify

# The timestamp format every entry and head carries (bench/audit.py stamps its floor rows with it).
_now = now

__all__ = [
    "DECISIONS", "AuditEntry", "AuditReport", "checkpoint", "consistency", "entries", "export", "prove", "record",
    "signed_heads", "verify",
]
