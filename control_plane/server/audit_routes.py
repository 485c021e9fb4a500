"""The audit verbs over HTTP: verify the trail, inclusion and consistency proofs, a checkpoint now,
and reading entries (``list``, ``export``). Permissions and the ``audit.export`` entry are the
service layer's (``control_plane.services.audit``): proofs and checkpoints need ``audit.verify``,
reading entries ``audit.export`` (auditors); verifying needs none."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import PlainTextResponse

from control_plane.server.auth import caller
from control_plane.services import Context
from control_plane.services import audit as service

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit")
Caller = Annotated[Context, Depends(caller)]
ENTRIES_HEADER = "X-Mlctl-Entries"  # how many JSON lines the export body holds


@router.get("/verify")
def verify(ctx: Caller) -> Any:
    """``mlctl audit verify``: the report, 200 even when it finds tampering (``ok: false``, the
    problems and the first bad entry): the client exits 8 as the local command does."""
    return service.verify(ctx).as_json()


@router.get("/proofs/{entry}")
def prove(ctx: Caller, entry: Annotated[int, PathParam(ge=1)]) -> Any:
    """``mlctl audit prove ENTRY``: an RFC 9162 inclusion proof against the newest signed head."""
    return service.prove(ctx, entry).as_json()


@router.get("/consistency")
def consistency(ctx: Caller, old: Annotated[int, Query(ge=1)], new: Annotated[int | None, Query(ge=1)] = None) -> Any:
    """``mlctl audit consistency OLD [NEW]``."""
    return service.consistency(ctx, old, new).as_json()


@router.post("/checkpoints")
def checkpoint(ctx: Caller) -> Any:
    """``mlctl audit checkpoint``: sign a tree head now and anchor it."""
    return service.checkpoint(ctx).as_json()


@router.get("/entries")
def list_entries(ctx: Caller, model: str | None = None, actor: str | None = None, since: str | None = None,
                 limit: int | None = None) -> Any:
    """``mlctl audit list``."""
    return service.list_entries(ctx, model=model, actor=actor, since=since, limit=limit).as_json()


@router.get("/export", response_class=PlainTextResponse)
def export(ctx: Caller, model: str | None = None, actor: str | None = None, since: str | None = None
           ) -> PlainTextResponse:
    """``mlctl audit export``: the JSON lines (``application/x-ndjson``); the client writes the file."""
    view = service.export(ctx, Path("-"), model=model, actor=actor, since=since)
    return PlainTextResponse(view.body, media_type="application/x-ndjson", headers={ENTRIES_HEADER: str(view.entries)})
