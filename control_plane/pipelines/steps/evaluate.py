"""The evaluate step: the validation gate against the baseline; a failed check stops the run before
anything is registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from control_plane.errors import EvaluationFailed, MlctlError
from control_plane.pipelines.config import PipelineConfig
from control_plane.validate import infer_schema
from control_plane.validate.gate import (
    Candidate,
    ValidationPolicy,
    parse_ref,
    production_baseline,
    record_decision,
    resolve,
    validate_paths,
)


def baseline_ref(cfg: PipelineConfig) -> str | None:
    if cfg.baseline:
        return cfg.baseline

    prod = production_baseline(cfg.model, cfg.environment)
    return None if prod is None else f"{cfg.model}:{prod}"


def evaluate_candidate(model_dir: str | Path, cfg: PipelineConfig, run_id: str) -> dict[str, Any]:
    """The validation gate (metrics against the baseline on the candidate's held-out set, noise
    stability, FGSM) as a step: a failed check stops the run before anything is registered."""
    import numpy as np

    model_dir = Path(model_dir)
    schema = None
    if (model_dir / "eval.npz").is_file():
        with np.load(model_dir / "eval.npz") as z:
            schema = infer_schema(np.asarray(z["X"])) if "X" in z else None
    ref = baseline_ref(cfg)
    try:
        base = resolve(*parse_ref(ref)) if ref else None
        v = cfg.validation
        policy = ValidationPolicy(accuracy_tolerance=v.accuracy_tolerance, f1_tolerance=v.f1_tolerance,
                                  min_accuracy=v.min_accuracy, min_stability=v.min_stability,
                                  max_fgsm_drop=v.max_fgsm_drop)
        report = validate_paths(Candidate(ref=f"{cfg.model}:run-{run_id}", model_dir=model_dir, schema=schema),
                                base, policy=policy, environment=cfg.environment)
    except EvaluationFailed:
        raise
    except MlctlError as exc:
        raise EvaluationFailed(f"evaluate: {exc.message}", step="evaluate", hint=exc.hint) from None
    record_decision(report)
    if not report.passed:
        why = "; ".join(f"{c.name}: {c.detail}" for c in report.failed)
        raise EvaluationFailed(
            f"evaluate: the candidate failed the validation gate against {ref or 'no baseline'}: {why}",
            step="evaluate", hint="nothing was registered; improve the model or the data and run again "
            "(or, if the baseline itself should change, set baseline: in the pipeline file)")
    return report.to_dict()
