"""The validation gate: metrics against a baseline, robustness, and data checks; one decision.

Checks (each ``pass``, ``fail`` or ``skip`` with the reason):

- ``data.schema``: the evaluation set against the schema recorded at registration;
- ``metrics.accuracy`` / ``metrics.f1_macro``: the candidate on its evaluation set, not worse than
  the baseline on the *same* set by more than the tolerance (and not under an absolute floor if set);
- ``robustness.stability``: share of rows whose label survives uniform noise of ``stability_eps``
  x each feature's range, over several trials;
- ``robustness.fgsm``: accuracy drop after a one-step FGSM attack of ``fgsm_eps`` x range (where a
  gradient exists, see ``robustness``).

The gate passes when no check fails. ``validate_version`` audits the decision and emits
``gate.decided`` (gate ``validation``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from control_plane import audit
from control_plane.errors import MlctlError, NotFound
from control_plane.events import emit
from control_plane.monitor.datasets import read_table
from control_plane.monitor.production import production_version
from control_plane.monitor.retrain import schema_of
from control_plane.registry import get_version, materialize
from control_plane.settings import state_dir
from control_plane.validate import robustness
from control_plane.validate.model import OnnxClassifier
from control_plane.validate.schema import as_frame, check_schema

LABEL_COLUMNS = ("label", "y", "target")
MAX_FGSM_ROWS = 200  # the finite-difference gradient costs 2 x features runs per row


@dataclass(frozen=True)
class ValidationPolicy:
    accuracy_tolerance: float = 0.02  # candidate may be at most this much worse than the baseline
    f1_tolerance: float = 0.02
    min_accuracy: float | None = None
    stability_eps: float = 0.01
    stability_trials: int = 5
    min_stability: float = 0.95
    fgsm_eps: float = 0.03
    max_fgsm_drop: float = 0.15


@dataclass
class Check:
    name: str
    status: str  # pass | fail | skip
    value: float | None = None
    threshold: float | None = None
    detail: str = ""


@dataclass
class Candidate:
    """A model version to validate: where its model, evaluation set and schema are."""

    ref: str
    model_dir: Path
    eval_path: Path | None = None
    schema: dict[str, Any] | None = None


@dataclass
class ValidationReport:
    candidate: str
    baseline: str | None
    environment: str | None
    checks: list[Check]
    metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "baseline": self.baseline,
            "environment": self.environment,
            "decision": "pass" if self.passed else "fail",
            "metrics": self.metrics,
            "baseline_metrics": self.baseline_metrics,
            "checks": [asdict(c) for c in self.checks],
        }


# ---- evaluation set --------------------------------------------------------------------------


def load_eval_set(path: Path) -> tuple[Any, np.ndarray]:
    """(features, labels) from an ``.npz`` with ``X`` and ``y``, or a table with a label column."""
    if not path.is_file():
        raise NotFound(
            f"evaluation set {path} does not exist",
            hint="register the version with its evaluation set (eval.npz with X and y, or a table "
            "with a label column)",
        )
    if path.suffix == ".npz":
        with np.load(path) as z:
            if "X" not in z or "y" not in z:
                raise MlctlError(
                    f"{path}: an .npz evaluation set needs arrays X and y", hint="np.savez(f, X=..., y=...)"
                )
            return z["X"], z["y"].astype(np.int64)

    frame = read_table(str(path))
    label = next((c for c in LABEL_COLUMNS if c in frame.columns), None)
    if label is None:
        raise MlctlError(
            f"{path}: no label column (one of {', '.join(LABEL_COLUMNS)})",
            hint="add the true labels as a column named label",
        )
    return frame.drop(columns=[label]), frame[label].to_numpy().astype(np.int64)


def _matrix(features: Any) -> np.ndarray:
    return np.asarray(as_frame(features).to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float32)


def _f1_macro(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro", zero_division=0))


def _metrics(model: OnnxClassifier, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pred = model.predict(x)
    return {"accuracy": float((pred == y).mean()), "f1_macro": _f1_macro(y, pred)}


def _bounds(schema: dict[str, Any] | None, features: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cols = list(as_frame(features).columns)
    lo, hi = np.nanmin(x, axis=0).astype(np.float64), np.nanmax(x, axis=0).astype(np.float64)
    for j, name in enumerate(cols):
        col = (schema or {}).get("columns", {}).get(str(name), {})
        if "min" in col and "max" in col:
            lo[j], hi[j] = min(lo[j], col["min"]), max(hi[j], col["max"])
    return lo, hi


# ---- the gate --------------------------------------------------------------------------------


def validate_paths(
    candidate: Candidate,
    baseline: Candidate | None = None,
    *,
    policy: ValidationPolicy | None = None,
    environment: str | None = None,
) -> ValidationReport:
    """Run every check on ``candidate`` (and ``baseline`` on the candidate's evaluation set)."""
    policy = policy or ValidationPolicy()
    eval_path = candidate.eval_path or candidate.model_dir / "eval.npz"
    features, y = load_eval_set(eval_path)
    x = _matrix(features)
    checks: list[Check] = []

    if candidate.schema:
        violations = check_schema(features, candidate.schema)
        checks.append(
            Check(
                "data.schema",
                "fail" if violations else "pass",
                value=float(len(violations)),
                threshold=0.0,
                detail="; ".join(f"{v.column}: {v.check}: {v.detail}" for v in violations[:10])
                or "the evaluation set matches the registered schema",
            )
        )
    else:
        checks.append(Check("data.schema", "skip", detail="no schema was recorded at registration"))
    if np.isnan(x).any():
        raise MlctlError(
            f"{eval_path}: the evaluation set has missing values the model cannot take",
            hint="impute or drop them before registering the evaluation set",
        )

    model = OnnxClassifier.load(candidate.model_dir)
    metrics = _metrics(model, x, y)
    base_metrics: dict[str, float] = {}
    if baseline is not None:
        base_metrics = _metrics(OnnxClassifier.load(baseline.model_dir), x, y)
    for key, tol in (("accuracy", policy.accuracy_tolerance), ("f1_macro", policy.f1_tolerance)):
        floor = base_metrics[key] - tol if base_metrics else None
        if key == "accuracy" and policy.min_accuracy is not None:
            floor = max(floor or 0.0, policy.min_accuracy)
        if floor is None:
            checks.append(
                Check(
                    f"metrics.{key}",
                    "skip",
                    value=metrics[key],
                    detail="no baseline (first version in this environment) and no floor set",
                )
            )
            continue
        ok = metrics[key] >= floor
        detail = (
            f"{metrics[key]:.4f} vs baseline {base_metrics[key]:.4f} (tolerance {tol})"
            if base_metrics
            else f"{metrics[key]:.4f} vs floor {floor:.4f}"
        )
        checks.append(
            Check(
                f"metrics.{key}", "pass" if ok else "fail", value=metrics[key], threshold=floor, detail=detail
            )
        )

    lo, hi = _bounds(candidate.schema, features, x)
    st = robustness.stability(
        model, x, eps=policy.stability_eps, trials=policy.stability_trials, lo=lo, hi=hi
    )
    checks.append(
        Check(
            "robustness.stability",
            "pass" if st.stability >= policy.min_stability else "fail",
            value=st.stability,
            threshold=policy.min_stability,
            detail=f"{st.stability:.1%} of rows keep their label under +/-{policy.stability_eps:g} x range "
            f"noise over {st.trials} trials",
        )
    )
    rows = slice(0, min(len(x), MAX_FGSM_ROWS))
    fg = robustness.fgsm(model, x[rows], y[rows], eps=policy.fgsm_eps, lo=lo, hi=hi)
    if not fg.applicable or fg.adversarial_accuracy is None or fg.clean_accuracy is None:
        checks.append(Check("robustness.fgsm", "skip", detail=fg.reason))
    else:
        drop = fg.clean_accuracy - fg.adversarial_accuracy
        checks.append(
            Check(
                "robustness.fgsm",
                "pass" if drop <= policy.max_fgsm_drop else "fail",
                value=drop,
                threshold=policy.max_fgsm_drop,
                detail=f"accuracy {fg.clean_accuracy:.3f} -> {fg.adversarial_accuracy:.3f} under "
                f"FGSM eps={policy.fgsm_eps:g} x range ({fg.reason})",
            )
        )
    return ValidationReport(
        candidate=candidate.ref,
        baseline=None if baseline is None else baseline.ref,
        environment=environment,
        checks=checks,
        metrics=metrics,
        baseline_metrics=base_metrics,
    )


def record_decision(report: ValidationReport) -> None:
    """Audit the decision and emit ``gate.decided`` (metrics count it)."""
    decision = "allow" if report.passed else "deny"
    audit.record(
        action="model.validate",
        subject=report.candidate,
        decision=decision,
        reasons=[f"{c.name}: {c.detail}" for c in report.failed],
        details={
            "environment": report.environment,
            "baseline": report.baseline,
            "metrics": report.metrics,
            "baseline_metrics": report.baseline_metrics,
            "checks": {c.name: c.status for c in report.checks},
        },
    )
    emit(
        "gate.decided",
        report.candidate,
        {
            "gate": "validation",
            "decision": decision,
            "environment": report.environment,
            "baseline": report.baseline,
            "failed_checks": [c.name for c in report.failed],
        },
    )


# ---- registry resolution ---------------------------------------------------------------------


def resolve(name: str, version: str) -> Candidate:
    """A registered version's model files (materialized from the artifact store, digests checked),
    evaluation set (``eval.npz`` in the model directory, or ``lineage.eval_set``) and schema."""
    import shutil

    mv = get_version(name, version)
    dest = state_dir("cache", "validate") / f"{name}-{version}"
    if dest.exists():
        shutil.rmtree(dest)  # always the exact registered bytes, never a stale copy
    model_dir = materialize(name, version, dest)
    schema = schema_of(mv)
    if isinstance(schema, str):
        schema = json.loads(schema)
    eval_ref = (mv.lineage or {}).get("eval_set")
    eval_path = (
        Path(model_dir) / eval_ref
        if isinstance(eval_ref, str) and not Path(eval_ref).is_absolute()
        else (Path(eval_ref) if isinstance(eval_ref, str) else None)
    )
    return Candidate(ref=f"{name}:{version}", model_dir=Path(model_dir), eval_path=eval_path, schema=schema)


def production_baseline(name: str, env: str) -> str | None:
    """The version of ``name`` live in ``env``, as the release engine recorded it."""
    found = production_version(name, env)
    return None if found is None else found.version


def parse_ref(ref: str) -> tuple[str, str]:
    name, sep, version = ref.rpartition(":")
    if not sep or not name or not version:
        raise MlctlError(f"{ref!r} is not NAME:VERSION", hint="e.g. fraud-detector:3", exit_code=2)
    return name, version


def validate_version(
    name: str,
    version: str,
    env: str,
    *,
    baseline: str | None = None,
    policy: ValidationPolicy | None = None,
) -> ValidationReport:
    """The release gate: validate ``name:version`` for ``env`` against ``baseline`` (``NAME:V``) or the
    version in production there; audits and emits the decision. Never raises on a failed check."""
    candidate = resolve(name, version)
    base_ref = baseline
    if base_ref is None:
        prod = production_baseline(name, env)
        base_ref = None if prod is None or prod == version else f"{name}:{prod}"
    base = resolve(*parse_ref(base_ref)) if base_ref else None
    report = validate_paths(candidate, base, policy=policy, environment=env)
    record_decision(report)
    return report
