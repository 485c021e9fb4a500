"""The sample continuous-training pipeline on scikit-learn's bundled digits (``digits.yaml``).

``write_datasets(dir)`` writes the data sets the demo and the tests feed it: ``v1.csv`` (the first
1,200 shuffled rows), ``v2.csv`` (all 1,797: the data set grew), ``schema-change.csv`` (pixel
column ``px_10`` renamed: a breaking feature-schema change) and ``pii.csv`` (v1 plus a column of
e-mail addresses that the feature set does not tag as personal data).
"""

from __future__ import annotations

from pathlib import Path

N_PIXELS = 64
FEATURE_SET = "digits-pixels"


def pixel_columns() -> list[str]:
    return [f"px_{i}" for i in range(N_PIXELS)]


def feature_schema() -> dict[str, object]:
    """The digits-pixels feature set, version 1: 64 pixel intensities in [0, 1] and the label."""
    columns: dict[str, object] = {c: {"type": "float", "nullable": False, "min": 0.0, "max": 1.0}
                                  for c in pixel_columns()}
    columns["label"] = {"type": "int", "nullable": False, "categories": [str(d) for d in range(10)]}
    return {"version": 1, "columns": columns}


def _frame(rows: int | None = None):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(7).permutation(len(y))
    x, y = x[order] / 16.0, y[order]
    if rows is not None:
        x, y = x[:rows], y[:rows]
    frame = pd.DataFrame(x, columns=pixel_columns())
    frame["label"] = y.astype("int64")
    return frame


def write_datasets(out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.csv" for name in ("v1", "v2", "schema-change", "pii")}
    v1 = _frame(1200)
    v1.to_csv(paths["v1"], index=False)
    _frame().to_csv(paths["v2"], index=False)
    v1.rename(columns={"px_10": "pixel_10"}).to_csv(paths["schema-change"], index=False)
    pii = v1.copy()
    pii["contact"] = [f"user{i}@example.ae" for i in range(len(pii))]
    pii.to_csv(paths["pii"], index=False)
    return paths
