"""PII verbs: scan data for UAE personal identifiers (kinds and places only, never values).

A scan reads files and needs no permission; with a classification, findings in data not tagged
``pii`` are a policy violation (exit 4), reported after the findings are shown.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.errors import MlctlError
from control_plane.output import table
from control_plane.pii import Finding, refuse_unless_classified, scan_path, summarize
from control_plane.services.context import Context

__all__ = ["ScanView", "scan"]


@dataclass(frozen=True)
class ScanView:
    path: Path
    classification: str | None
    findings: Sequence[Finding]
    refusal: MlctlError | None = None

    def as_json(self) -> Any:
        return {"path": str(self.path), "classification": self.classification,
                "counts": summarize(list(self.findings)), "findings": [f.to_dict() for f in self.findings]}

    def renderables(self) -> Iterator[Any]:
        yield table(f"PII in {self.path}", ["kind", "row", "column", "count", "file"],
                    [(f.kind, f.row, f.column, f.count, f.file) for f in self.findings])
        yield ("no personal identifiers found" if not self.findings
               else ", ".join(f"{n} {k}" for k, n in summarize(list(self.findings)).items()))

    def failure(self) -> MlctlError | None:
        return self.refusal


def scan(ctx: Context, path: Path, *, classification: str | None = None) -> ScanView:
    """Emirates IDs, +971 phones, e-mails, AE IBANs and card numbers in ``path``, by kind and place."""
    return judged(path, classification, scan_path(path))


def judged(path: Path, classification: str | None, findings: Sequence[Finding]) -> ScanView:
    """The findings with the classification rule applied (here, and by the CLI to a server's scan)."""
    refusal: MlctlError | None = None
    if classification is not None:
        try:
            refuse_unless_classified(list(findings), classification)
        except MlctlError as exc:
            refusal = exc
    return ScanView(path, classification, findings, refusal)
