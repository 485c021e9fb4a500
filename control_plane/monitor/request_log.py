"""The live request log of a deployed service, read back as a table of inputs and predictions
(drift checks). Where it is written and in which format — one JSON object per inference request,
minimised and kept for a limited time — is :mod:`control_plane.request_log` (a leaf the serving
drivers write through); this module reads windows of it. Lines that do not parse are counted and
skipped, never fatal (a server may be writing the last line right now).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from control_plane.errors import MlctlError, NotFound
from control_plane.request_log import RequestLogWriter, log_path, records_since

__all__ = ["RequestLogWriter", "RequestWindow", "log_path", "read_requests", "records_since"]


@dataclass
class RequestWindow:
    frame: pd.DataFrame
    path: Path
    lines: int
    bad_lines: int
    model: str | None
    version: str | None


def _tensor_rows(
    tensors: list[dict[str, Any]], names: list[str] | None, output: bool
) -> list[dict[str, Any]]:
    cols: dict[str, np.ndarray] = {}
    n_rows: int | None = None
    for t in tensors:
        shape = [int(s) for s in t.get("shape") or [len(t.get("data") or [])]]
        arr = np.asarray(t.get("data") or [], dtype=object if t.get("datatype") == "BYTES" else np.float64)
        rows = shape[0] if shape else 1
        arr = arr.reshape(rows, -1) if arr.size else np.empty((rows, 0))
        n_rows = rows if n_rows is None else n_rows
        if output and arr.shape[1] > 1:
            cols["prediction"] = arr.argmax(axis=1)
            continue
        tname = str(t.get("name", "output" if output else "input"))
        for j in range(arr.shape[1]):
            if output:
                col = "prediction" if arr.shape[1] == 1 and len(tensors) == 1 else tname
            elif names and len(names) == arr.shape[1]:
                col = names[j]
            else:
                col = tname if arr.shape[1] == 1 else f"{tname}_{j}"
            cols[col] = arr[:, j]
    return [
        {k: v[i].item() if hasattr(v[i], "item") else v[i] for k, v in cols.items()}
        for i in range(n_rows or 0)
    ]


def _rows(value: Any, names: list[str] | None, output: bool) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        if all("data" in v and "name" in v for v in value):
            return _tensor_rows(value, names, output)
        return list(value)
    if output and value is not None and not isinstance(value, list | dict):
        return [{"prediction": value}]
    if output and isinstance(value, list):
        return [{"prediction": v} for v in value]
    raise ValueError("unrecognised inputs/outputs shape")


def _parse_since(since: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return timedelta(seconds=float(since[:-1]) * units[since[-1]])
    except (KeyError, ValueError, IndexError):
        raise MlctlError(
            f"--since {since!r} is not a duration", hint="e.g. 30m, 6h, 7d", exit_code=2
        ) from None


def read_requests(service: str, *, last: int | None = None, since: str | None = None) -> RequestWindow:
    """The requests of ``service`` in the window, one row per inference (inputs + prediction)."""
    path = log_path(service)
    if not path.is_file():
        raise NotFound(
            f"no request log for service {service!r} at {path}",
            hint="the service's model servers write it as they serve; send traffic first, or compare files "
            "with --reference FILE --current FILE",
        )
    cutoff = datetime.now(UTC) - _parse_since(since) if since else None
    rows: list[dict[str, Any]] = []
    versions: Counter[tuple[str | None, str | None]] = Counter()
    lines = bad = 0
    with path.open() as fh:
        for line in fh:
            if not line.strip():
                continue
            lines += 1
            try:
                rec = json.loads(line)
                if rec.get("mirror") or (rec.get("outputs") is None and rec.get("code", 200) != 200):
                    # A shadow candidate's copy of a request is not production traffic, and a
                    # failed request has no prediction to compare: neither belongs in drift.
                    lines -= 1
                    continue
                if cutoff is not None:
                    ts = datetime.fromisoformat(str(rec["ts"]).replace("Z", "+00:00"))
                    if ts.tzinfo is None:
                        ts = ts.replace(tzinfo=UTC)
                    if ts < cutoff:
                        continue
                names = rec.get("feature_names")
                ins = _rows(rec.get("inputs"), names, output=False)
                outs = _rows(rec["outputs"], None, output=True) if rec.get("outputs") is not None else []
            except (ValueError, KeyError, TypeError):
                bad += 1
                continue
            for i, row in enumerate(ins):
                merged = dict(row)
                if i < len(outs):
                    merged.update(outs[i])
                rows.append(merged)
            versions[(rec.get("model"), None if rec.get("version") is None else str(rec.get("version")))] += (
                len(ins)
            )
    if last is not None:
        rows = rows[-last:]
    (model, version), _ = versions.most_common(1)[0] if versions else ((None, None), 0)
    return RequestWindow(
        frame=pd.DataFrame(rows), path=path, lines=lines, bad_lines=bad, model=model, version=version
    )
