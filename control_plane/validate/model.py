"""Run an ONNX classifier with onnxruntime: labels, and class probabilities when it exposes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from control_plane.errors import MlctlError, NotFound


@dataclass
class OnnxClassifier:
    path: Path
    session: Any
    input_name: str
    n_features: int | None

    @classmethod
    def load(cls, model_dir_or_file: str | Path) -> OnnxClassifier:
        import onnxruntime as ort

        path = Path(model_dir_or_file)
        if path.is_dir():
            path = path / "model.onnx"
        if not path.is_file():
            raise NotFound(f"no ONNX model at {path}", hint="the model directory must hold model.onnx")
        so = ort.SessionOptions()
        so.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise MlctlError(
                f"{path} is not a loadable ONNX model: {str(exc).splitlines()[0]}",
                hint="re-export the model (skl2onnx, torch.onnx.export) and register it again",
            ) from None
        inp = session.get_inputs()[0]
        width = inp.shape[1] if len(inp.shape) > 1 and isinstance(inp.shape[1], int) else None
        return cls(path=path, session=session, input_name=inp.name, n_features=width)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(labels, probabilities or None) for the rows of ``x``."""
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})
        labels: np.ndarray | None = None
        probs: np.ndarray | None = None
        for arr in outputs:
            a = np.asarray(arr) if not isinstance(arr, list) else None
            if a is None:
                continue  # a ZipMap (list of dicts): use the label output instead
            if a.ndim == 2 and a.shape[1] > 1 and np.issubdtype(a.dtype, np.floating):
                probs = a
            elif a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1):
                labels = a.reshape(-1)
        if labels is None and probs is not None:
            labels = probs.argmax(axis=1)
        if labels is None:
            raise MlctlError(
                f"{self.path}: no label or probability output found",
                hint="export the classifier with a label output or a [N, classes] probability tensor",
            )
        return labels.astype(np.int64), probs

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.run(x)[0]
