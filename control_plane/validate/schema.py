"""Kept importable from here; schema inference and checking live in :mod:`control_plane.data.schema`
(a leaf: the registry records a schema at registration without depending on validation)."""

from control_plane.data.schema import (
    MAX_CATEGORIES,
    RANGE_MARGIN,
    SCHEMA_VERSION,
    SchemaViolation,
    as_frame,
    check_schema,
    infer_schema,
)

__all__ = [
    "MAX_CATEGORIES", "RANGE_MARGIN", "SCHEMA_VERSION", "SchemaViolation", "as_frame", "check_schema", "infer_schema",
]
