"""Data and prediction drift between a reference table and a current one.

Per feature:

- numeric (a numeric column with more than ``categorical_max_unique`` distinct reference values):
  PSI over reference-quantile bins and the two-sample Kolmogorov-Smirnov test;
- categorical (strings, booleans, or numbers with few distinct values): Jensen-Shannon distance
  (base 2, in [0, 1]) and the chi-square test of homogeneity.

A feature drifts when the change is both *large* and *real*: an effect size at or over its
threshold (PSI >= ``psi`` or KS statistic >= ``ks_statistic``; JS distance >= ``js_distance``)
and a test p-value under ``p_value`` divided by the number of features tested (Bonferroni), so
that the chance of a false alarm over all the features stays under ``p_value`` (the prediction
column, one pre-specified test, is held to ``p_value`` itself). The effect size
keeps huge samples (where every tiny change is significant) quiet; the test keeps small samples
(where PSI is noisy) quiet. A rise of the null share by ``null_share`` or more also drifts.

The prediction column (``prediction_column``) is tested the same way and reported as prediction drift.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from control_plane.errors import MlctlError
from control_plane.monitor.drift_config import (
    REMEDIATIONS,
    DriftConfig,
    FeatureRule,
    Thresholds,
    load_config,
)
from control_plane.monitor.stats import categorical_scores, numeric_scores

# The configuration (``drift_config``) is re-exported: callers import it from here, with ``compare``.
__all__ = [
    "REMEDIATIONS", "DriftConfig", "DriftReport", "FeatureDrift", "FeatureRule", "Thresholds", "compare",
    "load_config",
]


@dataclass
class FeatureDrift:
    name: str
    kind: str
    drifted: bool
    scores: dict[str, float]
    thresholds: dict[str, float]
    reasons: list[str]
    is_prediction: bool = False


@dataclass
class DriftReport:
    reference: str
    current: str
    n_reference: int
    n_current: int
    features: list[FeatureDrift]
    skipped: list[dict[str, str]] = field(default_factory=list)
    # Schema drift: a column missing from or new in the current data, or of another type. It is
    # drift (the model is fed something other than what it learnt), not a column to skip quietly.
    schema: list[dict[str, str]] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.drifted and not f.is_prediction]

    @property
    def prediction(self) -> FeatureDrift | None:
        return next((f for f in self.features if f.is_prediction), None)

    @property
    def drift_detected(self) -> bool:
        return any(f.drifted for f in self.features) or bool(self.schema)

    def to_dict(self) -> dict[str, Any]:
        pred = self.prediction
        return {
            "reference": self.reference,
            "current": self.current,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "drift_detected": self.drift_detected,
            "drifted_features": [f.name for f in self.drifted_features],
            "prediction_drift": None if pred is None else pred.drifted,
            "features": [_finite(asdict(f)) for f in self.features],
            "skipped": self.skipped,
            "schema_drift": self.schema,
        }


def _finite(obj: Any) -> Any:
    """JSON has no NaN/inf: report them as null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ---- computation -----------------------------------------------------------------------------


