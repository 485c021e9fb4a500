"""``mlctl local`` through the server: the **server's** embedded environment (docs/server.md).

The server stands on that environment's local CA (its TLS certificate) and OpenID provider (the
keys it verifies every token with), so ``local up`` / ``local down`` here act on the services the
server does not itself depend on — the AWS emulator, the local model servers, the gateway — and
leave the CA and the provider as they are (``operations.KEPT_BY_SERVER``; the view says so). Both
are authorized in the service layer on the verified identity (``local.up`` / ``local.down``:
platform-admin, a refusal is a 403 with the reasons and an audit entry) and refused for a blueprint
that is not dev tier. They run in the request (the emulator starts in seconds, tens at worst): the
client waits longer for them than for other calls and shows that it is waiting.

``local traffic`` sends the paced requests from the server, through its gateway, with the rows the
client read from its CSV; the request is bounded (``TrafficRequest``: duration, rate, rows, cells)
and one run at a time per server, so that no caller can make the server flood itself or tie up its
worker threads. The server never opens a path a client names: an environment is a blueprint *name*
among the server's ``blueprints/``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, model_validator

from control_plane import environments
from control_plane.errors import Conflict
from control_plane.server.auth import caller
from control_plane.server.names import EnvName
from control_plane.services import Context, operations
from control_plane.settings import DEFAULT_BLUEPRINT

__all__ = ["MAX_CELLS", "MAX_RATE", "MAX_ROWS", "MAX_SECONDS", "router"]

router = APIRouter(prefix="/v1/local")
Caller = Annotated[Context, Depends(caller)]

# Bounds of one traffic run (operations.SERVED_TRAFFIC, which the client checks first): at most
# 120 s x 50/s = 6,000 requests, each a row of the body, the body at most 1,000,000 numbers (~10 MB).
MAX_SECONDS = operations.SERVED_TRAFFIC["seconds"]
MAX_RATE = operations.SERVED_TRAFFIC["rate"]
MAX_ROWS = int(operations.SERVED_TRAFFIC["rows"])
MAX_CELLS = int(operations.SERVED_TRAFFIC["cells"])
_traffic_running = threading.Lock()  # one traffic run at a time: each holds a worker thread for its duration

def _blueprint(env: str | None) -> Path:
    """The server's blueprint file of environment ``env`` (its default without it)."""
    if env is None:
        return DEFAULT_BLUEPRINT
    return environments.named_blueprint(env, what="environment", hint=(
        "name one of the server's blueprints, e.g. uae-local (the CLI sends --blueprint's name)"))


class UpRequest(BaseModel, extra="forbid"):
    env: EnvName | None = Field(None, description="Dev-tier blueprint whose emulator endpoint to use (default uae-local).")


class DownRequest(BaseModel, extra="forbid"):
    env: EnvName | None = Field(None, description="The environment the server's embedded one is (default uae-local): dev tier only.")


@router.get("")
def status(ctx: Caller, env: Annotated[EnvName | None, Query(description="Blueprint name (default uae-local).")] = None
           ) -> Any:
    """``mlctl local status``: what the server's embedded environment runs (same JSON as locally)."""
    return operations.local_status(ctx, _blueprint(env)).as_json()


@router.post("/up")
def up(ctx: Caller, body: UpRequest) -> Any:
    """``mlctl local up``: start the server's AWS emulator and gateway (local.up, platform-admin, dev
    tier); the CA and the OpenID provider the server stands on are kept (``kept`` in the answer)."""
    return operations.local_up(ctx, _blueprint(body.env), serving=True).as_json()


@router.post("/down")
def down(ctx: Caller, body: DownRequest) -> Any:
    """``mlctl local down``: stop the server's AWS emulator, model servers and gateway (local.down,
    platform-admin, dev tier); never the CA or the OpenID provider it verifies tokens with."""
    return operations.local_down(ctx, serving=True, blueprint=_blueprint(body.env) if body.env else None).as_json()


class TrafficRequest(BaseModel, extra="forbid"):
    rows: list[list[float]] = Field(min_length=1, max_length=MAX_ROWS,
                                    description="The request rows (the CSV's TENSOR_<n> columns, read by the client).")
    seconds: float = Field(30.0, gt=0, le=MAX_SECONDS, description=f"How long to send (at most {MAX_SECONDS:g} s).")
    rate: float = Field(20.0, gt=0, le=MAX_RATE, description=f"Requests per second (at most {MAX_RATE:g}).")
    tensor: str = Field("input", min_length=1, max_length=128, description="Name of the model's input tensor.")

    @model_validator(mode="after")
    def _bounded(self) -> TrafficRequest:
        cells = sum(len(r) for r in self.rows)
        if cells > MAX_CELLS or any(not r for r in self.rows):
            raise ValueError(f"rows: 1 to {MAX_CELLS:,} numbers in all, none empty (got {cells:,})")
        return self


@router.post("/traffic/{service}")
def traffic(ctx: Caller, service: str, body: TrafficRequest) -> Any:
    """``mlctl local traffic SERVICE``: paced V2 inference requests from the server through its
    gateway, one row each, for at most ``MAX_SECONDS`` (in the request; the answer comes when it
    ends). 409 while another traffic run is going on on this server."""
    if not _traffic_running.acquire(blocking=False):
        raise Conflict("another `mlctl local traffic` run is going on on the server",
                       hint=f"wait for it to end (at most {MAX_SECONDS:g} s) and run again")
    try:
        return operations.traffic(ctx, service, rows=body.rows, seconds=body.seconds, rate=body.rate,
                                  tensor=body.tensor).as_json()
    finally:
        _traffic_running.release()
