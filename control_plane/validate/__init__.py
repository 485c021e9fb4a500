"""The validation gate: metrics against a baseline, robustness, and data checks against the schema.

- ``validate_version(name, version, env, *, baseline=None, policy=None) -> ValidationReport``: the
  release gate (audited, emits ``gate.decided``);
- ``validate_paths(candidate, baseline, *, policy, environment)``: the same checks on directories;
- ``infer_schema(data) -> dict``: what the registry records at registration; ``check_schema``.
"""

from control_plane.validate.gate import (
    Candidate,
    Check,
    ValidationPolicy,
    ValidationReport,
    record_decision,
    validate_paths,
    validate_version,
)
from control_plane.validate.schema import SchemaViolation, check_schema, infer_schema

__all__ = [
    "Candidate",
    "Check",
    "SchemaViolation",
    "ValidationPolicy",
    "ValidationReport",
    "check_schema",
    "infer_schema",
    "record_decision",
    "validate_paths",
    "validate_version",
]
