"""A small digits classifier (scikit-learn's bundled 8x8 digits) exported to ONNX.

Used by tests, benches and ``make demo`` as a real model that a real model server loads. The
directory written holds:

- ``model.onnx``: float32 input ``input`` of shape ``[None, 64]``; output ``probabilities``,
  a plain ``[None, 10]`` float tensor (ZipMap off, so V2 clients get a tensor, not a map).
- ``sample_input.json``: one recorded V2 inference request (what smoke tests send).
- ``eval.npz``: a held-out evaluation set (``X`` float32, ``y`` int64).
- ``model.json``: name, variant, input/output names and shapes, held-out accuracy.

Variants: ``v1`` and ``v2`` differ in hyper-parameters (both good); ``broken`` writes a file
that is not an ONNX model, so a model server fails to load it (it never becomes ready);
``bad-shape`` is trained without the digit 9, so it answers 9 probabilities while its model card
promises 10 (it loads and serves, and fails a smoke test's output-shape check); ``permuted`` is
``v1`` trained on relabelled digits (``d`` → ``(d + 1) % 10``): a healthy, fast model of the right
shape that disagrees with ``v1`` on every answer (what a shadow release must catch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
N_FEATURES = 64
N_CLASSES = 10
VARIANTS = ("v1", "v2", "broken", "bad-shape", "permuted")

# Hyper-parameters per variant: small and fast to train (well under a second on one core).
_PARAMS: dict[str, dict[str, Any]] = {
    "v1": {"C": 1.0, "max_iter": 400},
    "v2": {"C": 0.3, "max_iter": 600},
    "bad-shape": {"C": 1.0, "max_iter": 400},
    "permuted": {"C": 1.0, "max_iter": 400},
}


@dataclass(frozen=True)
class SampleModel:
    """Where the sample model was written and what it looks like to a V2 client."""

    path: Path  # the model directory (what gets registered, signed and served)
    variant: str
    model_file: Path
    sample_input_file: Path
    eval_file: Path
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    input_shape: tuple[int, int] = (1, N_FEATURES)
    output_shape: tuple[int, int] = (1, N_CLASSES)
    accuracy: float | None = None

    def sample_request(self) -> dict[str, Any]:
        """The recorded V2 request body (``POST /v2/models/{m}/infer``)."""
        data: dict[str, Any] = json.loads(self.sample_input_file.read_text())
        return data

    def eval_set(self) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.eval_file) as data:
            return data["X"].astype(np.float32), data["y"].astype(np.int64)


def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)  # pixel intensities 0..16 -> 0..1
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=7, stratify=y)
    return x_tr, x_te, y_tr.astype(np.int64), y_te.astype(np.int64)


def _to_onnx(clf: Any) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        clf,
        initial_types=[(INPUT_NAME, FloatTensorType([None, N_FEATURES]))],
        options={id(clf): {"zipmap": False}},
        target_opset=17,
    )
    # Keep only the probabilities output, renamed to a stable name: servers and smoke tests rely on it.
    graph = onx.graph
    prob = next(o for o in graph.output if "prob" in o.name)
    old = prob.name
    for node in graph.node:
        node.output[:] = [OUTPUT_NAME if n == old else n for n in node.output]
    prob.name = OUTPUT_NAME
    keep = [o for o in graph.output if o.name == OUTPUT_NAME]
    del graph.output[:]
    graph.output.extend(keep)
    onx.producer_name = "mlctl-samples"
    # skl2onnx names the graph with a random UUID; a fixed name makes builds byte-identical, so
    # registering a rebuilt sample again is a no-op (the registry refuses other bytes).
    graph.name = "digits"
    return bytes(onx.SerializeToString())


def build_sample_model(out_dir: Path, *, variant: str = "v1") -> SampleModel:
    """Train the ``variant`` classifier; write it, its sample input and eval set to ``out_dir``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown sample variant {variant!r}; use one of {', '.join(VARIANTS)}")
    from sklearn.linear_model import LogisticRegression

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x_tr, x_te, y_tr, y_te = _split()
    accuracy: float | None = None
    if variant == "broken":
        # Looks like a model directory but the server cannot load it: readiness never comes.
        model_bytes = b"this is not an ONNX model\n"
    else:
        clf = LogisticRegression(**_PARAMS[variant], random_state=0)
        if variant == "bad-shape":
            keep = y_tr != 9
            x_tr, y_tr = x_tr[keep], y_tr[keep]
        if variant == "permuted":
            y_tr, y_te = (y_tr + 1) % N_CLASSES, (y_te + 1) % N_CLASSES
        clf.fit(x_tr, y_tr)
        accuracy = float((clf.predict(x_te) == y_te).mean())
        model_bytes = _to_onnx(clf)
    model_file = out_dir / "model.onnx"
    model_file.write_bytes(model_bytes)
    sample = {
        "inputs": [
            {"name": INPUT_NAME, "shape": [1, N_FEATURES], "datatype": "FP32", "data": x_te[0].tolist()}
        ]
    }
    sample_file = out_dir / "sample_input.json"
    sample_file.write_text(json.dumps(sample))
    eval_file = out_dir / "eval.npz"
    # Written via a file handle so numpy does not append a second ".npz".
    with eval_file.open("wb") as fh:
        np.savez(fh, X=x_te, y=y_te)
    (out_dir / "model.json").write_text(
        json.dumps(
            {
                "name": "digits",
                "variant": variant,
                "format": "onnx",
                "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, N_FEATURES]}],
                "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, N_CLASSES]}],
                "accuracy": accuracy,
            },
            indent=2,
            sort_keys=True,
        )
    )
    return SampleModel(
        path=out_dir,
        variant=variant,
        model_file=model_file,
        sample_input_file=sample_file,
        eval_file=eval_file,
        accuracy=accuracy,
    )


def _csv(path: Path, x: np.ndarray, prediction: np.ndarray) -> None:
    # Column names match what the live request log yields for the V2 input tensor ``input``
    # (``input_0`` .. ``input_63`` and ``prediction``), so the same reference CSV serves file
    # drift (``--current today.csv``) and live drift (``mlctl monitor drift digits``).
    header = ",".join([f"{INPUT_NAME}_{j}" for j in range(x.shape[1])] + ["prediction"])
    with path.open("w", encoding="ascii", newline="\n") as fh:
        fh.write(header + "\n")
        for row, pred in zip(x, prediction, strict=True):
            fh.write(",".join(f"{v:.4f}" for v in row) + f",{int(pred)}\n")


# The centre of the 8x8 image (rows 3-4, columns 2-5): the pixels a brighter scanner changes most.
_BRIGHTER = [r * 8 + c for r in (3, 4) for c in range(2, 6)]


def write_sample_tables(out_dir: Path) -> tuple[Path, Path]:
    """A reference table (the training split: what the model learnt from) and a current table
    (held-out rows with the image's centre brighter: 8 pixels +0.25, clipped), as CSV. Deterministic bytes, so their
    digests are the same on every machine. The current table drifts on purpose: it is what a
    drift check should catch."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x_tr, x_te, y_tr, y_te = _split()
    reference = out_dir / "train.csv"
    current = out_dir / "today.csv"
    _csv(reference, x_tr, y_tr)
    shifted = x_te.copy()
    shifted[:, _BRIGHTER] = np.clip(shifted[:, _BRIGHTER] + 0.25, 0.0, 1.0)
    _csv(current, shifted, y_te)
    return reference, current
