"""Scan sample inputs and feature data (CSV, JSON/JSONL, Parquet, text) for personal identifiers.

A finding names the kind and the place (file, row, column) and how many times that kind occurs
there; it never carries the value. Rows are 1-based data rows (CSV/Parquet: the header is row 0;
text: the line number; JSON: the record index + 1).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from control_plane.errors import MlctlError, NotFound
from control_plane.pii.detectors import PREFILTER, find_kinds

TEXT_SUFFIXES = {".txt", ".log", ".md", ".tsv"}
MAX_PLACES = 1000  # past this many (kind, place) pairs a file is plainly full of PII: stop counting


@dataclass(frozen=True)
class Finding:
    kind: str
    file: str
    row: int | None
    column: str | None
    count: int = 1

    def place(self) -> str:
        parts = [self.file]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _collect(cells: Iterable[tuple[int | None, str | None, str]], file: str) -> list[Finding]:
    counts: Counter[tuple[str, int | None, str | None]] = Counter()
    for row, column, text in cells:
        for kind, _, _ in find_kinds(text):
            counts[(kind, row, column)] += 1
        if len(counts) >= MAX_PLACES:
            break
    return [Finding(kind=k, file=file, row=r, column=c, count=n) for (k, r, c), n in counts.items()]


def _frame_cells(frame: Any) -> Iterator[tuple[int | None, str | None, str]]:
    """Cells of a DataFrame as text; only the cells that pass the cheap prefilter (vectorized)."""
    import pandas as pd

    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_float_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue  # floats and booleans cannot spell an identifier
        text = series.dropna().astype(str)
        hits = text[text.str.contains(PREFILTER, regex=True)]
        for idx, value in hits.items():
            yield int(idx) + 1, str(column), value


def _json_cells(obj: Any, row: int | None, path: str) -> Iterator[tuple[int | None, str | None, str]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            # keys can be PII too (a dict keyed by e-mail address)
            yield row, path or None, str(key)
            yield from _json_cells(value, row, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _json_cells(value, row, f"{path}[{i}]")
    elif obj is not None and not isinstance(obj, float | bool):
        yield row, path or None, str(obj)


def _scan_json(path: Path) -> list[Finding]:
    raw = path.read_text(errors="replace")
    try:
        doc = json.loads(raw)
        records: list[Any] = doc if isinstance(doc, list) else [doc]
        if isinstance(doc, dict) and isinstance(doc.get("inputs"), list):
            records = [doc]  # a V2 inference request: one record
    except json.JSONDecodeError:
        records = []
        for lineno, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise MlctlError(
                    f"{path}: line {lineno} is not JSON (neither a JSON document nor JSON Lines)",
                    hint="give a .json document, a .jsonl file of one object per line, or a .txt file",
                ) from None
    cells = (c for i, rec in enumerate(records) for c in _json_cells(rec, i + 1, ""))
    return _collect(cells, str(path))


def _scan_text(path: Path) -> list[Finding]:
    def cells() -> Iterator[tuple[int | None, str | None, str]]:
        with path.open(errors="replace") as fh:
            for lineno, line in enumerate(fh, start=1):
                yield lineno, None, line

    return _collect(cells(), str(path))


def _scan_frame(path: Path, frame: Any) -> list[Finding]:
    findings = _collect(_frame_cells(frame), str(path))
    # Column names are data too (a pivot keyed by phone number).
    findings += _collect(((0, None, str(c)) for c in frame.columns), str(path))
    return findings


def scan_path(path: str | Path) -> list[Finding]:
    """Every PII finding in a file, or in every file under a directory (recursively)."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{path} does not exist", hint="give the sample input or feature data file to scan")
    if path.is_dir():
        out: list[Finding] = []
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            if child.suffix.lower() in {".csv", ".json", ".jsonl", ".parquet", ".pq"} | TEXT_SUFFIXES:
                out += scan_path(child)
        return out
    suffix = path.suffix.lower()
    if suffix == ".csv":
        import pandas as pd  # lazy: pandas (~0.5 s) only for tables; events' scrubber imports this package

        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError):
            return _scan_text(path)  # not tabular after all: still scan every line
        return _scan_frame(path, frame)
    if suffix in (".parquet", ".pq"):
        from control_plane.data.tables import read_table  # lazy: pandas + pyarrow, for Parquet only

        return _scan_frame(path, read_table(str(path)))
    if suffix in (".json", ".jsonl"):
        return _scan_json(path)
    return _scan_text(path)


def scan_text(text: str, *, source: str = "<text>") -> list[Finding]:
    return _collect(((i + 1, None, line) for i, line in enumerate(text.splitlines())), source)


def summarize(findings: list[Finding]) -> dict[str, int]:
    """Occurrences per kind."""
    out: Counter[str] = Counter()
    for f in findings:
        out[f.kind] += f.count
    return dict(sorted(out.items()))
