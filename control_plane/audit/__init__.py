"""The tamper-evident audit log: a Merkle transparency log (RFC 9162) with batched signed tree heads
anchored in the environment's object-locked audit bucket.

Every state-changing action anywhere in mlctl calls :func:`record`; :func:`checkpoint` signs a tree
head now (the release engine calls it when a release ends); :func:`verify` names the first bad
entry or the head it cannot reconcile; :func:`prove` gives an inclusion proof; :func:`export`
writes JSON lines. The only personal data is the actor id (and a verified token's subject).
"""

from control_plane.audit.entry import Identity
from control_plane.audit.trail import (
    AuditEntry,
    AuditReport,
    checkpoint,
    consistency,
    entries,
    export,
    prove,
    record,
    signed_heads,
    verify,
)

__all__ = [
    "AuditEntry", "AuditReport", "Identity", "checkpoint", "consistency", "entries", "export", "prove", "record",
    "signed_heads", "verify",
]
