"""Benchmark: the local KFP pipeline run against calling the same step functions in-process.

    .venv/bin/python bench/pipeline.py [--grid 2] [--output json]

Both sides do the same work on the sample digits data set (v1): fetch + verify the digest, data
tests (feature schema, PII guard, the transformation unit tests), train one candidate per grid
point, select, the validation gate, register + sign. "ours" is ``mlctl pipeline run``'s engine:
KFP's local runner (``SubprocessRunner(use_venv=False)``), one subprocess per task, the grid's
candidates in parallel. The baseline calls ``control_plane.pipelines.steps`` directly, in this
process, one after the other. The ratio is the price of running the definition that also runs on
Kubeflow (process isolation, artifact passing, KFP's executor), measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._report import add_output_flag, emit  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, default=2, help="grid points (values of C)")
    add_output_flag(ap)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mlctl-bench-pipeline-"))
    os.environ["MLCTL_HOME"] = str(home)
    os.environ["MLCTL_ACTOR"] = "bench"
    from control_plane.access.roles import write_assignments
    from control_plane.pipelines import load_config, run, steps
    from control_plane.samples.pipeline import write_datasets

    write_assignments({"bench": ["ml-engineer"]})
    data = write_datasets(home / "data")["v1"]
    ref = f"{data}@sha256:{hashlib.sha256(data.read_bytes()).hexdigest()}"
    cs = [round(0.3 + 0.7 * i, 2) for i in range(args.grid)]
    cfg = load_config("digits").model_copy(update={"grid": {"C": cs, "max_iter": [300]}})

    # Baseline: the same step functions, in-process and sequential (registers version 1).
    t0 = time.perf_counter()
    work = home / "inproc"
    fetched = steps.fetch_dataset(ref, work / "data", cfg)
    path = work / "data" / fetched["file"]
    tested = steps.run_data_tests(path, cfg)
    dirs = []
    for i, params in enumerate(cfg.candidates()):
        steps.train_candidate(path, params, work / f"model-{i}", cfg)
        dirs.append(work / f"model-{i}")
    chosen = steps.select_best(dirs, cfg)
    best = dirs[chosen["best"]]
    evaluation = steps.evaluate_candidate(best, cfg, "inproc")
    steps.register_candidate(best, cfg, run_id="inproc", dataset=fetched, data_tests=tested,
                             evaluation=evaluation, code_commit=None, engine="inproc")
    inproc = time.perf_counter() - t0

    # Ours: the KFP local runner (registers version 2: same bytes would be a no-op elsewhere, but
    # the version number differs, so the registration work is the same).
    t0 = time.perf_counter()
    view = run(cfg, dataset=ref, force=True)
    local = time.perf_counter() - t0
    per_step = {k: round(v["finished"] - v["started"], 2) for k, v in sorted(view.steps.items())}

    result = {"grid": args.grid, "cpus": os.cpu_count(), "inproc_s": round(inproc, 2),
              "kfp_local_s": round(local, 2), "ratio": round(local / inproc, 2),
              "kfp_local_steps_s": per_step, "registered": view.registered}
    emit(result, args.output, [
        f"pipeline on digits v1, grid of {args.grid}, {os.cpu_count()} CPUs",
        f"  in-process step functions (baseline): {inproc:7.1f} s",
        f"  KFP local runner (ours):               {local:7.1f} s   ratio {local / inproc:.2f}x",
        f"  inside KFP, per step: {per_step}",
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
