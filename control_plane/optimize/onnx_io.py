"""Reading an ONNX model's interface: input/output names, element types and shapes.

Triton's config, TensorRT optimization profiles and the parity gate all start from this.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

# ONNX TensorProto element type -> (Triton data type, numpy dtype name)
_TYPES: dict[int, tuple[str, str]] = {
    onnx.TensorProto.FLOAT: ("TYPE_FP32", "float32"),
    onnx.TensorProto.FLOAT16: ("TYPE_FP16", "float16"),
    onnx.TensorProto.DOUBLE: ("TYPE_FP64", "float64"),
    onnx.TensorProto.INT8: ("TYPE_INT8", "int8"),
    onnx.TensorProto.INT32: ("TYPE_INT32", "int32"),
    onnx.TensorProto.INT64: ("TYPE_INT64", "int64"),
    onnx.TensorProto.UINT8: ("TYPE_UINT8", "uint8"),
    onnx.TensorProto.BOOL: ("TYPE_BOOL", "bool"),
    onnx.TensorProto.STRING: ("TYPE_STRING", "object"),
}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    triton_type: str
    numpy_dtype: str
    shape: tuple[int, ...]  # -1 for a dynamic dimension

    @property
    def batch_dynamic(self) -> bool:
        return bool(self.shape) and self.shape[0] == -1


@dataclass(frozen=True)
class ModelInterface:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: int


def _spec(value: onnx.ValueInfoProto) -> TensorSpec:
    ttype = value.type.tensor_type
    triton, np_name = _TYPES.get(ttype.elem_type, ("TYPE_FP32", "float32"))
    dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in ttype.shape.dim)
    return TensorSpec(name=value.name, triton_type=triton, numpy_dtype=np_name, shape=dims)


def read_interface(model_path: Path) -> ModelInterface:
    model = onnx.load(str(model_path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    inputs = tuple(_spec(v) for v in model.graph.input if v.name not in initializers)
    outputs = tuple(_spec(v) for v in model.graph.output)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return ModelInterface(inputs=inputs, outputs=outputs, opset=opset)
