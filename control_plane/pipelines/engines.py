"""Two engines for one pipeline definition.

- ``LocalEngine`` (the embedded default): KFP's own local runner, ``SubprocessRunner(use_venv=False)``:
  each step runs as a subprocess of this interpreter, the grid's training steps in parallel
  (KFP's ParallelFor executor). Steps report to a status directory that drives the progress view
  and names the failed step; KFP's workspace and outputs are removed after the run (the log stays).
- ``compile_ir`` / ``submit``: the KFP IR YAML for a Kubeflow Pipelines installation on the
  environment's cluster, and submission through ``kfp.Client`` with the environment's identity
  (a bearer token).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control_plane import errors, identity, settings
from control_plane.errors import MlctlError, PipelineFailed
from control_plane.identity import delegation
from control_plane.pipelines.config import PipelineConfig, env_blueprint
from control_plane.pipelines.definition import LOCAL_IMAGE, build, grid_items
from control_plane.pipelines.steps import StepContext

_local_lock = threading.Lock()  # KFP's local configuration is process-global


@dataclass
class LocalRun:
    run_id: str
    run_dir: Path
    result: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)


def read_status(status_dir: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(status_dir.glob("*.json")):
        with contextlib.suppress(OSError, json.JSONDecodeError):
            out[path.stem] = json.loads(path.read_text())
    return out


def _failure(steps: dict[str, dict[str, Any]], log: Path, cause: BaseException) -> MlctlError:
    failed = [s for s in steps.values() if s.get("state") == "failed"]
    if not failed:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(cause))
        task = re.search(r"Inner task failed: '([\w-]+)'", text)
        return PipelineFailed(f"the pipeline run failed: {text.splitlines()[0] if text else type(cause).__name__}",
                              step=task.group(1).removesuffix("-op") if task else "",
                              hint=f"the step crashed before it could report; see the run log {log}")
    first = min(failed, key=lambda s: s.get("finished", 0))
    cls = getattr(errors, str(first.get("kind")), None)
    if not (isinstance(cls, type) and issubclass(cls, PipelineFailed)):
        cls = PipelineFailed
    exit_code = first.get("exit_code")
    hint = first.get("hint") or ""
    exc = cls(str(first.get("message")), step=str(first.get("step", "")),
              hint=f"{hint} (log: {log})" if hint else f"see {log}",
              exit_code=exit_code if cls is PipelineFailed and isinstance(exit_code, int) else None)
    return exc


@contextlib.contextmanager
def _quiet(log: Path) -> Iterator[None]:
    """KFP's runner prints every task's output and logs to the console; keep them in the run log
    so that ``--output json`` stays clean and progress stays readable."""
    with log.open("a", encoding="utf-8") as fh:
        handler = logging.StreamHandler(fh)
        loggers = [logging.getLogger(n) for n in ("kfp", "kfp.local", "root")]
        saved = [(lg, lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
        for lg in loggers:
            lg.handlers = [handler]
            lg.propagate = False
            lg.setLevel(logging.INFO)
        try:
            with contextlib.redirect_stdout(fh), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                yield
        finally:
            for lg, handlers, propagate, level in saved:
                lg.handlers, lg.propagate, lg.level = handlers, propagate, level


# How long the steps of one run may act for the caller the server verified: the run's time limit
# (the delegation credential expires then; a step that starts or registers later fails, saying so).
RUN_TIME_LIMIT_S = 12 * 3600


def _step_identity(run_id: str) -> dict[str, str | None]:
    """What the steps (their own processes) need to act as the acting identity, as settings exported
    to them. Asserted (``--as``, dev tier): the same name. Verified by a server that drives the run
    (``delegation.delegating``): a delegation credential bound to this run, since the steps cannot
    see the caller's token. Verified here (a CLI's login): nothing, the steps read the same token cache."""
    me = identity.current()
    if me.source == "asserted":
        return {"actor": me.name}
    if me.verified is not None and delegation.requested():
        return {"delegation": delegation.mint(me.verified, run_id, ttl_s=RUN_TIME_LIMIT_S)}
    return {}


class LocalEngine:
    name = "local"

    def run(self, cfg: PipelineConfig, *, dataset: str, features: str | None, run_id: str, run_dir: Path,
            code_commit: str | None, on_status: Callable[[dict[str, dict[str, Any]]], None] | None = None,
            ) -> LocalRun:
        from kfp import local

        status_dir = run_dir / "status"
        status_dir.mkdir(parents=True, exist_ok=True)
        log = run_dir / "run.log"
        ctx = StepContext(run_id=run_id, config=cfg, status_dir=str(status_dir), code_commit=code_commit)
        if cfg.gpus:
            with log.open("a") as fh:
                fh.write(f"note: the local runner ignores the GPU request ({cfg.gpus} x nvidia.com/gpu); "
                         "training runs on this machine's CPU\n")
        pipeline = build(cfg, image=LOCAL_IMAGE)
        outputs, workspace = run_dir / "outputs", run_dir / "workspace"
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.25):
                if on_status:
                    on_status(read_status(status_dir))

        watcher = threading.Thread(target=watch, daemon=True)
        result: dict[str, Any] = {}
        with _local_lock, settings.exported_to_children(**_step_identity(run_id),
                                                         blueprint=settings.current().blueprint):
            watcher.start()
            try:
                with _quiet(log):
                    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(outputs),
                               workspace_root=str(workspace), raise_on_error=True)
                    try:
                        task = pipeline(dataset=dataset, features=features or "", context=ctx.to_json(),
                                        grid=grid_items(cfg))
                        result = json.loads(task.output)
                    except Exception as exc:  # KFP raises RuntimeError naming the task; steps told us why
                        steps = read_status(status_dir)
                        raise _failure(steps, log, exc) from exc
            finally:
                done.set()
                watcher.join(timeout=2)
                if on_status:
                    on_status(read_status(status_dir))
                # KFP leaves its workspace and every task's outputs behind: the model is registered,
                # the data is in its bucket, so only the log and the step states are kept.
                shutil.rmtree(outputs, ignore_errors=True)
                shutil.rmtree(workspace, ignore_errors=True)
        return LocalRun(run_id=run_id, run_dir=run_dir, result=result, steps=read_status(status_dir))


# ---- cluster ---------------------------------------------------------------------------------


def compile_ir(cfg: PipelineConfig, *, image: str, out: Path) -> Path:
    """KFP IR YAML of the pipeline for ``cfg.environment``'s cluster (GPU pool, pinned image)."""
    from kfp import compiler

    env = env_blueprint(cfg.environment)
    pipeline = build(cfg, image=image, env=env)
    out.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):
        compiler.Compiler().compile(pipeline, str(out))
    return out


