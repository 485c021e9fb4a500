"""Continuous training: a Kubeflow Pipelines (KFP v2) definition with two engines.

Public surface (the CLI and the demo call these; ``steps`` is importable alone, without kfp)::

    cfg = load_config("digits")                      # or load_config(None, path="my.yaml")
    view = run(cfg, dataset="s3://bucket/key@sha256:...", features="digits-pixels@1")
    result = watch_once(cfg)                         # one run per new object version / schema
    path = compile_pipeline(cfg, image="...@sha256:...", out=Path("pipeline.yaml"))
    view = submit_run(cfg, dataset=..., features=..., image=..., host=..., token=...)
    get_run(run_id), list_runs(pipeline=None)

See docs/pipelines.md for the entry-point contract and the cluster set-up.
"""

from control_plane.pipelines.config import PipelineConfig
from control_plane.pipelines.service import (
    RunView,
    WatchResult,
    begin,
    compile_pipeline,
    execute,
    get_run,
    list_runs,
    load_config,
    observe,
    run,
    submit_run,
    watch_begin,
    watch_once,
)

__all__ = [
    "PipelineConfig", "RunView", "WatchResult", "begin", "compile_pipeline", "execute", "get_run", "list_runs",
    "load_config", "observe", "run", "submit_run", "watch_begin", "watch_once",
]
