"""Robustness of a classifier: stability under bounded random perturbations and an FGSM check.

Both perturb within a box scaled per feature to its registered range (``eps`` x the feature's span),
clipped to that range, so a perturbation never leaves the domain the model was trained on.

On "differentiable": an ONNX graph from a registry is a black box here, so the FGSM gradient is the
finite-difference gradient of the cross-entropy loss with respect to each input feature (central
differences, all rows and features in one batched run). For smooth models (linear, logistic, MLPs)
this is the gradient FGSM wants. For piecewise-constant models (trees, rule sets, label-only outputs)
the gradient is zero almost everywhere; FGSM does not apply to them and the check is reported as
skipped, with that reason, rather than passed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from control_plane.validate.model import OnnxClassifier


@dataclass(frozen=True)
class StabilityResult:
    stability: float  # share of rows whose label never changed over all trials
    trials: int
    eps: float


@dataclass(frozen=True)
class FgsmResult:
    applicable: bool
    reason: str
    clean_accuracy: float | None = None
    adversarial_accuracy: float | None = None
    eps: float = 0.0


def _span(
    x: np.ndarray, lo: np.ndarray | None, hi: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = x.min(axis=0) if lo is None else lo
    hi = x.max(axis=0) if hi is None else hi
    span = np.where(hi > lo, hi - lo, 1.0)
    return lo, hi, span


def stability(
    model: OnnxClassifier,
    x: np.ndarray,
    *,
    eps: float,
    trials: int = 5,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
    seed: int = 0,
) -> StabilityResult:
    """Share of rows whose predicted label stays the same under uniform noise in [-eps, eps] x span."""
    rng = np.random.default_rng(seed)
    lo, hi, span = _span(x, lo, hi)
    base = model.predict(x)
    stacked = np.concatenate(
        [np.clip(x + rng.uniform(-eps, eps, size=x.shape) * span, lo, hi) for _ in range(trials)]
    )
    labels = model.predict(stacked).reshape(trials, len(x))
    stable = np.all(labels == base[None, :], axis=0)
    return StabilityResult(stability=float(stable.mean()), trials=trials, eps=eps)


def _loss(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = probs[np.arange(len(y)), y]
    return -np.log(np.clip(p, 1e-12, 1.0))


def fgsm(
    model: OnnxClassifier,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
    h: float = 1e-3,
) -> FgsmResult:
    """Accuracy after one signed-gradient step of size eps x span (finite-difference gradient)."""
    labels, probs = model.run(x)
    clean = float((labels == y).mean())
    if probs is None:
        return FgsmResult(
            False,
            "the model outputs labels only: no loss surface to take a gradient of",
            clean_accuracy=clean,
            eps=eps,
        )
    n_classes = probs.shape[1]
    if y.max(initial=0) >= n_classes or y.min(initial=0) < 0:
        return FgsmResult(False, "labels do not index the probability output", clean_accuracy=clean, eps=eps)
    lo, hi, span = _span(x, lo, hi)
    n, d = x.shape
    step = h * span
    # Rows: for each feature j, x + step_j e_j and x - step_j e_j (one batched run of 2*d*n rows).
    eye = np.eye(d, dtype=np.float64)
    plus = (x[None, :, :] + (eye * step)[:, None, :]).reshape(d * n, d)
    minus = (x[None, :, :] - (eye * step)[:, None, :]).reshape(d * n, d)
    _, p_plus = model.run(np.concatenate([plus, minus]))
    assert p_plus is not None
    yy = np.tile(y, d)
    l_all = _loss(p_plus, np.concatenate([yy, yy]))
    grad = ((l_all[: d * n] - l_all[d * n :]).reshape(d, n).T) / (2 * step[None, :])
    if not np.any(np.abs(grad) > 1e-9):
        p_clean = np.tile(probs, (2 * d, 1))
        if np.max(np.abs(p_plus - p_clean)) < 1e-7:
            reason = (
                "the output does not change under small input changes (piecewise-constant model): "
                "FGSM does not apply"
            )
        else:
            reason = (
                "the output changes under small input changes but the loss gradient vanishes at the "
                "evaluation points (gradient masking): FGSM cannot probe this model; see the stability check"
            )
        return FgsmResult(False, reason, clean_accuracy=clean, eps=eps)
    x_adv = np.clip(x + eps * span[None, :] * np.sign(grad), lo, hi)
    adv = float((model.predict(x_adv) == y).mean())
    return FgsmResult(
        True,
        "finite-difference gradient of the cross-entropy",
        clean_accuracy=clean,
        adversarial_accuracy=adv,
        eps=eps,
    )
