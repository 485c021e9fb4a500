"""NVML-based GPU preflight.

A TensorRT engine only runs on the compute capability (and TensorRT version) it was built for, so
before a build or a release we read the real devices through NVML (``nvidia-ml-py``, imported as
``pynvml``) and compare. Without NVML or a GPU we fail with ``NO_GPU_EXIT_CODE`` (9, the
``ToolMissing`` code) and a message saying what is missing — never a traceback.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from control_plane.errors import PolicyViolation, ToolMissing

NO_GPU_EXIT_CODE = ToolMissing.exit_code  # documented in `mlctl gpu preflight --help` and docs/optimize.md


@dataclass(frozen=True)
class GpuDevice:
    index: int
    name: str
    uuid: str
    compute_capability: str  # "8.6"
    memory_total_mib: int
    memory_free_mib: int
    mig_mode: str  # "enabled" | "disabled" | "unsupported"
    ecc_mode: str  # "enabled" | "disabled" | "unsupported"
    recommended_precision: str


@dataclass(frozen=True)
class PreflightReport:
    driver_version: str
    cuda_driver_version: str  # the CUDA version the driver supports, e.g. "12.4"
    nvml_version: str
    devices: list[GpuDevice] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def compute_capabilities(self) -> set[str]:
        return {d.compute_capability for d in self.devices}


def recommend_precision(compute_capability: str) -> str:
    """The precision to build for on a GPU of this compute capability.

    Tensor cores arrived with Volta (7.0): FP16 is then the default that keeps accuracy within
    tolerance and roughly doubles throughput. INT8 tensor cores (Turing 7.2/7.5 onward) are faster
    still but need calibration data and a looser parity gate, so we offer it, never default to it.
    """
    major, minor = (int(p) for p in compute_capability.split(".")[:2])
    if (major, minor) >= (7, 0):
        return "fp16"
    return "fp32"


def int8_capable(compute_capability: str) -> bool:
    major, minor = (int(p) for p in compute_capability.split(".")[:2])
    return (major, minor) >= (7, 2) or (major, minor) == (6, 1)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _mode(fn: Any, handle: Any) -> str:
    import pynvml

    try:
        current = fn(handle)
        if isinstance(current, (list, tuple)):
            current = current[0]
        return "enabled" if int(current) else "disabled"
    except pynvml.NVMLError:
        return "unsupported"


def probe() -> PreflightReport:
    """Read the driver, CUDA and every device through NVML."""
    try:
        import pynvml
    except ImportError:
        raise ToolMissing(
            "NVML bindings are not installed (python package nvidia-ml-py)",
            hint="pip install nvidia-ml-py, on a machine with an NVIDIA driver",
        ) from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise ToolMissing(
            f"no NVIDIA GPU usable here: NVML could not start ({exc})",
            hint="run on a GPU node with the NVIDIA driver installed (on the cluster: the preflight Job "
            "on the GPU pool); exit code 9 means 'no GPU/NVML'",
        ) from None
    try:
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        report_devices: list[GpuDevice] = []
        warnings: list[str] = []
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            raise ToolMissing("NVML reports no GPU devices", hint="check the node's GPUs and driver")
        for index in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            cc = f"{major}.{minor}"
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            mig = _mode(pynvml.nvmlDeviceGetMigMode, handle)
            ecc = _mode(pynvml.nvmlDeviceGetEccMode, handle)
            if ecc == "disabled":
                warnings.append(f"GPU {index}: ECC is disabled; regulated workloads should run with ECC on")
            if mig == "enabled":
                warnings.append(f"GPU {index}: MIG is enabled; engines must be built on the same MIG profile")
            report_devices.append(
                GpuDevice(
                    index=index,
                    name=_text(pynvml.nvmlDeviceGetName(handle)),
                    uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                    compute_capability=cc,
                    memory_total_mib=int(mem.total) // (1024 * 1024),
                    memory_free_mib=int(mem.free) // (1024 * 1024),
                    mig_mode=mig,
                    ecc_mode=ecc,
                    recommended_precision=recommend_precision(cc),
                )
            )
        return PreflightReport(
            driver_version=_text(pynvml.nvmlSystemGetDriverVersion()),
            cuda_driver_version=f"{cuda // 1000}.{(cuda % 1000) // 10}",
            nvml_version=_text(pynvml.nvmlSystemGetNVMLVersion()),
            devices=report_devices,
            warnings=warnings,
        )
    finally:
        pynvml.nvmlShutdown()


def check_engine_compatible(engine_cc: str, target_cc: str, *, what: str = "engine") -> None:
    """Refuse an engine built for another compute capability than the target's GPUs."""
    if engine_cc != target_cc:
        raise PolicyViolation(
            f"{what} was built for compute capability {engine_cc} but the target GPUs are {target_cc}",
            hint="rebuild the engine on the target pool (mlctl model optimize --target tensorrt --env ENV)",
        )
