"""GPU preflight: the real NVML where a GPU exists (marked gpu), the no-GPU path here, and the
decision logic (precision, compatibility) on NVML answers recorded from real devices."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from control_plane.errors import PolicyViolation, ToolMissing
from control_plane.gpu import preflight
from tests.cli_runner import run_mlctl


def _nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


HAS_GPU = _nvml_works()


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU; the no-GPU path cannot be shown here")
def test_preflight_without_gpu_exits_with_documented_code():
    out = run_mlctl("gpu", "preflight")
    assert out.returncode == preflight.NO_GPU_EXIT_CODE == 9
    assert "no NVIDIA GPU usable here" in out.stderr
    assert "Traceback" not in out.stderr
    help_text = run_mlctl("gpu", "preflight", "--help").stdout
    assert "9 no GPU" in help_text


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="no NVIDIA GPU / NVML on this machine")
def test_preflight_on_real_nvml():
    report = preflight.probe()
    assert report.devices and report.driver_version
    for device in report.devices:
        major = device.compute_capability.split(".")[0]
        assert int(major) >= 3
        assert device.recommended_precision == preflight.recommend_precision(device.compute_capability)
        assert device.memory_total_mib > 0
    out = subprocess.run(
        [sys.executable, "-m", "control_plane.gpu", "--json"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    ("cc", "precision", "int8"),
    [("6.0", "fp32", False), ("7.0", "fp16", False), ("7.5", "fp16", True), ("8.6", "fp16", True), ("9.0", "fp16", True)],
)
def test_precision_choice(cc, precision, int8):
    assert preflight.recommend_precision(cc) == precision
    assert preflight.int8_capable(cc) is int8


def test_engine_for_another_compute_capability_is_refused():
    preflight.check_engine_compatible("8.6", "8.6")
    with pytest.raises(PolicyViolation, match=r"built for compute capability 9.0 but the target GPUs are 8.6"):
        preflight.check_engine_compatible("9.0", "8.6")


def test_probe_reads_nvml_answers(monkeypatch):
    """NVIDIA's library is replaced by answers recorded from an A10G node (not our code)."""
    import pynvml

    class Mem:
        total = 24 * 1024**3
        free = 23 * 1024**3

    fake = types.SimpleNamespace(
        NVMLError=pynvml.NVMLError,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlSystemGetCudaDriverVersion_v2=lambda: 12040,
        nvmlSystemGetDriverVersion=lambda: b"550.54.15",
        nvmlSystemGetNVMLVersion=lambda: "12.550.54.15",
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: object(),
        nvmlDeviceGetCudaComputeCapability=lambda h: (8, 6),
        nvmlDeviceGetMemoryInfo=lambda h: Mem(),
        nvmlDeviceGetMigMode=lambda h: (_ for _ in ()).throw(pynvml.NVMLError(3)),
        nvmlDeviceGetEccMode=lambda h: (0, 0),
        nvmlDeviceGetName=lambda h: "NVIDIA A10G",
        nvmlDeviceGetUUID=lambda h: "GPU-1234",
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    report = preflight.probe()
    (device,) = report.devices
    assert report.cuda_driver_version == "12.4"
    assert (device.name, device.compute_capability, device.recommended_precision) == ("NVIDIA A10G", "8.6", "fp16")
    assert (device.mig_mode, device.ecc_mode) == ("unsupported", "disabled")
    assert any("ECC is disabled" in w for w in report.warnings)
    assert device.memory_total_mib == 24 * 1024


def test_probe_without_nvml_library_is_tool_missing(monkeypatch):
    import pynvml

    def boom():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", boom)
    with pytest.raises(ToolMissing) as info:
        preflight.probe()
    assert info.value.exit_code == 9
