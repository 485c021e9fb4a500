"""The train and select steps: one call of the user's entry point per grid point, held to its
contract, then the best candidate by the declared metric."""

from __future__ import annotations

import importlib
import json
import shutil
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from control_plane.errors import PipelineFailed, TrainingFailed
from control_plane.pipelines.config import PipelineConfig


def _entry_point(cfg: PipelineConfig) -> Callable[..., Any]:
    module, _, func = cfg.trainer.partition(":")
    try:
        fn = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise TrainingFailed(f"train: cannot load the entry point {cfg.trainer} ({exc})", step="train",
                             hint="fix trainer: MODULE:FUNCTION in the pipeline file (the module must be "
                             "importable in the step's image)") from None
    if not callable(fn):
        raise TrainingFailed(f"train: {cfg.trainer} is not a function", step="train",
                             hint="point trainer: at def train(data, params, out)")
    return fn


def train_candidate(data_file: str | Path, params: Mapping[str, Any], out_dir: str | Path,
                    cfg: PipelineConfig) -> dict[str, Any]:
    """Call the entry point once and hold it to the contract: ``model.json`` in ``out`` and metrics
    (returned, or ``metrics.json``) that include the selection metric."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fn = _entry_point(cfg)
    try:
        returned = fn(data=Path(data_file), params=dict(params), out=out)
    except Exception as exc:  # the user's code: any exception is a failed training
        traceback.print_exc()
        raise TrainingFailed(f"train: {cfg.trainer} failed with params {dict(params)}: "
                             f"{type(exc).__name__}: {exc}", step="train",
                             hint="fix the entry point or the grid in the pipeline file; the step log holds "
                             "the traceback") from None
    if not (out / "model.json").is_file():
        raise TrainingFailed(f"train: {cfg.trainer} wrote no model.json into its output directory",
                             step="train", hint="the entry point must write out/model.json (docs/pipelines.md)")
    metrics: Any = returned
    if not isinstance(metrics, Mapping):
        try:
            metrics = json.loads((out / "metrics.json").read_text())
        except (OSError, json.JSONDecodeError):
            metrics = None
    if not isinstance(metrics, Mapping) or not isinstance(metrics.get(cfg.select.metric), int | float):
        raise TrainingFailed(f"train: {cfg.trainer} reported no numeric {cfg.select.metric!r} metric",
                             step="train", hint="return a dict of metrics (or write out/metrics.json) that "
                             f"includes {cfg.select.metric}")
    clean = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    (out / "metrics.json").write_text(json.dumps(clean, sort_keys=True))
    (out / "params.json").write_text(json.dumps(dict(params), sort_keys=True, default=str))
    return {"params": dict(params), "metrics": clean}


def select_best(candidates: list[str | Path], cfg: PipelineConfig) -> dict[str, Any]:
    """The index of the best candidate by the declared metric (ties: the first in grid order)."""
    scored = []
    for i, path in enumerate(candidates):
        metrics = json.loads((Path(path) / "metrics.json").read_text())
        params = json.loads((Path(path) / "params.json").read_text())
        scored.append({"index": i, "params": params, "metrics": metrics})
    if not scored:
        raise PipelineFailed("select: no training candidates", step="select", hint="give the pipeline a grid")
    sign = 1.0 if cfg.select.mode == "max" else -1.0
    best = max(scored, key=lambda c: (sign * c["metrics"][cfg.select.metric], -c["index"]))
    return {"best": best["index"], "params": best["params"], "metrics": best["metrics"],
            "metric": cfg.select.metric, "candidates": scored}


def copy_model(src: str | Path, dest: str | Path) -> None:
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