def _sorted_values(series: pd.Series) -> tuple[np.ndarray, int]:
    """The non-null values sorted ascending, and how many were null."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    arr = np.sort(arr)
    # NaNs sort last: slicing them off keeps the array sorted without a second pass.
    ok = arr.size - int(np.count_nonzero(np.isnan(arr)))
    return arr[:ok], arr.size - ok


def _kind(series: pd.Series, rule: FeatureRule, ref_sorted: np.ndarray | None) -> str:
    if rule.kind:
        return rule.kind
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return "categorical"
    assert ref_sorted is not None
    # distinct values of a sorted array: one vectorized comparison, no hashing
    distinct = int(np.count_nonzero(ref_sorted[1:] != ref_sorted[:-1])) + 1 if ref_sorted.size else 0
    return "categorical" if distinct <= rule.thresholds.categorical_max_unique else "numeric"


def _numeric(
    name: str,
    ref: pd.Series,
    cur: pd.Series,
    t: Thresholds,
    alpha: float,
    ref_sorted: np.ndarray | None = None,
) -> FeatureDrift:
    if ref_sorted is None:
        ref_sorted, _ = _sorted_values(ref)
    r_ok = ref_sorted
    c_ok, c_null = _sorted_values(cur)
    r_null = len(ref) - r_ok.size
    null_delta = c_null / max(len(cur), 1) - r_null / max(len(ref), 1)
    reasons: list[str] = []
    scores: dict[str, float] = {"null_share_delta": null_delta}
    if r_ok.size and c_ok.size:
        s = numeric_scores(r_ok, c_ok, t.bins)
        scores.update(psi=s.psi, ks_statistic=s.ks_statistic, ks_p_value=s.ks_p_value)
        if s.ks_p_value < alpha:
            if s.psi >= t.psi:
                reasons.append(f"PSI {s.psi:.3f} >= {t.psi}")
            if s.ks_statistic >= t.ks_statistic:
                reasons.append(f"KS {s.ks_statistic:.3f} >= {t.ks_statistic} (p={s.ks_p_value:.2g})")
    if null_delta >= t.null_share:
        reasons.append(f"null share up by {null_delta:.3f}")
    return FeatureDrift(
        name=name,
        kind="numeric",
        drifted=bool(reasons),
        scores=scores,
        reasons=reasons,
        thresholds={
            "psi": t.psi,
            "ks_statistic": t.ks_statistic,
            "p_value": alpha,
            "null_share": t.null_share,
        },
    )


def _categorical(name: str, ref: pd.Series, cur: pd.Series, t: Thresholds, alpha: float) -> FeatureDrift:
    null_delta = float(cur.isna().mean() if len(cur) else 0.0) - float(ref.isna().mean() if len(ref) else 0.0)
    r, c = ref.dropna(), cur.dropna()
    if r.dtype != c.dtype:  # e.g. 1 in one file and "1" in another: compare as text
        r, c = r.astype(str), c.astype(str)
    # One factorize over both sides, then bincount: no per-category Python work.
    codes, _ = pd.factorize(pd.concat([r, c], ignore_index=True), sort=False)
    k = int(codes.max()) + 1 if codes.size else 0
    r_counts = np.bincount(codes[: len(r)], minlength=k)
    c_counts = np.bincount(codes[len(r) :], minlength=k)
    s = categorical_scores(r_counts, c_counts)
    n_new = int(np.count_nonzero((r_counts == 0) & (c_counts > 0)))
    reasons: list[str] = []
    if s.chi2_p_value < alpha and s.js_distance >= t.js_distance:
        reasons.append(f"JS distance {s.js_distance:.3f} >= {t.js_distance} (chi2 p={s.chi2_p_value:.2g})")
    if null_delta >= t.null_share:
        reasons.append(f"null share up by {null_delta:.3f}")
    return FeatureDrift(
        name=name,
        kind="categorical",
        drifted=bool(reasons),
        scores={
            "js_distance": s.js_distance,
            "chi2": s.chi2,
            "chi2_p_value": s.chi2_p_value,
            "null_share_delta": null_delta,
            "new_categories": float(n_new),
        },
        thresholds={"js_distance": t.js_distance, "p_value": alpha, "null_share": t.null_share},
        reasons=reasons,
    )


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig | None = None,
    *,
    reference_name: str = "reference",
    current_name: str = "current",
) -> DriftReport:
    """Test every shared column of ``current`` against ``reference``."""
    config = config or DriftConfig()
    if reference.empty or current.empty:
        which = reference_name if reference.empty else current_name
        raise MlctlError(
            f"{which} has no rows",
            hint="drift needs rows on both sides; widen the window or check the file",
            exit_code=2,
        )
    skipped: list[dict[str, str]] = []
    schema: list[dict[str, str]] = []
    columns = [c for c in reference.columns if c in current.columns]
    # The prediction column is an output, not a feature: a reference without predictions (or a
    # log without them) only means prediction drift cannot be judged, so it is skipped as before.
    pred = config.prediction_column
    for c in reference.columns:
        if c not in current.columns:
            if str(c) == pred:
                skipped.append({"feature": str(c), "reason": f"missing from {current_name}"})
            elif not config.rule(str(c)).ignore:
                schema.append({"feature": str(c), "change": "missing", "reason": f"missing from {current_name}"})
    for c in current.columns:
        if c not in reference.columns:
            if str(c) == pred:
                skipped.append({"feature": str(c), "reason": f"missing from {reference_name}"})
            elif not config.rule(str(c)).ignore:
                schema.append({"feature": str(c), "change": "new", "reason": f"not in {reference_name}"})
    for c in list(columns):
        ref_num = pd.api.types.is_numeric_dtype(reference[c]) and not pd.api.types.is_bool_dtype(reference[c])
        cur_num = pd.api.types.is_numeric_dtype(current[c]) and not pd.api.types.is_bool_dtype(current[c])
        if ref_num != cur_num and not config.rule(str(c)).ignore:
            schema.append({"feature": str(c), "change": "type",
                           "reason": f"{reference[c].dtype} in {reference_name}, {current[c].dtype} in {current_name}"})
            columns.remove(c)
    tested = [c for c in columns if not config.rule(str(c)).ignore]
    skipped += [{"feature": str(c), "reason": "ignored by config"} for c in columns if c not in tested]
    if not tested:
        raise MlctlError(
            f"{reference_name} and {current_name} share no column to compare",
            hint="check that both tables have the same feature names",
            exit_code=2,
        )
    results: list[FeatureDrift] = []
    for col in tested:
        rule = config.rule(str(col))
        t = rule.thresholds
        # The prediction is one pre-specified test at the full level; features share it (Bonferroni).
        n_features = max(1, sum(1 for c in tested if str(c) != config.prediction_column))
        alpha = t.p_value if str(col) == config.prediction_column else t.p_value / n_features
        numeric_dtype = pd.api.types.is_numeric_dtype(reference[col]) and not pd.api.types.is_bool_dtype(
            reference[col]
        )
        ref_sorted = (
            _sorted_values(reference[col])[0] if numeric_dtype and rule.kind != "categorical" else None
        )
        kind = _kind(reference[col], rule, ref_sorted)
        if kind == "numeric":
            res = _numeric(str(col), reference[col], current[col], t, alpha, ref_sorted)
        else:
            res = _categorical(str(col), reference[col], current[col], t, alpha)
        res.is_prediction = str(col) == config.prediction_column
        results.append(res)
    return DriftReport(
        reference=reference_name,
        current=current_name,
        n_reference=len(reference),
        n_current=len(current),
        features=results,
        skipped=skipped,
        schema=schema,
    )
