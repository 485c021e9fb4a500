"""The verbs that check models and data on the server: ``model validate`` (a registered version),
``monitor drift``, ``model optimize`` (a background build the client follows) and ``pii scan``.
Like ``routes``, each translates HTTP to one service call: RBAC and the audit entry happen in the
service layer on the verified identity.

Data files (``monitor drift --reference/--current/--config``, ``pii scan PATH``) are the client's:
it uploads them (``transfer.pack_files``, a tar under ``MLCTL_SERVER_MAX_UPLOAD_MB``, 413 past it)
and the server reads the unpacked copy, calling the tables by the names the client gave. The server
never opens a path a client names: ``s3://`` URIs are read with the server's own credentials, a
service's request log is the server's.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from control_plane import environments
from control_plane.errors import MlctlError, UsageError
from control_plane.pii import Finding
from control_plane.server import operations, uploads
from control_plane.server.auth import caller
from control_plane.server.names import EnvName
from control_plane.services import Context, models, monitoring, pii, transfer

__all__ = ["router"]

router = APIRouter(prefix="/v1")
Caller = Annotated[Context, Depends(caller)]
_Request = TypeVar("_Request", bound=BaseModel)


async def _upload(request: Request, ctx: Context, tmp: Path, what: str) -> tuple[dict[str, Any], dict[str, Path]]:
    limit = uploads.limit(ctx)
    await uploads.receive(request, tmp / "upload.tar", limit, smaller=what)
    return await run_in_threadpool(transfer.unpack_files, tmp / "upload.tar", tmp / "x", limit)


# --- model validate ------------------------------------------------------------------------------


class ValidateRequest(BaseModel):
    env: EnvName | None = Field(None, description="Environment (name) whose production version is the baseline (required).")
    baseline: str | None = Field(None, description="Baseline NAME:VERSION (default: production in env).")
    policy: dict[str, int | float | None] = Field(default_factory=dict, description=(
        "validate.gate.ValidationPolicy's fields: accuracy_tolerance, f1_tolerance, min_accuracy, "
        "min_stability, stability_eps, fgsm_eps, max_fgsm_drop."))


@router.post("/models/{name}/{version}/validation")
def validate(ctx: Caller, name: str, version: str, body: ValidateRequest) -> Any:
    """``mlctl model validate NAME:V --env ENV``: the gate's report (``decision`` pass or fail; a
    failed gate is a 200 whose decision the client exits 4 on, as locally)."""
    from control_plane.validate.gate import ValidationPolicy  # lazy: numpy + onnxruntime, one verb

    try:
        policy = ValidationPolicy(**body.policy)  # type: ignore[arg-type]
    except TypeError as exc:
        raise MlctlError(f"policy: {exc}", hint="see ValidationPolicy's fields in the OpenAPI document",
                         exit_code=2) from None
    return models.validate(ctx, f"{name}:{version}", env=body.env, baseline=body.baseline, policy=policy).as_json()


# --- monitor drift -------------------------------------------------------------------------------


class DriftThresholds(BaseModel, extra="forbid"):
    psi: float | None = None
    ks_statistic: float | None = None
    js_distance: float | None = None
    p_value: float | None = None
    prediction_column: str | None = None


class DriftRequest(BaseModel, extra="forbid"):
    """``request.json`` of a drift upload: the flags of ``mlctl monitor drift``."""

    reference: str | None = None
    current: str | None = None
    service: str | None = None
    thresholds: DriftThresholds = Field(default_factory=DriftThresholds)
    remediation: str | None = None
    last: int | None = None
    since: str | None = None
    fail_on_drift: bool = False


class ScanRequest(BaseModel, extra="forbid"):
    """``request.json`` of a scan upload."""

    path: str | None = None
    classification: str | None = None


def _parsed(model: type[_Request], raw: dict[str, Any]) -> _Request:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"upload: request.json: {where}", hint="send the body the mlctl client builds") from None


def _drift(ctx: Context, raw: dict[str, Any], files: dict[str, Path]) -> Any:
    r = _parsed(DriftRequest, raw)

    def table(slot: str) -> tuple[str | None, str | None]:
        """(where the server reads it, what it is called): an uploaded copy, or an s3:// URI."""
        given = getattr(r, slot)
        if given is None:
            return None, None
        if slot in files:
            return str(files[slot]), str(given)
        if not str(given).startswith("s3://"):
            raise MlctlError(f"--{slot} {given}: the server reads s3:// URIs and uploaded files only",
                             hint="the mlctl client uploads a file it has; give s3://bucket/key for the data lake",
                             exit_code=2)
        return str(given), str(given)

    reference, reference_name = table("reference")
    current, current_name = table("current")
    return monitoring.drift(
        ctx, reference=reference, service=r.service, current=current, config=files.get("config"),
        thresholds=r.thresholds.model_dump(exclude_none=True), remediation=r.remediation, last=r.last,
        since=r.since, fail_on_drift=r.fail_on_drift, reference_name=reference_name, current_name=current_name,
    ).as_json()


