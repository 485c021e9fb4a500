"""Pipeline verbs: compile, run (local or Kubeflow), watch (one look), status, list.

The domain (run records, change detection, engines) stays in ``control_plane.pipelines``; this
module is the entry that authorizes. A run trains, registers and signs a model version, so it needs
``pipeline.run`` and the ``model.register`` / ``model.sign`` permissions of what it does, all checked
before any step starts (the registry no longer checks them itself). The run records its own audit
entries (start and finish), the watcher its ``pipeline.watch`` entry.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from control_plane import pipelines
from control_plane.errors import MlctlError
from control_plane.output import table
from control_plane.pipelines import config as pconfig
from control_plane.pipelines.config import PipelineConfig, known
from control_plane.pipelines.service import RunView, StatusCallback, WatchResult
from control_plane.services.context import Context

__all__ = [
    "SUBMITTED_HEADER", "CompileView", "DefinedView", "Detach", "RunResultView", "RunStatusView", "RunsView",
    "WatchView",
    "compile_pipeline", "config", "defined", "last_run", "list_runs", "run", "start", "status", "steps_table", "watch",
    "watch_start",
]

# How a front end runs the long part of a verb elsewhere (the server: a background job); the
# request answers as soon as the run is recorded.
Detach = Callable[[Callable[[], Any]], None]
SUBMITTED_HEADER = "X-Mlctl-Submitted-To"  # over HTTP, --engine kubeflow: the KFP endpoint the run went to


def config(ctx: Context, name: str | None, path: Path | None = None, env: str | None = None) -> PipelineConfig:
    """The pipeline NAME (or the file ``path``), for environment ``env`` (default: the file's)."""
    return pipelines.load_config(name, path, env)


def _authorize_run(ctx: Context, cfg: PipelineConfig) -> None:
    ctx.authorize("pipeline.run", f"pipeline/{cfg.name}")
    for action in ("model.register", "model.sign"):  # what the last step does with the trained model
        ctx.authorize(action, cfg.model)


# --- views ---------------------------------------------------------------------------------------

STATE_STYLE = {"running": "yellow", "done": "green", "failed": "bold red"}


def steps_table(steps: dict[str, dict[str, Any]]) -> Table:
    """One line per step (and per grid candidate): the live progress of a run and its status view."""
    from control_plane.pipelines.steps import STEPS  # lazy: kfp (~2 s); CLI start-up imports this module

    t = Table(title="pipeline steps", title_justify="left", show_edge=False)
    for col in ("step", "state", "seconds"):
        t.add_column(col)
    order = {s: i for i, s in enumerate(STEPS)}
    keys = sorted(steps, key=lambda k: (order.get(str(steps[k].get("step", k)), 99), k))
    shown = {str(steps[k].get("step")) for k in keys}
    for key in keys:
        s = steps[key]
        state = str(s.get("state", "?"))
        secs = (s.get("finished") or time.time()) - s.get("started", time.time())
        t.add_row(key, f"[{STATE_STYLE.get(state, '')}]{state}[/]", f"{secs:.1f}")
    for step in STEPS:
        if step not in shown:
            t.add_row(step, "[dim]pending[/]", "")
    return t



def run_lines(view: RunView) -> Iterator[str]:
    """How a person reads a run's outcome (``run`` and each change ``watch`` trains)."""
    if view.reused:
        yield (f"[bold]{view.pipeline}[/]: these inputs were already trained by {view.run_id} "
               f"→ {view.registered} (nothing trained; --force to train again)")
        return
    if view.status == "succeeded":
        res = view.result
        yield (f"[green]✓[/] {view.run_id}: registered and signed [bold]{view.registered}[/] "
               f"({res.get('root_digest', '')[:23]}…), params {res.get('params')}, metrics {res.get('metrics')}")
    else:
        yield f"{view.run_id}: {view.status}"


@dataclass(frozen=True)
class RunResultView:
    run: RunView
    submitted_to: str | None = None  # the KFP endpoint, for --engine kubeflow

    def as_json(self) -> Any:
        return self.run.to_dict()

    def renderables(self) -> Iterator[Any]:
        if self.submitted_to is not None:
            yield f"submitted {self.run.run_id} to {self.submitted_to}"
        else:
            yield from run_lines(self.run)


@dataclass(frozen=True)
class CompileView:
    pipeline: str
    environment: str
    path: Path

    def as_json(self) -> Any:
        return {"pipeline": self.pipeline, "environment": self.environment, "path": str(self.path)}

    def renderables(self) -> Iterator[Any]:
        yield f"compiled {self.pipeline} for {self.environment} → {self.path}"


@dataclass(frozen=True)
class WatchView:
    result: WatchResult

    def as_json(self) -> Any:
        return self.result.to_dict()

    def renderables(self) -> Iterator[Any]:
        if self.result.run is not None and not self.result.error:
            yield from run_lines(self.result.run)


@dataclass(frozen=True)
class RunStatusView:
    run: RunView

    def as_json(self) -> Any:
        return self.run.to_dict()

    def renderables(self) -> Iterator[Any]:
        view = self.run
        yield (f"[bold]{view.run_id}[/] ({view.pipeline}, {view.engine}, {view.trigger} by {view.created_by}): "
               f"{view.status}")
        yield f"  dataset {view.dataset}; features {view.features or '(default)'}"
        if view.registered:
            yield f"  registered {view.registered}"
        if view.error:
            yield f"  [red]stopped at {view.failed_step}:[/] {view.error}"
            yield f"  fix: {view.hint}"
        yield steps_table(view.steps)


@dataclass(frozen=True)
class RunsView:
    runs: Sequence[RunView]

    def as_json(self) -> Any:
        return [r.to_dict() for r in self.runs]

    def renderables(self) -> Iterator[Any]:
        yield table("pipeline runs", ["run", "pipeline", "trigger", "status", "step", "registered", "started"],
                    [[r.run_id, r.pipeline, r.trigger, r.status, r.failed_step, r.registered, r.created_at]
                     for r in self.runs])


@dataclass(frozen=True)
class DefinedView:
    names: Sequence[str]

    def as_json(self) -> Any:
        return list(self.names)

    def renderables(self) -> Iterator[Any]:
        yield table("pipelines", ["name"], [[n] for n in self.names])


# --- verbs ---------------------------------------------------------------------------------------


def compile_pipeline(ctx: Context, cfg: PipelineConfig, *, image: str | None, out: Path) -> CompileView:
    """KFP IR for the environment's Kubeflow Pipelines (GPU pool, the step image pinned by digest)."""
    img = image or pconfig.step_image()
    if not img:
        raise MlctlError("no step image", hint="pass --image REGISTRY/REPO@sha256:<hex> or set MLCTL_PIPELINE_IMAGE",
                         exit_code=2)
    path = pipelines.compile_pipeline(cfg, image=img, out=out)
    return CompileView(cfg.name, cfg.environment, path)


def run(ctx: Context, cfg: PipelineConfig, *, dataset: str, features: str | None = None, force: bool = False,
        engine: str = "local", host: str | None = None, image: str | None = None,
        on_status: StatusCallback | None = None) -> RunResultView:
    """Run ``cfg`` on a pinned data set (``URI@DIGEST``): locally (KFP's local runner) or submitted to
    Kubeflow Pipelines. A failed step raises its error (exit 20-23) after the run is recorded."""
    if not dataset:
        raise MlctlError("--dataset is required", hint="pin the data: --dataset URI@sha256:<64 hex>", exit_code=2)
    if engine == "kubeflow":
        kfp_host, img = host or pconfig.kfp_host(), image or pconfig.step_image()
        if not kfp_host or not img:
            raise MlctlError("--engine kubeflow needs the KFP endpoint and the step image",
                             hint="pass --host and --image (or set MLCTL_KFP_HOST, MLCTL_PIPELINE_IMAGE); "
                             "the token comes from MLCTL_KFP_TOKEN", exit_code=2)
        _authorize_run(ctx, cfg)
        with ctx.acting():
            view = pipelines.submit_run(cfg, dataset=dataset, features=features, image=img, host=kfp_host,
                                        token=pconfig.kfp_token(), namespace=pconfig.kfp_namespace())
        return RunResultView(view, submitted_to=kfp_host)
    if engine != "local":
        raise MlctlError(f"--engine {engine!r} is not known", hint="use local or kubeflow", exit_code=2)
    _authorize_run(ctx, cfg)
    with ctx.acting():
        return RunResultView(pipelines.run(cfg, dataset=dataset, features=features, force=force,
                                           on_status=on_status))


def start(ctx: Context, cfg: PipelineConfig, *, dataset: str, features: str | None, force: bool,
          detach: Detach) -> RunResultView:
    """``run`` on the local engine with its long part detached: authorized, inputs checked and the
    run recorded now (its id in the view, status ``running``), driven to its end by ``detach``.
    Inputs already trained answer with that run (``reused``), starting nothing."""
    if not dataset:
        raise MlctlError("--dataset is required", hint="pin the data: --dataset URI@sha256:<64 hex>", exit_code=2)
    _authorize_run(ctx, cfg)
    with ctx.acting():
        started = pipelines.begin(cfg, dataset=dataset, features=features, force=force)
    if not started.reused:
        detach(functools.partial(pipelines.execute, cfg, started))
    return RunResultView(started)


def watch_start(ctx: Context, cfg: PipelineConfig, *, adopt: bool, detach: Detach) -> WatchView:
    """``watch`` with the run a change starts detached (see ``start``): the view is the look, with
    the run begun (status ``running``) when there was a change."""
    _authorize_run(ctx, cfg)
    with ctx.acting():
        result, finish = pipelines.watch_begin(cfg, adopt=adopt)
    if finish is not None:
        detach(functools.partial(finish, None))
    return WatchView(result)


def watch(ctx: Context, cfg: PipelineConfig, *, on_status: StatusCallback | None = None,
          adopt: bool = False) -> WatchView:
    """Look once at the pipeline's source and feature set: a change not seen before starts exactly
    one run (``adopt``: record it as seen without training). Authorized before anything is claimed,
    so a denied watcher consumes no change."""
    _authorize_run(ctx, cfg)
    with ctx.acting():
        return WatchView(pipelines.watch_once(cfg, on_status=on_status, adopt=adopt))


def status(ctx: Context, run_id: str) -> RunStatusView:
    return RunStatusView(pipelines.get_run(run_id))


def list_runs(ctx: Context, pipeline: str | None = None) -> RunsView:
    return RunsView(pipelines.list_runs(pipeline))


def last_run(ctx: Context, pipeline: str) -> RunView | None:
    """The newest run of ``pipeline`` (what a failed run's JSON error carries)."""
    runs = pipelines.list_runs(pipeline, limit=1)
    return runs[0] if runs else None


def defined(ctx: Context) -> DefinedView:
    return DefinedView(known())
