"""Bench: our drift check vs Evidently's data-drift preset, same data, same run, as a ratio.

    .venv/bin/python bench/drift.py [--rows 10000 100000] [--repeat 3] [--json]

Data: 20 features (15 numeric of assorted shapes, 5 categorical), reference and current drawn
from the same generator with shifts injected into 3 numeric and 1 categorical feature of the
current table. Both tools get identical DataFrames (pickled once, read by both sides) and are
timed on the drift computation only (imports, loading and Evidently's result serialization
excluded), best of ``--repeat``.

Evidently runs in its own virtualenv (``.venv-bench``, or ``$MLCTL_BENCH_VENV``) because it is a
bench-only extra that must not enter the product's environment:

    python3.11 -m venv .venv-bench
    .venv-bench/bin/pip install -c constraints.txt "evidently==0.7.23" pandas==2.3.3 numpy==2.4.6 scipy==1.17.1
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

N_NUMERIC, N_CATEGORICAL = 15, 5
SHIFTED_NUMERIC = ["num_00", "num_05", "num_10"]
SHIFTED_CATEGORICAL = ["cat_0"]

_EVIDENTLY_SIDE = r"""
import json, pickle, sys, time
import warnings
warnings.filterwarnings("ignore")
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

ref, cur, numeric, categorical = pickle.load(open(sys.argv[1], "rb"))
repeat = int(sys.argv[2])
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
best = float("inf")
drifted = []
for _ in range(repeat):
    t0 = time.perf_counter()
    r = Dataset.from_pandas(ref, data_definition=definition)
    c = Dataset.from_pandas(cur, data_definition=definition)
    snapshot = Report([DataDriftPreset()]).run(current_data=c, reference_data=r)
    best = min(best, time.perf_counter() - t0)  # the computation only: reading results is not timed
result = snapshot.dict()
drifted = []
for m in result.get("metrics", []):
    cfg = m.get("config", {}) or {}
    col = cfg.get("column")
    value = m.get("value")
    thr = cfg.get("threshold")
    method = str(cfg.get("method", ""))
    if col is None or not isinstance(value, (int, float)) or thr is None:
        continue
    # p-value tests drift when value < threshold; distance tests when value >= threshold
    is_p = "p_value" in method.lower() or "test" in method.lower()
    if (value < thr) if is_p else (value >= thr):
        drifted.append(col)
print(json.dumps({"seconds": best, "drifted": sorted(set(drifted))}))
"""


def make_data(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    rng = np.random.default_rng(seed)

    def draw(n: int, shifted: bool) -> pd.DataFrame:
        cols: dict[str, object] = {}
        for j in range(N_NUMERIC):
            name = f"num_{j:02d}"
            kind = j % 3
            base = (
                rng.normal(10 + j, 2 + j % 4, n)
                if kind == 0
                else rng.lognormal(1 + j / 10, 0.5, n)
                if kind == 1
                else rng.gamma(2 + j % 5, 1.5, n)
            )
            if shifted and name in SHIFTED_NUMERIC:
                base = base * 1.15 + np.std(base) * 0.3
            cols[name] = base
        for j in range(N_CATEGORICAL):
            name = f"cat_{j}"
            cats = np.array([f"c{k}" for k in range(4 + 2 * j)])
            p = np.linspace(1, 2, len(cats))
            if shifted and name in SHIFTED_CATEGORICAL:
                p = p[::-1] ** 2
            cols[name] = rng.choice(cats, size=n, p=p / p.sum())
        return pd.DataFrame(cols)

    numeric = [f"num_{j:02d}" for j in range(N_NUMERIC)]
    categorical = [f"cat_{j}" for j in range(N_CATEGORICAL)]
    return draw(rows, False), draw(rows, True), numeric, categorical


def time_ours(
    ref: pd.DataFrame, cur: pd.DataFrame, categorical: list[str], repeat: int
) -> tuple[float, list[str]]:
    from control_plane.monitor.drift import DriftConfig, FeatureRule, compare

    cfg = DriftConfig(features={c: FeatureRule(kind="categorical") for c in categorical})
    compare(ref.head(100), cur.head(100), cfg)  # warm imports (scipy.stats) outside the timing
    best = float("inf")
    report = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        report = compare(ref, cur, cfg)
        best = min(best, time.perf_counter() - t0)
    assert report is not None
    return best, sorted(f.name for f in report.drifted_features)


def time_evidently(data_file: Path, repeat: int) -> dict[str, object] | None:
    venv = Path(os.environ.get("MLCTL_BENCH_VENV", REPO / ".venv-bench"))
    python = venv / "bin" / "python"
    if not python.exists():
        print(
            f"Evidently side skipped: no bench virtualenv at {venv} (see the docstring to create it)",
            file=sys.stderr,
        )
        return None
    proc = subprocess.run(
        [str(python), "-c", _EVIDENTLY_SIDE, str(data_file), str(repeat)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        print(f"Evidently side failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
        return None
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        for rows in args.rows:
            ref, cur, numeric, categorical = make_data(rows)
            data_file = Path(tmp) / f"data-{rows}.pkl"
            with data_file.open("wb") as fh:
                pickle.dump((ref, cur, numeric, categorical), fh)
            ours, ours_drifted = time_ours(ref, cur, categorical, args.repeat)
            ev = time_evidently(data_file, args.repeat)
            ev_s = float(ev["seconds"]) if ev else None  # type: ignore[arg-type]
            results.append(
                {
                    "rows": rows,
                    "features": N_NUMERIC + N_CATEGORICAL,
                    "ours_s": ours,
                    "evidently_s": ev_s,
                    "speedup": (ev_s / ours) if ev_s else None,
                    "ours_drifted": ours_drifted,
                    "evidently_drifted": ev["drifted"] if ev else None,
                    "injected": SHIFTED_NUMERIC + SHIFTED_CATEGORICAL,
                }
            )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(
            f"{'rows':>8} {'features':>8} {'ours (s)':>10} {'evidently (s)':>14} {'speedup':>8}  drifted (ours)"
        )
        for r in results:
            ev_txt = f"{r['evidently_s']:.3f}" if r["evidently_s"] else "n/a"
            sp = f"{r['speedup']:.1f}x" if r["speedup"] else "n/a"
            print(
                f"{r['rows']:>8} {r['features']:>8} {r['ours_s']:>10.4f} {ev_txt:>14} {sp:>8}  "
                f"{', '.join(r['ours_drifted'])}"
            )
            if r["evidently_drifted"] is not None:
                print(f"{'':>53}  drifted (evidently): {', '.join(r['evidently_drifted'])}")
        print(f"injected: {', '.join(SHIFTED_NUMERIC + SHIFTED_CATEGORICAL)}")
    return 0 if all(r["speedup"] for r in results) else 2


if __name__ == "__main__":
    sys.exit(main())
