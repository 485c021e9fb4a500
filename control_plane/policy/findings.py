"""What the infra gate reports: findings (from checkov or our Rego guardrails) and the verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Source = Literal["checkov", "rego"]


@dataclass(frozen=True)
class StackFile:
    """One synthesized stack: its name, its ``cdk.tf.json`` and the cloud its provider targets."""

    name: str
    path: Path
    cloud: str = "aws"


@dataclass
class Finding:
    source: Source
    id: str
    stack: str
    resource: str
    message: str
    file: str = ""
    skipped_reason: str | None = None  # set when policies/skips.yaml justifies it

    @property
    def status(self) -> str:
        return "skipped" if self.skipped_reason is not None else "FAIL"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status
        return out


@dataclass
class StaleSkip:
    """A skip entry that matched no finding: the stack was fixed, or the entry is mistyped."""

    index: int
    id: str
    resource: str
    stack: str
    reason: str


@dataclass
class GateReport:
    blueprint: str
    stacks: list[str]
    findings: list[Finding] = field(default_factory=list)
    stale_skips: list[StaleSkip] = field(default_factory=list)
    checkov_version: str = ""
    skips_file: str = ""

    @property
    def unexplained(self) -> list[Finding]:
        return [f for f in self.findings if f.skipped_reason is None]

    @property
    def skipped(self) -> list[Finding]:
        return [f for f in self.findings if f.skipped_reason is not None]

    @property
    def passed(self) -> bool:
        return not self.unexplained

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = (
            f"{verdict}: {len(self.unexplained)} unexplained finding(s), {len(self.skipped)} skipped with a "
            f"reason, over {len(self.stacks)} stack(s)"
        )
        if self.stale_skips:
            text += f"; {len(self.stale_skips)} stale skip entr{'y' if len(self.stale_skips) == 1 else 'ies'}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "blueprint": self.blueprint,
            "stacks": self.stacks,
            "passed": self.passed,
            "summary": self.summary(),
            "counts": {
                "unexplained": len(self.unexplained),
                "skipped": len(self.skipped),
                "stale_skips": len(self.stale_skips),
            },
            "findings": [f.as_dict() for f in self.findings],
            "stale_skips": [asdict(s) for s in self.stale_skips],
            "checkov_version": self.checkov_version,
            "skips_file": self.skips_file,
        }
