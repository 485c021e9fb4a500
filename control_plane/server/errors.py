"""Errors over HTTP: the status a client can act on, and the body the CLI prints under ``-o json``
(``{"error": {"message", "hint", "exit_code", "kind"}}``), so ``mlctl --server`` shows the same text."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from control_plane.errors import Conflict, MlctlError, NotFound, PolicyViolation, UsageError
from control_plane.server.auth import NotAuthenticated
from control_plane.server.uploads import UploadTooLarge

__all__ = ["install"]

# Most specific first: the first class an error is an instance of decides its status.
_STATUS: list[tuple[type[MlctlError], int]] = [
    (UploadTooLarge, 413),  # a model upload over MLCTL_SERVER_MAX_UPLOAD_MB
    (PolicyViolation, 403),  # authenticated, not allowed (RBAC, tier rules, gates)
    (NotFound, 404),
    (Conflict, 409),
    (UsageError, 422),
]


def status_for(exc: MlctlError) -> int:
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return 400


def _body(message: str, hint: str | None, exit_code: int, kind: str) -> dict[str, object]:
    return {"error": {"message": message, "hint": hint, "exit_code": exit_code, "kind": kind}}


def install(app: FastAPI) -> None:
    @app.exception_handler(NotAuthenticated)
    async def _unauthenticated(_: Request, exc: NotAuthenticated) -> JSONResponse:
        description = exc.reason.replace('"', "'")
        return JSONResponse(
            _body(f"not authenticated: {exc.reason}", "log in again: mlctl login", 4, "NotAuthenticated"),
            status_code=401,
            headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'},
        )

    @app.exception_handler(MlctlError)
    async def _mlctl_error(_: Request, exc: MlctlError) -> JSONResponse:
        return JSONResponse(_body(exc.message, exc.hint, exc.exit_code, type(exc).__name__),
                            status_code=status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse(_body(f"bad request: {where}", "see the OpenAPI document at /openapi.json",
                                  UsageError.exit_code, "UsageError"), status_code=422)
