"""Verify the whole audit log: :func:`verify` names the first bad entry, or the head it cannot
reconcile."""

from __future__ import annotations

from control_plane.audit import heads
from control_plane.audit.candidates import collect_heads, describe
from control_plane.audit.parallel import walk_parallel
from control_plane.audit.reconcile import anchored_heads, reconcile_anchors
from control_plane.audit.records import AuditReport
from control_plane.signing.signers import LocalSigner
from control_plane.store import get_engine


def verify(workers: int | None = None) -> AuditReport:
    """Check every entry (order, leaf hash, seal), rebuild the Merkle tree and reconcile it with every
    validly signed head: database, local copy and the audit bucket. Names the first bad entry, or
    the head that cannot be reconciled. ``workers``: see :func:`~control_plane.audit.parallel.walk_parallel`."""
    report = AuditReport(ok=True, entries=0)
    keyring = heads.Keyring.trusted()
    if keyring.source.startswith(f"the {LocalSigner.kind}"):
        report.notes.append("heads verified with the development key: set MLCTL_AUDIT_TRUSTED_KEYS to the operator's "
                            "keyring (or MLCTL_AUDIT_SIGNER=kms) for an environment that matters")
    with get_engine().connect() as conn:
        by_size = collect_heads(conn, keyring, report)
        anchored = anchored_heads(conn, report)
        walk = walk_parallel(conn, by_size, anchored.by_size if anchored else {}, report, workers)
    size, covered = walk.size, walk.covered
    if report.first_bad is None and anchored is not None:
        reconcile_anchors(walk, anchored, keyring, report)
    if report.first_bad is None:
        beyond = [c for cs in by_size.values() for c in cs if c.head.size > size]
        if beyond:
            worst = max(beyond, key=lambda c: c.head.size)
            missing = f"#{size + 1}" if worst.head.size == size + 1 else f"#{size + 1}..#{worst.head.size}"
            report.problems.append(
                f"entry {missing} is missing: the {describe(worst)} covers {worst.head.size} entries but the log "
                f"ends at #{size} (newest entries deleted)"
            )
            report.first_bad = size + 1
        elif size and walk.reconciled is None:
            report.problems.append("entry #1 is not covered by any validly signed tree head (heads removed or forged)")
            report.first_bad = 1
        elif size > covered:
            report.notes.append(
                f"entries #{covered + 1}..#{size} are sealed but not yet covered by a signed head (one is issued "
                "every MLCTL_AUDIT_HEAD_EVERY entries or MLCTL_AUDIT_HEAD_SECONDS, at the end of each release, "
                "or by `mlctl audit checkpoint`)"
            )
    if walk.reconciled is not None:
        report.checkpoint = {**walk.reconciled.head.payload(), "source": walk.reconciled.source}
    report.ok = not report.problems
    return report
