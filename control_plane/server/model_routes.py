"""The model verbs that move bytes: ``model register`` (the client uploads the model directory as a
tar stream), ``model verify`` (the server's artifact store) and ``model export`` (a tar of the
verified export). Like ``routes``, each translates HTTP to one service call: RBAC and the audit
entry happen in ``control_plane.services.models`` on the verified identity.

The upload layout (``control_plane.services.transfer``): ``request.json`` (the register flags), ``model/``
(the directory's files) and, with ``--config``, ``config/<file>``. The server refuses an upload over
``MLCTL_SERVER_MAX_UPLOAD_MB`` with 413 before it has read more than that.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from control_plane import environments
from control_plane.errors import UsageError
from control_plane.registry import lineage as lin
from control_plane.server import uploads
from control_plane.server.auth import caller
from control_plane.server.names import environment_named
from control_plane.services import Context, models, transfer

__all__ = ["router"]

router = APIRouter(prefix="/v1")
Caller = Annotated[Context, Depends(caller)]
EXPORT_HEADER = transfer.EXPORT_HEADER


def _environment_settings(ctx: Context, env: str | None) -> Context:
    if env is None:
        return ctx
    if not isinstance(env, str):
        raise UsageError("upload: request.json: env: a string", hint="send the body the mlctl client builds")
    return ctx.with_settings(blueprint=environments.blueprint_path(environment_named(env)))


def _register(ctx: Context, name: str, version: str, unpacked: transfer.Upload) -> Any:
    r = unpacked.request
    ctx = _environment_settings(ctx, r.get("env"))
    return models.register(
        ctx, name, version, unpacked.model_dir, datasets=list(r.get("datasets") or []),
        features=list(r.get("features") or []), code_pin=r.get("code"), config=unpacked.config,
        params=r.get("params"), metrics=r.get("metrics"), parent=r.get("parent"),
        classification=str(r.get("classification") or "internal"), store=r.get("store"),
    ).as_json()


@router.put("/models/{name}/{version}")
async def register(ctx: Caller, request: Request, name: str, version: str) -> Any:
    """``mlctl model register NAME --version V --path DIR``: the body is the upload tar
    (``application/x-tar``); 413 over the size limit. The permission is checked before the
    body is read, so a refused caller uploads nothing."""
    ref = f"{lin.check_name(name)}:{lin.check_version(version)}"
    await run_in_threadpool(ctx.authorize, "model.register", ref)
    limit = uploads.limit(ctx)
    with tempfile.TemporaryDirectory(prefix="mlctl-upload-") as tmp:
        archive = Path(tmp) / "upload.tar"
        await uploads.receive(request, archive, limit, smaller="register a smaller model")
        unpacked = await run_in_threadpool(transfer.unpack_upload, archive, Path(tmp) / "x", limit)
        return await run_in_threadpool(_register, ctx, name, version, unpacked)


class VerifyRequest(BaseModel):
    public_key_pem: str | None = Field(None, description="Trust only this PEM public key (`--key`), "
                                       "instead of the one the registry recorded.")


def _verify(ctx: Context, ref: str, pem: str | None) -> Any:
    if pem is None:
        return models.verify(ctx, ref).as_json()
    with tempfile.TemporaryDirectory(prefix="mlctl-key-") as tmp:
        key = Path(tmp) / "key.pem"
        key.write_text(pem)
        return models.verify(ctx, ref, public_key=key).as_json()


@router.post("/models/{name}/{version}/verification")
def verify(ctx: Caller, name: str, version: str, body: VerifyRequest) -> Any:
    """``mlctl model verify NAME:V [--key PEM]``: the artifact store's bytes against the signature."""
    return _verify(ctx, f"{name}:{version}", body.public_key_pem)


@router.get("/models/{name}/{version}/export")
def export(ctx: Caller, name: str, version: str) -> FileResponse:
    """``mlctl model export NAME:V DIR``: the verified export as a tar (``model/`` with ``model.sig``,
    and ``public_key.pem``); the export's JSON in the ``X-Mlctl-Export`` header."""
    tmp = Path(tempfile.mkdtemp(prefix="mlctl-export-"))
    try:
        view = models.export(ctx, f"{name}:{version}", tmp / "model", public_key_out=tmp / "public_key.pem")
        archive = transfer.pack_export(tmp / "model", tmp / "public_key.pem", tmp / "export.tar")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(archive, media_type="application/x-tar", filename=f"{name}-{version}.tar",
                        headers={EXPORT_HEADER: json.dumps(view.as_json())},
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))
