"""Triton model repositories: ``<model>/config.pbtxt`` and ``<model>/<version>/model.onnx|plan``.

The config is built as Triton's own ``ModelConfig`` protobuf (from ``tritonclient``) and written
in protobuf text format, so what we write is by construction what Triton parses.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from control_plane.errors import MlctlError
from control_plane.optimize.onnx_io import ModelInterface

PLATFORMS = {"onnx": "onnxruntime_onnx", "tensorrt": "tensorrt_plan"}
FILENAMES = {"onnx": "model.onnx", "tensorrt": "model.plan"}


@dataclass(frozen=True)
class TritonRepository:
    root: Path
    model_name: str
    config_path: Path
    model_files: tuple[Path, ...]


def build_config(
    model_name: str,
    interface: ModelInterface,
    *,
    target: str,
    max_batch_size: int = 64,
    gpu_instances: int = 1,
    cc_model_filenames: dict[str, str] | None = None,
) -> mc.ModelConfig:
    if target not in PLATFORMS:
        raise MlctlError(f"unknown target '{target}'", hint="use onnx or tensorrt")
    config = mc.ModelConfig(name=model_name, platform=PLATFORMS[target])
    batched = all(t.batch_dynamic for t in interface.inputs)
    # With a dynamic leading dimension Triton owns batching: dims exclude the batch axis.
    config.max_batch_size = max_batch_size if batched else 0
    for tensors, field in ((interface.inputs, config.input), (interface.outputs, config.output)):
        for t in tensors:
            dims = list(t.shape[1:] if batched and t.shape else t.shape)
            entry = field.add()
            entry.name = t.name
            entry.data_type = mc.DataType.Value(t.triton_type)
            entry.dims.extend(dims or [1])
    if batched:
        config.dynamic_batching.max_queue_delay_microseconds = 100
    group = config.instance_group.add()
    group.kind = mc.ModelInstanceGroup.Kind.KIND_GPU
    group.count = gpu_instances
    if cc_model_filenames:
        for cc, filename in sorted(cc_model_filenames.items()):
            config.cc_model_filenames[cc] = filename
    return config


def render_config(config: mc.ModelConfig) -> str:
    return str(text_format.MessageToString(config))


def parse_config(text: str) -> mc.ModelConfig:
    """Parse a config.pbtxt against Triton's schema (raises on any unknown field or bad value)."""
    return text_format.Parse(text, mc.ModelConfig())


def write_repository(
    root: Path,
    model_name: str,
    interface: ModelInterface,
    *,
    target: str,
    model_files: dict[str, Path],
    version: int = 1,
    max_batch_size: int = 64,
) -> TritonRepository:
    """Write a repository. ``model_files`` maps a compute capability ("8.6") to a plan file for
    TensorRT (several → ``cc_model_filenames``), or ``{"any": model.onnx}`` for ONNX."""
    model_dir = root / model_name
    version_dir = model_dir / str(version)
    version_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    cc_names: dict[str, str] = {}
    if target == "tensorrt" and len(model_files) > 1:
        for cc, src in model_files.items():
            name = f"model.sm{cc.replace('.', '')}.plan"
            shutil.copyfile(src, version_dir / name)
            cc_names[cc] = name
            written.append(version_dir / name)
    else:
        ((_, src),) = model_files.items()
        dest = version_dir / FILENAMES[target]
        shutil.copyfile(src, dest)
        written.append(dest)
    config = build_config(
        model_name, interface, target=target, max_batch_size=max_batch_size, cc_model_filenames=cc_names or None
    )
    config_path = model_dir / "config.pbtxt"
    config_path.write_text(render_config(config))
    return TritonRepository(root=root, model_name=model_name, config_path=config_path, model_files=tuple(written))
