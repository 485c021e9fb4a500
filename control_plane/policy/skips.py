"""``policies/skips.yaml``: each finding the gate accepts, with the resource it applies to and why.

A finding not matched here fails the gate; an entry that matches nothing is reported as stale so
the list cannot quietly outlive the problem it excused.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from control_plane.errors import MlctlError
from control_plane.policy.findings import Finding, StaleSkip


class SkipFileError(MlctlError):
    """The skip file is unreadable or an entry lacks its id, resource or reason."""

    exit_code = 2


class SkipEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=3, description="checkov check id (CKV_AWS_144) or Rego rule id (UAE-ENC-003)")
    resource: str = Field(min_length=1, description="resource address or glob, e.g. aws_s3_bucket.*log*")
    stack: str = Field(default="*", description="stack name or glob")
    cloud: str | None = Field(default=None, description="only for stacks of this cloud (aws, azure)")
    reason: str = Field(min_length=20, description="why accepting this is right; reviewed like code")

    def matches(self, finding: Finding, cloud: str) -> bool:
        return (
            fnmatchcase(finding.id, self.id)
            and fnmatchcase(finding.resource, self.resource)
            and fnmatchcase(finding.stack, self.stack)
            and (self.cloud is None or self.cloud == cloud)
        )


def load_skips(path: Path) -> list[SkipEntry]:
    """Entries of the skip file; a missing file means no skips."""
    if not path.exists():
        return []
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SkipFileError(f"{path}: cannot read the skip file: {exc}", hint="fix its YAML syntax") from None
    entries = raw.get("skips") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise SkipFileError(
            f"{path}: expected a mapping with a 'skips' list",
            hint="write `skips:` followed by entries with id, resource and reason",
        )
    out: list[SkipEntry] = []
    for i, entry in enumerate(entries):
        try:
            out.append(SkipEntry.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(entry)'}: {e['msg']}" for e in exc.errors()
            )
            raise SkipFileError(
                f"{path}: skips[{i}] is invalid: {problems}",
                hint="each entry needs id, resource (address or glob) and a reason of at least 20 characters",
            ) from None
    return out


def apply_skips(
    findings: list[Finding], skips: list[SkipEntry], stack_clouds: dict[str, str]
) -> list[StaleSkip]:
    """Mark justified findings (first matching entry wins); return the entries that matched nothing."""
    used: set[int] = set()
    for finding in findings:
        cloud = stack_clouds.get(finding.stack, "")
        for i, entry in enumerate(skips):
            if entry.matches(finding, cloud):
                finding.skipped_reason = entry.reason
                used.add(i)
                break
    checked_clouds = set(stack_clouds.values())
    return [
        StaleSkip(index=i, id=e.id, resource=e.resource, stack=e.stack, reason=e.reason)
        for i, e in enumerate(skips)
        if i not in used and (e.cloud is None or e.cloud in checked_clouds)
    ]
