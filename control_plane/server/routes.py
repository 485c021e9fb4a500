"""The API's verbs. Each route translates HTTP to one service-layer call and its view to JSON — the
same keys ``mlctl ... -o json`` prints — and nothing more: authorization, the tier rules and the
audit entry happen in the service layer, on the verified identity ``caller`` established."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from control_plane.errors import MlctlError, PolicyViolation
from control_plane.server.auth import caller
from control_plane.services import Context

__all__ = ["readiness", "router"]

router = APIRouter(prefix="/v1")
Caller = Annotated[Context, Depends(caller)]


def readiness() -> JSONResponse:
    """Ready when the store answers and an identity file names the issuers to trust."""
    from sqlalchemy import text

    from control_plane import identity
    from control_plane.store import session_scope

    checks: dict[str, str] = {}
    try:
        with session_scope() as s:
            s.execute(text("SELECT 1"))
        checks["store"] = "ok"
    except Exception as exc:  # the probe reports, it never raises
        checks["store"] = f"unavailable: {type(exc).__name__}"
    try:
        checks["identity"] = "ok" if identity.verifier() is not None else "no identity file"
    except MlctlError as exc:
        checks["identity"] = exc.message
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


def require_transport(request: Request, ctx: Context, env_name: str) -> None:
    """A server on plain HTTP (``--insecure-dev``) acts on dev-tier environments only: a token sent
    in clear must never change staging or prod."""
    if not request.app.state.insecure_dev:
        return
    env = ctx.environment(env_name)
    if str(env.tier) != "dev":
        raise PolicyViolation(
            f"this server runs with --insecure-dev (plain HTTP) and refuses {env.name} ({env.tier} tier)",
            hint="serve with TLS (mlctl server --cert FILE --key FILE) for staging and prod",
        )


@router.get("/whoami")
def whoami(ctx: Caller) -> dict[str, Any]:
    """The verified identity of the token, and its roles."""
    actor = ctx.actor
    return {"actor": actor.name, "roles": actor.roles, **actor.audit_view()}


@router.get("/models")
def list_models(ctx: Caller, name: str | None = None) -> list[dict[str, Any]]:
    from control_plane import registry

    with ctx.acting():
        return [mv.as_dict() for mv in registry.list_versions(name)]


@router.get("/models/{name}/{version}")
def show_model(ctx: Caller, name: str, version: str) -> dict[str, Any]:
    from control_plane import registry

    with ctx.acting():
        return registry.get_version(name, version).as_dict()


class ApprovalRequest(BaseModel):
    env: str = Field(description="Blueprint environment (name), e.g. uae-prod-aws; its tier decides the rule.")


@router.post("/models/{name}/{version}/approvals")
def approve(ctx: Caller, request: Request, name: str, version: str, body: ApprovalRequest) -> dict[str, Any]:
    """Record the caller's approval of NAME:VERSION for an environment; the gate's decision after it."""
    from control_plane import approvals

    require_transport(request, ctx, body.env)
    with ctx.acting():
        return approvals.approve(name, version, body.env).as_dict()


class SignRequest(BaseModel):
    signer: str = Field("local", description="local (development key, dev tiers only), kms or pkcs11.")
    env: str | None = Field(None, description="The environment whose KMS key / HSM signs (kms, pkcs11).")


@router.post("/models/{name}/{version}/signatures")
def sign(ctx: Caller, request: Request, name: str, version: str, body: SignRequest) -> dict[str, Any]:
    """Sign NAME:VERSION's registered digests and provenance (``mlctl model sign``)."""
    from control_plane import registry

    env = None
    if body.env is not None:
        require_transport(request, ctx, body.env)
        env = ctx.environment(body.env)
    with ctx.acting():
        return registry.sign(name, version, signer_kind=body.signer, env=env).as_dict()


@router.get("/releases/{service}")
def release_status(ctx: Caller, service: str) -> dict[str, Any]:
    """The service's release in progress, or its latest (``mlctl release status SERVICE -o json``)."""
    from control_plane.errors import NotFound
    from control_plane.release import engine
    from control_plane.release.view import describe

    with ctx.acting():
        row = engine.active_release(service) or engine.latest_release(service)
        if row is None:
            raise NotFound(f"no release of {service} is recorded", hint="start one: mlctl release NAME:VERSION")
        return describe(row)