def submit(cfg: PipelineConfig, *, package: Path, host: str, token: str | None, dataset: str,
           features: str | None, run_id: str, code_commit: str | None, namespace: str | None = None,
           client: Any = None) -> dict[str, Any]:
    """Submit a compiled package to the Kubeflow Pipelines API at ``host`` (token: the caller's
    OIDC access token or the workload's service-account token)."""
    if client is None:
        import kfp

        try:
            with contextlib.redirect_stdout(sys.stderr):
                client = kfp.Client(host=host, existing_token=token, namespace=namespace)
        except Exception as exc:  # kfp wraps connection and auth failures in its own types
            raise MlctlError(f"cannot reach Kubeflow Pipelines at {host} ({type(exc).__name__}: {exc})",
                             hint="check --host / MLCTL_KFP_HOST and that your token is valid", exit_code=3) from None
    ctx = StepContext(run_id=run_id, config=cfg, status_dir=None, code_commit=code_commit, engine="kubeflow")
    args = {"dataset": dataset, "features": features or "", "context": ctx.to_json(), "grid": grid_items(cfg)}
    try:
        with contextlib.redirect_stdout(sys.stderr):  # kfp prints links to the UI on stdout
            run = client.create_run_from_pipeline_package(str(package), arguments=args, run_name=run_id,
                                                          experiment_name=cfg.name, namespace=namespace,
                                                          enable_caching=False)
    except Exception as exc:
        raise MlctlError(f"Kubeflow Pipelines refused the run ({type(exc).__name__}: {exc})",
                         hint="check the token's permissions in the KFP namespace", exit_code=3) from None
    return {"run_id": run_id, "kfp_run_id": getattr(run, "run_id", None), "host": host,
            "submitted_at": time.time(), "python": sys.version.split()[0]}
