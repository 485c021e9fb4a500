"""Kept importable from here; the reader lives in :mod:`control_plane.data.tables` (a leaf that the
PII scanner and the registry use without depending on monitoring)."""

from control_plane.data.tables import FORMATS, read_table

__all__ = ["FORMATS", "read_table"]
