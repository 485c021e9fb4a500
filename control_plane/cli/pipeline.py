"""``mlctl pipeline``: continuous training on Kubeflow Pipelines (local runner by default)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live

from control_plane.cli._served_names import served_env
from control_plane.client import Remote, remote
from control_plane.errors import MlctlError, PipelineFailed, UsageError
from control_plane.output import OutputFormat, OutputOption, emit_json, err_console, info, render
from control_plane.pipelines.service import RunView
from control_plane.services import Context
from control_plane.services import pipelines as service

app = typer.Typer(
    help="Continuous training: data tests → GPU training (parallel grid) → evaluation → register + sign.\n\n"
    "Example: mlctl pipeline run digits --dataset s3://uae-local-model-artifacts/datasets/digits/"
    "train.csv@sha256:<64 hex>",
    no_args_is_help=True,
)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="Pipeline YAML (instead of NAME's).")]
EnvOption = Annotated[str | None, typer.Option("--env", help="Environment (blueprint); default: the file's.")]


class StepProgress:
    """One line per step (and per grid candidate), refreshed from the run's status files."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.live: Live | None = None

    def __enter__(self) -> StepProgress:
        if self.enabled:
            self.live = Live(service.steps_table({}), console=err_console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def update(self, steps: dict[str, dict[str, Any]]) -> None:
        if self.live is not None:
            self.live.update(service.steps_table(steps))


def _fail_json(last_run: Callable[[], RunView | None], exc: MlctlError, output: OutputFormat) -> None:
    """With --output json a failed run still prints its record (then exits with the step's code)."""
    if output is not OutputFormat.json:
        return
    last = last_run()
    emit_json({"error": {"message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code,
                         "step": getattr(exc, "step", None)},
               "run": last.to_dict() if last else None})


def _served(name: str | None, config: Path | None) -> str:
    """Through a server a pipeline is one the server defines, by name. A pipeline file names the
    code the run executes (trainer, transformation tests): the server runs only what its operator
    installed, so a file on this machine is refused rather than uploaded."""
    if config is not None:
        raise UsageError(f"--config {config} is a file on this machine; through a server, name a pipeline "
                         "the server defines",
                         hint="mlctl pipeline list --defined shows them (the operator adds one as "
                         "$MLCTL_HOME/pipelines/NAME.yaml on the server); or unset MLCTL_SERVER to run the file here")
    if not name:
        raise MlctlError("no pipeline named", hint="pass NAME (mlctl pipeline list --defined)", exit_code=2)
    return name


def _remote_last(api: Remote, pipeline: str) -> Callable[[], RunView | None]:
    return lambda: next(iter(api.pipelines.list_runs(pipeline).runs), None)


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
    ctx = Context()
    cfg = service.config(ctx, name, config, env)
    render(service.compile_pipeline(ctx, cfg, image=image, out=out), output)


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
    With MLCTL_SERVER the server runs it (NAME it defines, the data set in object storage: s3://...)
    and this command follows the run.

    Example: mlctl pipeline run digits --dataset ./v2.csv@sha256:<64 hex> --features digits-pixels@1
    """
    ctx = Context()
    if not dataset:  # before the pipeline file is read, as ever
        raise MlctlError("--dataset is required", hint="pin the data: --dataset URI@sha256:<64 hex>", exit_code=2)
    api = remote()
    if api is not None:  # the server runs it (in its background) and this process follows it
        pipeline = _served(name, config)
        started = api.pipelines.start(pipeline, dataset=dataset, features=features, force=force, engine=engine,
                                      host=host, image=image, env=served_env(env))  # refusals and bad input: before any progress
        with StepProgress(output is not OutputFormat.json and started.running) as progress:
            try:
                view = api.pipelines.finish(started, on_status=progress.update)
            except PipelineFailed as exc:
                _fail_json(_remote_last(api, pipeline), exc, output)
                raise
        render(view, output)
        return
    cfg = service.config(ctx, name, config, env)
    with StepProgress(output is not OutputFormat.json and engine == "local") as progress:
        try:
            view = service.run(ctx, cfg, dataset=dataset, features=features, force=force, engine=engine,
                               host=host, image=image, on_status=progress.update)
        except PipelineFailed as exc:
            _fail_json(lambda: service.last_run(ctx, cfg.name), exc, output)
            raise
    render(view, output)


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
    ctx = Context()
    api = remote()
    pipeline = _served(name, config) if api is not None else None
    if api is not None:
        served_env(env)  # a name the server has, never a file here
    cfg = service.config(ctx, name, config, env) if pipeline is None else None

    def look(progress: StepProgress, adopt: bool) -> service.WatchView:
        if cfg is not None:
            return service.watch(ctx, cfg, on_status=progress.update, adopt=adopt)
        assert api is not None and pipeline is not None
        # each look on the server; a run it starts is followed from here
        return api.pipelines.watch(pipeline, adopt=adopt, env=env, on_status=progress.update)

    changes, results = 0, []
    while True:
        with StepProgress(output is not OutputFormat.json) as progress:
            view = look(progress, adopt)
        adopt = False
        result = view.result
        results.append(view.as_json())
        if result.changed:
            changes += 1
            if output is not OutputFormat.json:
                if result.error:
                    err_console.print(f"[bold red]run stopped at {result.error['step']}:[/] {result.error['message']}")
                    err_console.print(f"  [bold]fix:[/] {result.error['hint']}")
                else:
                    render(view, output)
        elif output is not OutputFormat.json:
            info(f"{cfg.name if cfg else pipeline}: no change ({result.observation['dataset'][-20:]}…, {result.observation['features']})")
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
    api = remote()
    render(api.pipelines.status(run_id) if api is not None else service.status(Context(), run_id), output)


@app.command("list")
def list_cmd(
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline's runs.")] = None,
    defined: Annotated[bool, typer.Option("--defined", help="List the defined pipelines instead of runs.")] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Recent pipeline runs, newest first (or the defined pipelines with --defined)."""
    api = remote()
    if api is not None:
        render(api.pipelines.defined() if defined else api.pipelines.list_runs(pipeline), output)
        return
    ctx = Context()
    render(service.defined(ctx) if defined else service.list_runs(ctx, pipeline), output)
