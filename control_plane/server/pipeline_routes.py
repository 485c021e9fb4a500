"""``mlctl pipeline run/watch/status/list`` over HTTP. A local KFP run takes minutes, so ``run``
(and ``watch``, when it sees a change) records the run in the request — authorized, inputs checked,
the run id known — answers 202 with the run, and drives it in the server's background (the jobs
of ``server.jobs``); the client follows it with ``GET /v1/pipelines/runs/{run_id}``, whose ``steps``
are the live step states while it runs. RBAC and the audit entries happen in
``control_plane.services.pipelines`` on the verified identity, as for every route; the run's steps
(their own processes) act as that identity through a delegation credential bound to the run
(``control_plane.identity.delegation``).

Inputs name what the server reaches: a pipeline by NAME (the server's ``$MLCTL_HOME/pipelines`` or
the shipped samples), an environment by name, and a data set in object storage (``s3://``, the
environment's bucket). A path on the client's machine means nothing here and is refused (422, exit 2),
so a client can never make the server read its own files.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from control_plane.errors import MlctlError, UsageError
from control_plane.identity import delegation
from control_plane.pipelines.config import PipelineConfig
from control_plane.server.auth import caller
from control_plane.server.names import EnvName
from control_plane.server.routes import require_transport
from control_plane.services import Context
from control_plane.services import pipelines as service

__all__ = ["router"]

log = logging.getLogger("mlctl.server.pipelines")
router = APIRouter(prefix="/v1")
Caller = Annotated[Context, Depends(caller)]
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # a pipeline's and an environment's: never a path


def _config(ctx: Context, request: Request, name: str, env: str | None) -> PipelineConfig:
    if not _NAME.match(name):
        raise UsageError(f"pipeline name {name!r} is not valid: lowercase letters, digits and dashes",
                         hint="mlctl pipeline list --defined shows the pipelines this server defines")
    if env is not None and not _NAME.match(env):
        raise UsageError(f"--env {env!r}: through a server an environment is named, not a file",
                         hint="pass the blueprint environment's name, e.g. --env uae-local")
    cfg = service.config(ctx, name, None, env)
    require_transport(request, ctx, cfg.environment)
    return cfg


def _server_reachable(dataset: str) -> None:
    if dataset and not dataset.startswith("s3://"):
        uri = dataset.rsplit("@", 1)[0]
        raise UsageError(f"--dataset {uri}: the server reads data sets from object storage only, "
                         "not paths of the machine the command runs on",
                         hint="upload the file to the environment's bucket and pin that object: "
                         "--dataset s3://BUCKET/KEY@sha256:<64 hex> (or unset MLCTL_SERVER to run here)")


def _detached(request: Request, ctx: Context, key: str) -> service.Detach:
    jobs = request.app.state.jobs

    def detach(work: Any) -> None:
        def run() -> None:
            try:
                with delegation.delegating():  # the steps act as the verified caller, not as the server
                    work()
            except MlctlError as exc:  # the run's row and audit entry already say why
                log.info("%s stopped: %s", key, exc.message)

        jobs.submit(ctx, key, run)

    return detach


def _answer(body: Any, running: bool, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(jsonable_encoder(body), status_code=202 if running else 200, headers=headers)


@router.get("/pipelines")
def defined(ctx: Caller) -> Any:
    """``mlctl pipeline list --defined``: the pipelines this server can run, by name."""
    return service.defined(ctx).as_json()


@router.get("/pipelines/runs")
def list_runs(ctx: Caller, pipeline: str | None = None) -> Any:
    """``mlctl pipeline list [--pipeline NAME]``: recent runs, newest first."""
    return service.list_runs(ctx, pipeline).as_json()


@router.get("/pipelines/runs/{run_id}")
def run_status(ctx: Caller, run_id: str) -> Any:
    """``mlctl pipeline status RUN_ID -o json``; while it runs, ``steps`` are the live states."""
    return service.status(ctx, run_id).as_json()


class RunRequest(BaseModel):
    dataset: str = Field(description="URI@DIGEST of a data set the server reads: s3://BUCKET/KEY@sha256:<64 hex>.")
    features: str | None = Field(None, description="Feature set NAME@VERSION (default: the pipeline's).")
    force: bool = Field(False, description="Train even if these inputs were trained before.")
    engine: str = Field("local", description="local (the server's KFP local runner) or kubeflow.")
    host: str | None = Field(None, description="kubeflow: the KFP API endpoint (default: the server's MLCTL_KFP_HOST).")
    image: str | None = Field(None, description="kubeflow: the step image (default: the server's MLCTL_PIPELINE_IMAGE).")
    env: EnvName | None = Field(None, description="Environment (blueprint name); default: the pipeline file's.")


@router.post("/pipelines/{name}/runs", status_code=202)
def start_run(ctx: Caller, request: Request, name: str, body: RunRequest) -> JSONResponse:
    """``mlctl pipeline run NAME --dataset URI@DIGEST``: 202 with the run (status ``running``) while
    the server drives it; 200 when these inputs were already trained (``reused``) or the run was
    submitted to Kubeflow Pipelines. Follow it with ``GET /v1/pipelines/runs/{run_id}``."""
    _server_reachable(body.dataset)
    cfg = _config(ctx, request, name, body.env)
    if body.engine != "local":  # a submission returns at once: nothing to detach
        view = service.run(ctx, cfg, dataset=body.dataset, features=body.features, force=body.force,
                           engine=body.engine, host=body.host, image=body.image)
        headers = {service.SUBMITTED_HEADER: view.submitted_to} if view.submitted_to else None
        return _answer(view.as_json(), False, headers)
    started = service.start(ctx, cfg, dataset=body.dataset, features=body.features, force=body.force,
                            detach=_detached(request, ctx, f"pipeline {cfg.name}"))
    return _answer(started.as_json(), started.run.status == "running")


class WatchRequest(BaseModel):
    adopt: bool = Field(False, description="Record what is there now as seen, without training.")
    env: EnvName | None = Field(None, description="Environment (blueprint name); default: the pipeline file's.")


@router.post("/pipelines/{name}/watches")
def watch(ctx: Caller, request: Request, name: str, body: WatchRequest) -> JSONResponse:
    """One look of ``mlctl pipeline watch NAME``: 200 with the result when nothing changed (or
    ``adopt``); 202 with the run a change began, driven in the background (follow its run id)."""
    cfg = _config(ctx, request, name, body.env)
    view = service.watch_start(ctx, cfg, adopt=body.adopt, detach=_detached(request, ctx, f"pipeline {cfg.name}"))
    run = view.result.run
    return _answer(view.as_json(), run is not None and run.status == "running")
