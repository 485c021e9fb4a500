"""GPU preflight over NVML: what GPUs a node has, which precision to build for, and whether an
engine built elsewhere may run here."""

from control_plane.gpu.preflight import (
    NO_GPU_EXIT_CODE,
    GpuDevice,
    PreflightReport,
    check_engine_compatible,
    probe,
    recommend_precision,
)

__all__ = [
    "NO_GPU_EXIT_CODE",
    "GpuDevice",
    "PreflightReport",
    "check_engine_compatible",
    "probe",
    "recommend_precision",
]
