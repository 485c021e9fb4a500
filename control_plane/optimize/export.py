"""Export helpers for versions that are not ONNX yet: scikit-learn (skl2onnx) and PyTorch
(``torch.onnx``, where torch is installed). Both produce a float32 input with a dynamic batch axis,
which is what Triton's dynamic batching and TensorRT's optimization profiles expect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from control_plane.errors import MlctlError, ToolMissing


def sklearn_to_onnx(estimator: Any, n_features: int, out_path: Path, *, opset: int = 17) -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    try:
        # zipmap off: Triton and TensorRT want a plain probabilities tensor, not a list of dicts
        options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "predict_proba") else None
        onx = to_onnx(
            estimator,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            target_opset=opset,
            options=options,
        )
    except Exception as exc:  # skl2onnx raises many types for unsupported estimators
        raise MlctlError(
            f"cannot export {type(estimator).__name__} to ONNX: {exc}",
            hint="use an estimator skl2onnx supports, or export it yourself and register the .onnx",
        ) from None
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(onx.SerializeToString())
    return out_path


def torch_to_onnx(module: Any, example_input: Any, out_path: Path, *, opset: int = 17) -> Path:
    try:
        import torch
    except ImportError:
        raise ToolMissing("PyTorch is not installed", hint="pip install torch, or register an ONNX file") from None
    module.eval()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module,
        (example_input,),
        str(out_path),
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )
    return out_path
