"""The parity gate: is the optimized model still the approved model?

Both run on the same validation samples; outputs must agree within a tolerance that depends on
the precision (FP16 and INT8 lose bits by design), and a classifier's top-1 choice must agree on
nearly every sample. A failing engine is not registered, and the report says by how much it failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from control_plane.errors import PolicyViolation

# precision -> (max abs error, relative error, min top-1 agreement)
TOLERANCES: dict[str, tuple[float, float, float]] = {
    "fp32": (1e-4, 1e-3, 1.0),
    "fp16": (1e-2, 5e-2, 0.99),
    "int8": (1e-1, 2e-1, 0.97),
}

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ParityReport:
    precision: str
    samples: int
    max_abs_error: float
    max_rel_error: float
    top1_agreement: float | None
    tolerance_abs: float
    tolerance_rel: float
    tolerance_top1: float
    passed: bool
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    reference: np.ndarray, candidate: np.ndarray, *, precision: str, classifier: bool = True
) -> ParityReport:
    if precision not in TOLERANCES:
        raise PolicyViolation(f"unknown precision '{precision}'", hint="use fp32, fp16 or int8")
    tol_abs, tol_rel, tol_top1 = TOLERANCES[precision]
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    reasons: list[str] = []
    if ref.shape != cand.shape:
        return ParityReport(precision, int(ref.shape[0]) if ref.ndim else 0, float("inf"), float("inf"), None,
                            tol_abs, tol_rel, tol_top1, False,
                            (f"output shape {cand.shape} differs from the source model's {ref.shape}",))
    abs_err = np.abs(ref - cand)
    max_abs = float(abs_err.max()) if abs_err.size else 0.0
    # relative to the output's own scale, so near-zero probabilities do not explode the ratio
    scale = max(float(np.abs(ref).max()) if ref.size else 0.0, 1e-12)
    max_rel = max_abs / scale
    top1 = None
    if classifier and ref.ndim == 2 and ref.shape[1] > 1:
        top1 = float(np.mean(ref.argmax(axis=1) == cand.argmax(axis=1)))
        if top1 < tol_top1:
            reasons.append(f"top-1 agreement {top1:.2%} is below {tol_top1:.2%} (by {tol_top1 - top1:.2%})")
    if max_abs > tol_abs and max_rel > tol_rel:
        reasons.append(
            f"max abs error {max_abs:.3g} exceeds {tol_abs:g} by {max_abs - tol_abs:.3g} "
            f"(relative {max_rel:.3g} > {tol_rel:g})"
        )
    return ParityReport(
        precision=precision,
        samples=int(ref.shape[0]) if ref.ndim else 1,
        max_abs_error=max_abs,
        max_rel_error=max_rel,
        top1_agreement=top1,
        tolerance_abs=tol_abs,
        tolerance_rel=tol_rel,
        tolerance_top1=tol_top1,
        passed=not reasons,
        reasons=tuple(reasons),
    )


def run_parity(source: Runner, candidate: Runner, samples: np.ndarray, *, precision: str) -> ParityReport:
    return compare(source(samples), candidate(samples), precision=precision)


def onnx_runner(model_path: str, *, output_index: int = -1) -> Runner:
    """Run an ONNX model under ONNX Runtime on CPU; returns the chosen output (default: the last,
    which for skl2onnx classifiers is the probabilities)."""
    import onnxruntime as ort

    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        outputs = session.run(None, {input_name: x.astype(np.float32)})
        return np.asarray(outputs[output_index])

    return run
