"""The drift statistics, on numpy arrays: PSI and two-sample Kolmogorov-Smirnov for numeric
features, chi-square (homogeneity) and Jensen-Shannon distance for categorical ones.

Each numeric column is sorted once; KS and PSI both read the sorted arrays with ``searchsorted``
(O((n+m) log n) per column, no Python loop over rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

_EPS = 1e-4  # floor for bin shares: an empty bin would make PSI infinite


@dataclass(frozen=True)
class NumericScores:
    psi: float
    ks_statistic: float
    ks_p_value: float


@dataclass(frozen=True)
class CategoricalScores:
    js_distance: float
    chi2: float
    chi2_p_value: float


def numeric_scores(ref_sorted: np.ndarray, cur_sorted: np.ndarray, bins: int) -> NumericScores:
    """Scores for one numeric feature; both inputs sorted ascending, NaN-free, non-empty."""
    n, m = ref_sorted.size, cur_sorted.size
    # KS: the largest gap between the two empirical CDFs. It is reached at a sample point, so
    # evaluate both CDFs at each side's points; at a run of tied values only the run's last
    # element carries the CDF's value there (correct for discrete features).
    r_last = np.append(ref_sorted[1:] != ref_sorted[:-1], True)
    c_last = np.append(cur_sorted[1:] != cur_sorted[:-1], True)
    r_pts, c_pts = ref_sorted[r_last], cur_sorted[c_last]
    gap_r = np.flatnonzero(r_last) + 1 - np.searchsorted(cur_sorted, r_pts, side="right") * (n / m)
    gap_c = np.searchsorted(ref_sorted, c_pts, side="right") - (np.flatnonzero(c_last) + 1) * (n / m)
    d = float(max(np.max(np.abs(gap_r)), np.max(np.abs(gap_c)))) / n
    # The asymptotic two-sided p-value, as scipy.stats.ks_2samp(method="asymp") computes it.
    en = n * m / (n + m)
    p = float(sps.kstwo.sf(d, np.round(en))) if en >= 1 else 1.0
    # PSI over reference-quantile bins (equal-mass on the reference), read straight off the sorted
    # array (linear interpolation, as np.quantile); duplicate edges of a discrete feature collapse.
    pos = np.linspace(0.0, 1.0, bins + 1)[1:-1] * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    edges = np.unique(ref_sorted[lo] + (ref_sorted[hi] - ref_sorted[lo]) * (pos - lo))
    ref_share = np.diff(np.concatenate([[0], np.searchsorted(ref_sorted, edges, side="right"), [n]])) / n
    cur_share = np.diff(np.concatenate([[0], np.searchsorted(cur_sorted, edges, side="right"), [m]])) / m
    ref_share = np.maximum(ref_share, _EPS)
    cur_share = np.maximum(cur_share, _EPS)
    psi = float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))
    return NumericScores(psi=psi, ks_statistic=d, ks_p_value=min(1.0, max(0.0, p)))


def categorical_scores(ref_counts: np.ndarray, cur_counts: np.ndarray) -> CategoricalScores:
    """Scores for one categorical feature from counts aligned on the union of categories."""
    ref_counts = ref_counts.astype(np.float64)
    cur_counts = cur_counts.astype(np.float64)
    p = ref_counts / max(ref_counts.sum(), 1.0)
    q = cur_counts / max(cur_counts.sum(), 1.0)
    mid = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / mid), 0.0)
        kl_q = np.where(q > 0, q * np.log2(q / mid), 0.0)
    js = float(np.sqrt(max(0.0, 0.5 * (kl_p.sum() + kl_q.sum()))))  # base 2: in [0, 1]
    # Chi-square test of homogeneity on the 2 x K table (symmetric; new categories count).
    table = np.vstack([ref_counts, cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    k = table.shape[1]
    if k < 2:
        return CategoricalScores(js_distance=js, chi2=0.0, chi2_p_value=1.0)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    chi2 = float(np.sum((table - expected) ** 2 / expected))
    pval = float(sps.chi2.sf(chi2, k - 1))
    return CategoricalScores(js_distance=js, chi2=chi2, chi2_p_value=pval)