@router.post("/monitor/drift")
async def drift(ctx: Caller, request: Request) -> Any:
    """``mlctl monitor drift``: the body is a tar (``application/x-tar``) of ``request.json`` (the
    flags; ``reference``/``current`` as the client named them) and the uploaded files
    (``files/reference/``, ``files/current/``, ``files/config/``); a table not uploaded must be an
    ``s3://`` URI. Remediation (``retrain``, ``rollback``) is authorized as ``monitor.drift`` and the
    rollback as ``release.rollback``, on the caller's identity."""
    with tempfile.TemporaryDirectory(prefix="mlctl-drift-") as tmp:
        r, files = await _upload(request, ctx, Path(tmp), "upload smaller tables (or give s3:// URIs)")
        return await run_in_threadpool(_drift, ctx, r, files)


# --- pii scan ------------------------------------------------------------------------------------


def _scan(ctx: Context, raw: dict[str, Any], files: dict[str, Path]) -> Any:
    r = _parsed(ScanRequest, raw)
    if "data" not in files:
        raise UsageError("upload: no files/data/ in the archive", hint="send the body the mlctl client builds")
    given, copy = r.path or files["data"].name, str(files["data"])

    def named(f: Finding) -> dict[str, Any]:  # the client's path (as scan_path writes it), not the copy's
        inside = Path(f.file).relative_to(copy) if Path(f.file).is_relative_to(copy) else None
        return {**f.to_dict(), "file": f.file if inside is None else str(Path(given) / inside)}

    view = pii.scan(ctx, files["data"])  # the classification rule is applied by the client on these findings
    return {"path": given, "classification": r.classification, "counts": view.as_json()["counts"],
            "findings": [named(f) for f in view.findings]}


@router.post("/pii/scans")
async def pii_scan(ctx: Caller, request: Request) -> Any:
    """``mlctl pii scan PATH``: the body is a tar of ``request.json`` (``path`` as the client named
    it, ``classification``) and ``files/data/<PATH>`` (a file or a directory); the findings (kinds and
    places, never values) name the client's path. The uploaded copy is deleted after the scan."""
    with tempfile.TemporaryDirectory(prefix="mlctl-pii-") as tmp:
        r, files = await _upload(request, ctx, Path(tmp), "scan a smaller file (or a part of the directory)")
        return await run_in_threadpool(_scan, ctx, r, files)


# --- model optimize ------------------------------------------------------------------------------
# A TensorRT build is a Kubernetes Job that can take many minutes: more than a request. The request
# checks the options and the permissions (a refusal is its 403) and answers 202 with the build's id;
# a worker thread runs the verb; the client follows ``GET /v1/optimizations/{id}`` (its progress
# lines, then the result or the error): ``server.operations``. Builds live in this server's memory: a
# build interrupted by a restart is gone, and registered nothing (the derived version is registered
# only after parity).


class OptimizeRequest(BaseModel):
    env: EnvName = Field(description="Environment (blueprint name), e.g. uae-local: its GPU pool builds the engine.")
    target: str = Field("tensorrt", description="tensorrt (GPU engine) or onnx (ONNX Runtime in Triton).")
    precision: str = Field("fp16", description="fp32, fp16 or int8.")
    signer: str = Field("local", description="Key that signs the derived version: local, kms, pkcs11.")
    timeout: float | None = Field(None, description="Seconds to wait for the build Job.")


def _build(ctx: Context, ref: str, body: OptimizeRequest, build: operations.Operation) -> Any:
    environment = ctx.environment(body.env)
    view = models.optimize(ctx, ref, environment=environment, target=body.target, precision=body.precision,
                           signer=body.signer, timeout=body.timeout, progress=build.progress.append)
    return view.as_json()


@router.post("/models/{name}/{version}/optimizations", status_code=202)
def optimize(ctx: Caller, name: str, version: str, body: OptimizeRequest) -> JSONResponse:
    """``mlctl model optimize NAME:V``: checked now (403 when refused), built in the background."""
    ctx = ctx.with_settings(blueprint=environments.blueprint_path(body.env))  # its KMS key signs (--signer kms)
    ref = models.optimize_allowed(ctx, f"{name}:{version}", target=body.target, precision=body.precision)
    build_id = operations.start(ctx, "optimize", functools.partial(_build, ctx, ref, body))
    return JSONResponse({"id": build_id, "ref": ref}, status_code=202)


@router.get("/optimizations/{build_id}")
def optimization(ctx: Caller, build_id: str) -> Any:
    """A build's state: ``{"done", "progress", "result", "error"}``; only its starter sees it."""
    return operations.find(ctx, build_id, "optimize", what="optimization", hint=(
        "start one with mlctl model optimize NAME:V (builds do not survive a server restart)")).state()


# --- monitor replay ------------------------------------------------------------------------------


@router.post("/events/replay")
def replay(ctx: Caller) -> Any:
    """``mlctl monitor replay``: re-deliver the server's dead-lettered events to its sinks. Authorized
    as locally: a verified identity and no role (``policies/rbac.rego`` has no action for it), since it
    only re-sends events already emitted to the sinks the server's operator configured (docs/server.md)."""
    return monitoring.replay(ctx).as_json()
