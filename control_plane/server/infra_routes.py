"""``mlctl infra`` on the server: synth, bootstrap, plan, apply, drift, destroy and the policy gate
(``check``), each a background operation (``server.operations``) the client follows.

The server runs terraform and checkov on **its** blueprints, with its own cloud or emulator
settings and its own synthesis directory (``$MLCTL_HOME/infra/<blueprint>/cdktf.out`` of the
server): a caller names a blueprint the server has (``blueprints/NAME.yaml``, or the server's
``MLCTL_BLUEPRINT``), never uploads one, as a pipeline runs only what the server's operator
installed: a blueprint decides what terraform creates and with which credentials.

The verbs that change deployed infrastructure (bootstrap, apply, destroy) are authorized in the
request on the verified identity, for every environment of the blueprint (``infra.<verb>``:
platform-admin; a denial is the request's 403, audited, and nothing starts); the reads need no
role, as locally. One operation per blueprint at a time: a second is refused (409) while one runs,
since both would work in the same synthesis directory and terraform state.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from control_plane import environments
from control_plane.errors import Conflict
from control_plane.policy.infra_gate import SKIPS_FILE
from control_plane.server import operations
from control_plane.server.auth import caller
from control_plane.server.names import BlueprintName
from control_plane.server.routes import refuse_in_clear
from control_plane.services import Context
from control_plane.services import infra as service

__all__ = ["router"]

router = APIRouter(prefix="/v1/infra")
Caller = Annotated[Context, Depends(caller)]
Verb = Literal["synth", "bootstrap", "plan", "apply", "drift", "destroy", "check"]


class InfraRequest(BaseModel, extra="forbid"):
    blueprint: BlueprintName | None = Field(None, description=(
        "A blueprint the server has, by name (blueprints/NAME.yaml there); default: the server's MLCTL_BLUEPRINT."))
    no_synth: bool = Field(False, description="Reuse the stacks the server already synthesized for this blueprint.")


def _blueprint(ctx: Context, name: str | None) -> Path:
    default = ctx.settings.default_blueprint
    if name is None or name == default.stem:
        return default
    return environments.named_blueprint(name, hint=service.SERVED_BLUEPRINT_HINT)


def _work(ctx: Context, verb: Verb, blueprint: Path, no_synth: bool, op: operations.Operation) -> Any:
    def progress(stack: str, message: str) -> None:
        op.progress.append([stack, message])

    if verb == "synth":
        view: Any = service.synth(ctx, blueprint, progress=progress)
    elif verb == "bootstrap":
        view = service.bootstrap(ctx, blueprint, progress=progress)
    elif verb == "check":
        view = service.check(ctx, blueprint, skips=SKIPS_FILE, progress=progress)
    else:
        view = getattr(service, verb)(ctx, blueprint, no_synth=no_synth, progress=progress)
    return view.as_json()


_busy: dict[Path, str] = {}  # blueprint → the id of the infra operation working on it
_busy_lock = threading.Lock()


def _claim_locked(blueprint: Path) -> str | None:
    """(``_busy_lock`` held) the id of an infra operation still running on ``blueprint``, if any."""
    running = _busy.get(blueprint)
    if running is not None and operations.running(running):
        return running
    return None


@router.post("/{verb}", status_code=202)
def start(ctx: Caller, request: Request, verb: Verb, body: InfraRequest) -> JSONResponse:
    """``mlctl infra VERB``: checked now (the blueprint loads; bootstrap/apply/destroy authorized:
    403 when refused, nothing started), then run in the background: **202** ``{"id", "verb",
    "blueprint"}``; follow ``GET /v1/infra/operations/{id}``."""
    blueprint = _blueprint(ctx, body.blueprint).resolve()
    environments.blueprint(blueprint)  # a broken blueprint is the request's 422, naming the field
    for env in environments.blueprint(blueprint).environments:
        refuse_in_clear(request, env)
    if verb in service.CHANGING_VERBS:
        service.authorize(ctx, verb, blueprint)
    with _busy_lock:
        running = _claim_locked(blueprint)
        if running is not None:
            raise Conflict(f"an infra operation on {blueprint.stem} is already running on this server ({running})",
                           hint="wait for it to end, then run the command again")
        op_id = operations.start(ctx, f"infra.{verb}",
                                 functools.partial(_work, ctx, verb, blueprint, body.no_synth))
        _busy[blueprint] = op_id
    return JSONResponse({"id": op_id, "verb": verb, "blueprint": blueprint.stem}, status_code=202)


@router.get("/operations/{op_id}")
def operation(ctx: Caller, op_id: str) -> Any:
    """An infra operation's state: ``{"done", "progress": [[stack, message], ...], "result", "error"}``
    (``result``: the view's JSON, as ``mlctl infra VERB -o json`` prints it); only its starter sees it."""
    return operations.find(ctx, op_id, lambda kind: kind.startswith("infra."), what="infra operation",
                           hint="start one with mlctl infra VERB (operations do not survive a server restart)").state()
