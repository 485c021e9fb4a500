"""The data schema recorded at registration, and the checks of an evaluation set against it.

``infer_schema(data)`` (the registry calls it on the evaluation set / feature data when a version is
registered) records, per column: type (float, int, bool, string), whether nulls occur, the range for
numbers, and the categories for strings and low-cardinality integers. ``check_schema(data, schema)``
returns the violations: missing columns, wrong types, nulls where none were seen, values outside
the recorded range (widened by ``RANGE_MARGIN`` of its span: live data legitimately strays a
little), and categories never seen.

A 2-D array is a table whose columns are ``x_0 .. x_{k-1}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

SCHEMA_VERSION = 1
MAX_CATEGORIES = 50
RANGE_MARGIN = 0.05


def as_frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        return pd.DataFrame(data)
    arr = np.asarray(data)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"expected a table or a 2-D array, got an array of shape {arr.shape}")
    return pd.DataFrame(arr, columns=[f"x_{j}" for j in range(arr.shape[1])])


def _type_of(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    return "string"


def infer_schema(data: Any) -> dict[str, Any]:
    """A JSON-ready schema of ``data`` (DataFrame, dict of columns or 2-D array)."""
    frame = as_frame(data)
    columns: dict[str, Any] = {}
    for name in frame.columns:
        s = frame[name]
        typ = _type_of(s)
        col: dict[str, Any] = {"type": typ, "nullable": bool(s.isna().any())}
        ok = s.dropna()
        if typ in ("int", "float") and len(ok):
            col["min"] = float(ok.min())
            col["max"] = float(ok.max())
        if typ in ("string", "bool") or (typ == "int" and ok.nunique() <= MAX_CATEGORIES):
            cats = sorted(map(str, ok.unique()))
            if len(cats) <= MAX_CATEGORIES:
                col["categories"] = cats
        columns[str(name)] = col
    return {"version": SCHEMA_VERSION, "n_rows": len(frame), "columns": columns}


@dataclass(frozen=True)
class SchemaViolation:
    column: str
    check: str  # missing | type | nulls | range | category
    detail: str
    count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_COMPATIBLE = {"float": {"float", "int"}, "int": {"int"}, "bool": {"bool"}, "string": {"string"}}


def check_schema(data: Any, schema: dict[str, Any]) -> list[SchemaViolation]:
    """Every way ``data`` departs from ``schema`` (empty: it conforms). Never includes data values."""
    frame = as_frame(data)
    out: list[SchemaViolation] = []
    for name, col in (schema.get("columns") or {}).items():
        if name not in frame.columns:
            out.append(SchemaViolation(name, "missing", "column missing from the data"))
            continue
        s = frame[name]
        typ = _type_of(s)
        want = col.get("type", typ)
        if typ not in _COMPATIBLE.get(want, {want}):
            out.append(SchemaViolation(name, "type", f"expected {want}, found {typ}"))
            continue
        nulls = int(s.isna().sum())
        if nulls and not col.get("nullable", False):
            out.append(
                SchemaViolation(name, "nulls", f"{nulls} null value(s) where the schema has none", nulls)
            )
        ok = s.dropna()
        if "min" in col and "max" in col and len(ok):
            margin = RANGE_MARGIN * (col["max"] - col["min"])
            lo, hi = col["min"] - margin, col["max"] + margin
            outside = int(((ok < lo) | (ok > hi)).sum())
            if outside:
                out.append(
                    SchemaViolation(
                        name,
                        "range",
                        f"{outside} value(s) outside "
                        f"[{col['min']:g}, {col['max']:g}] (+/- {RANGE_MARGIN:.0%})",
                        outside,
                    )
                )
        if "categories" in col and typ in ("string", "bool", "int") and len(ok):
            known = set(col["categories"])
            unseen = ok.astype(str)[~ok.astype(str).isin(known)]
            if len(unseen):
                out.append(
                    SchemaViolation(
                        name,
                        "category",
                        f"{len(unseen)} value(s) in "
                        f"{unseen.nunique()} categor(ies) never seen at registration",
                        len(unseen),
                    )
                )
    for name in frame.columns:
        if str(name) not in (schema.get("columns") or {}):
            out.append(SchemaViolation(str(name), "missing", "column not in the registered schema"))
    return out
