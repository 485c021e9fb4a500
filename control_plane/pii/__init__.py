"""PII guard: find UAE-relevant personal identifiers in data and refuse untagged data that has them.

Public surface:

- ``scan_path(path) -> list[Finding]``: kinds and places (file, row, column, count), never values.
- ``refuse_unless_classified(findings, classification)``: raises ``PolicyViolation`` when findings
  exist and the data is not classified ``pii``.
- ``guard(path, classification) -> list[Finding]``: both in one call (what ``mlctl model register``
  runs on sample inputs and feature data).
"""

from __future__ import annotations

from pathlib import Path

from control_plane.errors import PolicyViolation
from control_plane.pii.detectors import KINDS, find_kinds, iban_ok, kinds_in, luhn_ok, redact
from control_plane.pii.scanner import Finding, scan_path, scan_text, summarize

PII_CLASSIFICATION = "pii"
CLASSIFICATIONS = ("public", "internal", "confidential", PII_CLASSIFICATION)  # as the registry

__all__ = [
    "CLASSIFICATIONS",
    "KINDS",
    "PII_CLASSIFICATION",
    "Finding",
    "find_kinds",
    "guard",
    "iban_ok",
    "kinds_in",
    "luhn_ok",
    "redact",
    "refuse_unless_classified",
    "scan_path",
    "scan_text",
    "summarize",
]


def refuse_unless_classified(findings: list[Finding], classification: str | None) -> None:
    """Data carrying PII may only be used when it is tagged ``pii`` (then its handling is governed)."""
    if not findings or (classification or "").strip().lower() == PII_CLASSIFICATION:
        return
    counts = summarize(findings)
    places = "; ".join(f"{f.kind} at {f.place()}" for f in findings[:5])
    more = f" (and {len(findings) - 5} more places)" if len(findings) > 5 else ""
    tag = classification or "none"
    raise PolicyViolation(
        f"personal data found in data classified {tag!r}: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + f" — {places}{more}",
        hint="remove or pseudonymise those fields, or classify the data set as `pii` "
        "(--classification pii) so that its handling is governed",
    )


def guard(path: str | Path, classification: str | None) -> list[Finding]:
    """Scan ``path`` and refuse it unless it is PII-free or classified ``pii``; returns the findings."""
    findings = scan_path(path)
    try:
        refuse_unless_classified(findings, classification)
    except PolicyViolation as exc:
        _audit(path, classification, findings, exc.message)
        raise
    _audit(path, classification, findings, None)
    return findings


def _audit(path: str | Path, classification: str | None, findings: list[Finding], denied: str | None) -> None:
    """Kinds, counts and places only: the trail must never become a copy of the personal data."""
    from control_plane import (
        audit,  # lazy: the trail (SQLAlchemy, signers) only when a guard decides; the model server imports pii for its detectors
    )

    audit.record(
        action="pii.guard",
        subject=str(path),
        decision="deny" if denied else "allow",
        reasons=[denied] if denied else [],
        details={
            "classification": classification,
            "counts": summarize(findings),
            "places": [{"kind": f.kind, "row": f.row, "column": f.column} for f in findings[:50]],
        },
    )
