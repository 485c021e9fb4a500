"""In-process TensorRT build, used only where ``import tensorrt`` works (NVIDIA's container, a
workstation with TensorRT). Same inputs and outputs as the cluster Job: an ONNX model in, a
serialized plan plus the facts the lineage needs out."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.errors import MlctlError, ToolMissing
from control_plane.gpu import probe
from control_plane.optimize.onnx_io import ModelInterface


def available() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


@dataclass(frozen=True)
class EngineBuild:
    plan_path: Path
    tensorrt_version: str
    gpu_model: str
    compute_capability: str


def _gpu() -> tuple[str, str]:
    device = probe().devices[0]
    return device.name, device.compute_capability


def build_engine(
    onnx_path: Path,
    out_dir: Path,
    interface: ModelInterface,
    *,
    precision: str,
    max_batch: int = 64,
    calibrator: Any | None = None,
) -> EngineBuild:
    if not available():
        raise ToolMissing(
            "TensorRT is not importable here",
            hint="build on the cluster (the default), or run inside NVIDIA's TensorRT container",
        )
    import tensorrt as trt

    if precision == "int8" and calibrator is None:
        raise MlctlError("int8 needs calibration data", hint="register a validation set, or use fp16")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise MlctlError(f"TensorRT could not parse {onnx_path.name}: {errors}", hint="check the ONNX opset")
    config = builder.create_builder_config()
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
    if all(t.batch_dynamic for t in interface.inputs):
        profile = builder.create_optimization_profile()
        for t in interface.inputs:
            rest = tuple(t.shape[1:])
            profile.set_shape(t.name, (1, *rest), (max(1, max_batch // 2), *rest), (max_batch, *rest))
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise MlctlError("TensorRT failed to build the engine", hint="see the TensorRT log above")
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = out_dir / "model.plan"
    plan.write_bytes(bytes(serialized))
    gpu_model, cc = _gpu()
    return EngineBuild(plan_path=plan, tensorrt_version=trt.__version__, gpu_model=gpu_model, compute_capability=cc)


def engine_runner(plan_path: Path) -> Any:
    """A callable running the engine on numpy input (for the parity gate), via TensorRT + torch CUDA
    tensors as I/O buffers (torch is present wherever our GPU checks run)."""
    import numpy as np
    import tensorrt as trt
    import torch

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan_path.read_bytes())
    context = engine.create_execution_context()
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]

    def run(x: np.ndarray) -> np.ndarray:
        source = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).cuda()
        context.set_input_shape(inputs[0], tuple(source.shape))
        context.set_tensor_address(inputs[0], source.data_ptr())
        result = None
        for name in outputs:
            shape = tuple(context.get_tensor_shape(name))
            buf = torch.empty(shape, dtype=torch.float32, device="cuda")
            context.set_tensor_address(name, buf.data_ptr())
            result = buf
        stream = torch.cuda.current_stream()
        context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        assert result is not None
        return result.cpu().numpy()

    return run
