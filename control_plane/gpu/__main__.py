"""``python -m control_plane.gpu [--json]``: the preflight with no dependency beyond nvidia-ml-py.

GPU nodes and NVIDIA's containers do not have mlctl's full dependency set; this entry point needs
only the standard library and ``pynvml``, so the same check runs in a preflight Job and in
``scripts/gpu-check.sh``. Exit codes as ``mlctl gpu preflight``: 0 ok, 9 no GPU/NVML.
"""

from __future__ import annotations

import json
import sys

from control_plane.errors import MlctlError
from control_plane.gpu.preflight import probe


def main(argv: list[str]) -> int:
    try:
        report = probe()
    except MlctlError as exc:
        print(f"error: {exc.message}\n  fix: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    if "--json" in argv:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(f"driver {report.driver_version}, CUDA {report.cuda_driver_version}")
        for d in report.devices:
            print(
                f"GPU {d.index}: {d.name} cc {d.compute_capability} {d.memory_total_mib} MiB "
                f"MIG {d.mig_mode} ECC {d.ecc_mode} -> build {d.recommended_precision}"
            )
        for w in report.warnings:
            print(f"warning: {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
