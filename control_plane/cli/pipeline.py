"""``mlctl pipeline``: continuous training on Kubeflow Pipelines (local runner by default)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from control_plane.errors import MlctlError, PipelineFailed
from control_plane.output import OutputFormat, OutputOption, console, emit_json, err_console, info, table

app = typer.Typer(
    help="Continuous training: data tests → GPU training (parallel grid) → evaluation → register + sign.\n\n"
    "Example: mlctl pipeline run digits --dataset s3://uae-local-model-artifacts/datasets/digits/"
    "train.csv@sha256:<64 hex>",
    no_args_is_help=True,
)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="Pipeline YAML (instead of NAME's).")]
EnvOption = Annotated[str | None, typer.Option("--env", help="Environment (blueprint); default: the file's.")]
STATE_STYLE = {"running": "yellow", "done": "green", "failed": "bold red"}


class StepProgress:
    """One line per step (and per grid candidate), refreshed from the run's status files."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.live: Live | None = None

    def __enter__(self) -> StepProgress:
        if self.enabled:
            self.live = Live(self._render({}), console=err_console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def update(self, steps: dict[str, dict[str, Any]]) -> None:
        if self.live is not None:
            self.live.update(self._render(steps))

    @staticmethod
    def _render(steps: dict[str, dict[str, Any]]) -> Table:
        from control_plane.pipelines.steps import STEPS

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


def _view_json(view: Any) -> dict[str, Any]:
    return view.to_dict()


def _print_run(view: Any) -> None:
    if view.reused:
        console.print(f"[bold]{view.pipeline}[/]: these inputs were already trained by {view.run_id} "
                      f"→ {view.registered} (nothing trained; --force to train again)")
        return
    if view.status == "succeeded":
        res = view.result
        console.print(f"[green]✓[/] {view.run_id}: registered and signed [bold]{view.registered}[/] "
                      f"({res.get('root_digest', '')[:23]}…), params {res.get('params')}, "
                      f"metrics {res.get('metrics')}")
    else:
        console.print(f"{view.run_id}: {view.status}")


def _fail_json(exc: MlctlError, output: OutputFormat, pipeline: str) -> None:
    """With --output json a failed run still prints its record (then exits with the step's code)."""
    if output is not OutputFormat.json:
        return
    from control_plane.pipelines import list_runs

    runs = list_runs(pipeline, limit=1)
    emit_json({"error": {"message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code,
                         "step": getattr(exc, "step", None)},
               "run": runs[0].to_dict() if runs else None})


@app.command("compile")
def compile_cmd(
    name: Annotated[str | None, typer.Argument(help="Pipeline name (see `mlctl pipeline list --defined`).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the KFP IR YAML.")] = Path("pipeline.yaml"),
    image: Annotated[str | None, typer.Option(
        "--image", help="Step image pinned by digest in the environment's registry (or MLCTL_PIPELINE_IMAGE).")] = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Compile NAME to KFP IR for the environment's Kubeflow Pipelines (GPU pool, pinned images).

    Example: mlctl pipeline compile digits --env uae-prod-aws --image 123456789012.dkr.ecr.me-central-1.amazonaws.com/mlctl-pipeline@sha256:<hex>
    """
    from control_plane.pipelines import compile_pipeline, load_config
    from control_plane.pipelines.config import step_image

    cfg = load_config(name, config, env)
    img = image or step_image()
    if not img:
        raise MlctlError("no step image", hint="pass --image REGISTRY/REPO@sha256:<hex> or set MLCTL_PIPELINE_IMAGE",
                         exit_code=2)
    path = compile_pipeline(cfg, image=img, out=out)
    if output is OutputFormat.json:
        emit_json({"pipeline": cfg.name, "environment": cfg.environment, "path": str(path)})
    else:
        console.print(f"compiled {cfg.name} for {cfg.environment} → {path}")


@app.command("run")
def run_cmd(
    name: Annotated[str | None, typer.Argument(help="Pipeline name.")] = None,
    dataset: Annotated[str, typer.Option("--dataset", help="URI@DIGEST, e.g. s3://bucket/key@sha256:<64 hex>.")] = "",
    features: Annotated[str | None, typer.Option("--features", help="Feature set NAME@VERSION (default: the file's).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Train even if these inputs were trained before.")] = False,
    engine: Annotated[str, typer.Option("--engine", help="local (KFP local runner) or kubeflow.")] = "local",
    host: Annotated[str | None, typer.Option("--host", help="kubeflow: KFP API endpoint (or MLCTL_KFP_HOST).")] = None,
    image: Annotated[str | None, typer.Option("--image", help="kubeflow: step image (or MLCTL_PIPELINE_IMAGE).")] = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Run NAME on a pinned data set: fetch+verify → data tests → train (grid) → evaluate → register+sign.

    Exit codes: 21 data tests failed, 22 training failed, 23 evaluation failed, 20 another step.

    Example: mlctl pipeline run digits --dataset ./v2.csv@sha256:<64 hex> --features digits-pixels@1
    """
    from control_plane.pipelines import config as pconfig
    from control_plane.pipelines import load_config, run, submit_run

    if not dataset:
        raise MlctlError("--dataset is required", hint="pin the data: --dataset URI@sha256:<64 hex>", exit_code=2)
    cfg = load_config(name, config, env)
    if engine == "kubeflow":
        kfp_host, img = host or pconfig.kfp_host(), image or pconfig.step_image()
        if not kfp_host or not img:
            raise MlctlError("--engine kubeflow needs the KFP endpoint and the step image",
                             hint="pass --host and --image (or set MLCTL_KFP_HOST, MLCTL_PIPELINE_IMAGE); "
                             "the token comes from MLCTL_KFP_TOKEN", exit_code=2)
        view = submit_run(cfg, dataset=dataset, features=features, image=img, host=kfp_host,
                          token=pconfig.kfp_token(), namespace=pconfig.kfp_namespace())
        if output is OutputFormat.json:
            emit_json(view.to_dict())
        else:
            console.print(f"submitted {view.run_id} to {kfp_host}")
        return
    if engine != "local":
        raise MlctlError(f"--engine {engine!r} is not known", hint="use local or kubeflow", exit_code=2)
    with StepProgress(output is not OutputFormat.json) as progress:
        try:
            view = run(cfg, dataset=dataset, features=features, force=force, on_status=progress.update)
        except PipelineFailed as exc:
            _fail_json(exc, output, cfg.name)
            raise
    if output is OutputFormat.json:
        emit_json(view.to_dict())
    else:
        _print_run(view)


@app.command("watch")
def watch_cmd(
    name: Annotated[str | None, typer.Argument(help="Pipeline name.")] = None,
    once: Annotated[bool, typer.Option("--once", help="Look once and exit (for cron / CI).")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between looks.")] = 30.0,
    max_changes: Annotated[int, typer.Option("--max-changes", help="Stop after this many changes (0: never).")] = 0,
    adopt: Annotated[bool, typer.Option("--adopt", help="Record what is there now as seen, without training.")] = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Start the pipeline once per new version of its source object (S3 version id / ETag) or
    feature-set schema; inputs already seen start nothing (recorded in the store).

    Example: mlctl pipeline watch digits --once
    """
    from control_plane.pipelines import load_config, watch_once

    cfg = load_config(name, config, env)
    changes, results = 0, []
    while True:
        with StepProgress(output is not OutputFormat.json) as progress:
            result = watch_once(cfg, on_status=progress.update, adopt=adopt)
        adopt = False
        results.append(result.to_dict())
        if result.changed:
            changes += 1
            if output is not OutputFormat.json:
                if result.error:
                    err_console.print(f"[bold red]run stopped at {result.error['step']}:[/] {result.error['message']}")
                    err_console.print(f"  [bold]fix:[/] {result.error['hint']}")
                elif result.run is not None:
                    _print_run(result.run)
        elif output is not OutputFormat.json:
            info(f"{cfg.name}: no change ({result.observation['dataset'][-20:]}…, {result.observation['features']})")
        if once or (max_changes and changes >= max_changes):
            break
        time.sleep(interval)
    if output is OutputFormat.json:
        emit_json(results[0] if once else results)
    last_error = next((r["error"] for r in reversed(results) if r.get("error")), None)
    if once and last_error:
        raise typer.Exit(int(last_error.get("exit_code") or 20))


@app.command("status")
def status_cmd(
    run_id: Annotated[str, typer.Argument(help="Run id (from `mlctl pipeline list`).")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """One run: its inputs, every step's state, what it registered or why it stopped."""
    from control_plane.pipelines import get_run

    view = get_run(run_id)
    if output is OutputFormat.json:
        emit_json(view.to_dict())
        return
    console.print(f"[bold]{view.run_id}[/] ({view.pipeline}, {view.engine}, {view.trigger} by {view.created_by}): "
                  f"{view.status}")
    console.print(f"  dataset {view.dataset}; features {view.features or '(default)'}")
    if view.registered:
        console.print(f"  registered {view.registered}")
    if view.error:
        console.print(f"  [red]stopped at {view.failed_step}:[/] {view.error}")
        console.print(f"  fix: {view.hint}")
    console.print(StepProgress._render(view.steps))


@app.command("list")
def list_cmd(
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline's runs.")] = None,
    defined: Annotated[bool, typer.Option("--defined", help="List the defined pipelines instead of runs.")] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Recent pipeline runs, newest first (or the defined pipelines with --defined)."""
    from control_plane.pipelines import list_runs
    from control_plane.pipelines.config import known

    if defined:
        names = known()
        if output is OutputFormat.json:
            emit_json(names)
        else:
            console.print(table("pipelines", ["name"], [[n] for n in names]))
        return
    runs = list_runs(pipeline)
    if output is OutputFormat.json:
        emit_json([r.to_dict() for r in runs])
        return
    console.print(table("pipeline runs", ["run", "pipeline", "trigger", "status", "step", "registered", "started"],
                        [[r.run_id, r.pipeline, r.trigger, r.status, r.failed_step, r.registered, r.created_at]
                         for r in runs]))
