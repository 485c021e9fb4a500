#!/usr/bin/env bash
# GPU checks for a machine with an NVIDIA GPU (x86-64, Python 3.12, nvidia-ml-py and PyTorch with
# CUDA present, no network). Runs from the source tree with PYTHONPATH; needs nothing installed
# beyond what that machine has. Writes everything under $OUT (or ./gpu-check-out). < 8 minutes.
#
#   1. NVML preflight (python -m control_plane.gpu --json): driver, CUDA, devices, compute
#      capability, MIG/ECC, and the precision chosen for this GPU;
#   2. the GPU-marked tests (tests/gpu) when pytest is importable;
#   3. when `import tensorrt` works: an in-process engine build of the sample model (carried in
#      scripts/gpu-assets/, made here by `scripts/gpu-check.sh --prepare`) and its parity gate.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

if [ "${1:-}" = "--prepare" ]; then
  # On the development machine: write the sample model the GPU machine cannot train (no sklearn there).
  .venv/bin/python - <<'PY'
from pathlib import Path
from control_plane.samples.digits import build_sample_model
m = build_sample_model(Path("scripts/gpu-assets/digits"), variant="v1")
print("prepared", m.model_file, m.eval_file)
PY
  exit 0
fi

status=0
{
  echo "== host"; uname -a; $PY --version; nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv 2>&1
} > "$OUT/host.txt" 2>&1
cat "$OUT/host.txt"

echo "== preflight"
timeout 60 $PY -m control_plane.gpu --json > "$OUT/preflight.json" 2> "$OUT/preflight.err"
rc=$?
cat "$OUT/preflight.json" "$OUT/preflight.err"
echo "preflight exit code: $rc" | tee "$OUT/preflight.rc"
[ $rc -eq 0 ] || status=1

if $PY -c "import pytest" 2>/dev/null; then
  echo "== GPU-marked tests"
  timeout 300 $PY -m pytest -p no:cacheprovider --noconftest -m gpu tests/gpu -q -rs \
    --junitxml="$OUT/gpu-tests.xml" 2>&1 | tee "$OUT/gpu-tests.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
else
  echo "pytest not importable: GPU tests skipped" | tee "$OUT/gpu-tests.txt"
fi

if $PY -c "import tensorrt" 2>/dev/null; then
  echo "== in-process TensorRT build + parity"
  timeout 300 $PY - "$OUT" <<'PY' 2>&1 | tee "$OUT/tensorrt.txt"
import json, sys
from pathlib import Path
import numpy as np
from control_plane.optimize import parity
from control_plane.optimize.onnx_io import read_interface
from control_plane.optimize.trt_inprocess import build_engine, engine_runner
out = Path(sys.argv[1]); assets = Path("scripts/gpu-assets/digits")
iface = read_interface(assets / "model.onnx")
x = np.load(assets / "eval.npz")["X"].astype(np.float32)
result = {}
for precision in ("fp32", "fp16"):
    build = build_engine(assets / "model.onnx", out / precision, iface, precision=precision)
    try:
        ref = parity.onnx_runner(str(assets / "model.onnx"))(x)
    except ImportError:  # no onnxruntime here: compare against the fp32 engine
        ref = engine_runner(out / "fp32" / "model.plan")(x)
    report = parity.compare(ref, engine_runner(build.plan_path)(x), precision=precision)
    result[precision] = {**report.as_dict(), "tensorrt": build.tensorrt_version, "gpu": build.gpu_model,
                         "cc": build.compute_capability}
    print(precision, "passed" if report.passed else "FAILED", report.reasons)
json.dump(result, open(out / "tensorrt.json", "w"), indent=2)
sys.exit(0 if all(r["passed"] for r in result.values()) else 1)
PY
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
else
  echo "tensorrt not importable here: in-process build skipped (engines are built on the cluster)" | tee "$OUT/tensorrt.txt"
fi
echo "gpu-check: $([ $status -eq 0 ] && echo PASSED || echo FAILED); results in $OUT"
exit $status
