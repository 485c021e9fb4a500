"""Background operations: work that can outlast a request (a TensorRT build, a terraform apply).

The request checks the options and the permissions on the verified identity (a refusal is its 403,
and nothing starts), then ``start`` runs the work in a worker thread as the caller and answers with
an id; the client follows ``GET .../{id}`` (``Operation.state``: the progress lines so far, then the
result or the error, as the API's error body plus its HTTP status). One home for ``model optimize``
and the ``infra`` verbs.

Operations live in this server's memory: after a restart an operation's id is unknown (404, saying
so). What the work itself recorded stays recorded (a registered version, terraform's state); see
docs/server.md, "Background operations", for what a restart means for each verb.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from control_plane.errors import MlctlError, NotFound
from control_plane.server import errors as api_errors
from control_plane.services import Context

__all__ = ["KEEP_ENDED_S", "Operation", "find", "owner", "prune", "running", "start"]

log = logging.getLogger("mlctl.server.operations")

KEEP_ENDED_S = 3600.0  # how long an ended operation's result stays readable (the client reads it within seconds)


def owner(ctx: Context) -> tuple[str | None, str]:
    """Whose operation: the verified (issuer, subject), never a name two issuers could share."""
    v = ctx.actor.verified
    return (v.issuer, v.subject) if v is not None else (None, ctx.actor.name)


@dataclass
class Operation:
    kind: str  # "optimize", "infra.apply", ...: an id is only found under the route of its kind
    owner: tuple[str | None, str]
    progress: list[Any] = field(default_factory=list)  # JSON values, in the order the work reported them
    result: Any = None
    error: dict[str, Any] | None = None
    done: bool = False
    ended: float = 0.0  # time.monotonic() when it ended

    def state(self) -> dict[str, Any]:
        """What ``GET`` answers: ``{"done", "progress", "result", "error"}``."""
        return {"done": self.done, "progress": list(self.progress), "result": self.result, "error": self.error}


_operations: dict[str, Operation] = {}
_lock = threading.Lock()


def prune() -> None:
    """Forget operations that ended more than KEEP_ENDED_S ago, so that a long-running server's table stays small."""
    cutoff = time.monotonic() - KEEP_ENDED_S
    with _lock:
        for op_id in [k for k, op in _operations.items() if op.done and op.ended < cutoff]:
            del _operations[op_id]


def _run(ctx: Context, op: Operation, work: Callable[[Operation], Any]) -> None:
    try:
        with ctx.acting():  # audit entries and domain code see the verified caller, as in a request
            op.result = work(op)
    except MlctlError as exc:
        op.error = {"message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code,
                    "kind": type(exc).__name__, "status": api_errors.status_for(exc)}
    except Exception as exc:  # a bug must end the operation, not leave it running forever
        op.error = {"message": f"the {op.kind} operation failed on the server: {type(exc).__name__}",
                    "hint": "see the server's log", "exit_code": 1, "kind": "InternalError", "status": 500}
        log.exception("%s operation failed", op.kind)
    finally:
        op.ended = time.monotonic()
        op.done = True


def start(ctx: Context, kind: str, work: Callable[[Operation], Any]) -> str:
    """Run ``work(operation)`` (it appends to ``operation.progress`` and returns the JSON result) in
    a worker thread as ``ctx``'s actor; the operation's id. Authorize before calling this."""
    prune()
    op = Operation(kind=kind, owner=owner(ctx))
    op_id = uuid.uuid4().hex
    with _lock:
        _operations[op_id] = op
    threading.Thread(target=_run, args=(ctx, op, work), name=f"mlctl-{kind}-{op_id[:8]}", daemon=True).start()
    return op_id


def running(op_id: str) -> bool:
    """Whether the operation ``op_id`` is known and not done."""
    with _lock:
        op = _operations.get(op_id)
    return op is not None and not op.done


def find(ctx: Context, op_id: str, kind: str | Callable[[str], bool], *, what: str, hint: str) -> Operation:
    """The operation ``op_id`` of ``kind`` (a name, or a test of it) if ``ctx``'s identity started
    it; NotFound otherwise (another caller's id is not told apart from an unknown one)."""
    with _lock:
        op = _operations.get(op_id)
    matches = op is not None and (kind(op.kind) if callable(kind) else op.kind == kind)
    if op is None or not matches or op.owner != owner(ctx):
        raise NotFound(f"no {what} {op_id} of yours on this server", hint=hint)
    return op
