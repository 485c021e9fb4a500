"""The API's verbs. Each route translates HTTP to one service-layer call and its view to JSON — the
same keys ``mlctl ... -o json`` prints — and nothing more: authorization, the tier rules and the
audit entry happen in the service layer, on the verified identity ``caller`` established."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from blueprints.schema import Environment
from control_plane import environments, identity
from control_plane.errors import EXIT_IN_PROGRESS, MlctlError, PolicyViolation, UsageError
from control_plane.output import View
from control_plane.registry import parse_ref
from control_plane.release.config import ReleaseConfig
from control_plane.server.auth import caller
from control_plane.server.names import EnvName
from control_plane.services import Context, approvals, models, monitoring, operations, release
from control_plane.services.release import ReleaseView
from control_plane.store import session_scope

__all__ = ["readiness", "router"]

router = APIRouter(prefix="/v1")
Caller = Annotated[Context, Depends(caller)]


def readiness() -> JSONResponse:
    """Ready when the store answers and an identity file names the issuers to trust."""
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
    if request.app.state.insecure_dev:
        refuse_in_clear(request, ctx.environment(env_name))


def refuse_in_clear(request: Request, env: Environment) -> None:
    """``require_transport`` for an environment already loaded (an infra blueprint's every one)."""
    if request.app.state.insecure_dev and str(env.tier) != "dev":
        raise PolicyViolation(
            f"this server runs with --insecure-dev (plain HTTP) and refuses {env.name} ({env.tier} tier)",
            hint="serve with TLS (mlctl server --cert FILE --key FILE) for staging and prod",
        )


def _json(view: View) -> Any:
    return view.as_json()


@router.get("/whoami")
def whoami(ctx: Caller) -> Any:
    """The verified identity of the token, and its roles (``mlctl whoami -o json``)."""
    return _json(operations.whoami(ctx))


@router.get("/events")
def events(ctx: Caller, last: int = 20, type_: Annotated[str | None, Query(alias="type")] = None) -> Any:
    """``mlctl monitor events [--last N] [--type GLOB]``: the newest of the server's event log."""
    return _json(monitoring.events(ctx, last=last, type_glob=type_))


@router.get("/models")
def list_models(ctx: Caller, name: str | None = None, actor: str | None = None,
                since: str | None = None) -> Any:
    """``mlctl model list``."""
    return _json(models.list_versions(ctx, name, actor=actor, since=since))


@router.get("/models/{name}/{version}")
def show_model(ctx: Caller, name: str, version: str) -> Any:
    """``mlctl model show NAME:VERSION``."""
    return _json(models.show(ctx, f"{name}:{version}"))


class ApprovalRequest(BaseModel):
    env: EnvName = Field(description="Blueprint environment (name), e.g. uae-prod-aws; its tier decides the rule.")


@router.post("/models/{name}/{version}/approvals")
def approve(ctx: Caller, request: Request, name: str, version: str, body: ApprovalRequest) -> Any:
    """Record the caller's approval of NAME:VERSION for an environment; the gate's decision after it."""
    require_transport(request, ctx, body.env)
    return _json(approvals.approve(ctx, name, version, body.env))


class SignRequest(BaseModel):
    signer: str = Field("local", description="local (development key, dev tiers only), kms or pkcs11.")
    env: EnvName | None = Field(None, description="The environment whose KMS key / HSM signs (kms, pkcs11).")


@router.post("/models/{name}/{version}/signatures")
def sign(ctx: Caller, request: Request, name: str, version: str, body: SignRequest) -> Any:
    """Sign NAME:VERSION's registered digests and provenance (``mlctl model sign``)."""
    if body.env is not None:
        require_transport(request, ctx, body.env)
        ctx = ctx.with_settings(blueprint=environments.blueprint_path(body.env))
    return _json(models.sign(ctx, name, version, signer=body.signer))


class ReleaseRequest(BaseModel):
    model: str = Field(description="NAME:VERSION of a registered, signed (and, per tier, approved) version.")
    env: EnvName = Field(description="Blueprint environment (name), e.g. uae-local.")
    service: str | None = Field(None, description="Service name (default: the model name).")
    config: dict[str, Any] = Field(default_factory=dict, description=(
        "Release settings (release.config.ReleaseConfig): strategy, canary_steps, analysis_window, "
        "thresholds {max_error_rate, max_p95_seconds, min_requests}, mirror_percent, shadow_window, then ..."))


def _accepted(view: ReleaseView) -> JSONResponse:
    """202 while the release runs in the server's background; the view's state otherwise."""
    if view.refusal is not None:
        raise view.refusal
    code = 202 if view.exit_code == EXIT_IN_PROGRESS else 200
    return JSONResponse(jsonable_encoder(view.as_json() or {"note": view.note}), status_code=code)


def _detached(request: Request, ctx: Context, service: str) -> release.ReleaseHooks:
    jobs = request.app.state.jobs
    return release.ReleaseHooks(detach=lambda work: jobs.submit(ctx, service, work))


@router.post("/releases", status_code=202)
def start_release(ctx: Caller, request: Request, body: ReleaseRequest) -> JSONResponse:
    """``mlctl release NAME:VERSION``: recorded and checked now (gates refuse with 403), driven in the
    background; watch it with ``GET /v1/releases/{service}``."""
    name, version = parse_ref(body.model)
    require_transport(request, ctx, body.env)

    def config() -> ReleaseConfig:
        try:
            return ReleaseConfig.from_dict(body.config)
        except TypeError as exc:
            raise UsageError(f"config: {exc}", hint="see ReleaseConfig's fields in the OpenAPI document") from None

    service = body.service or name
    return _accepted(release.start(ctx, name, version, body.env, config, service=body.service,
                                   hooks=_detached(request, ctx, service)))


@router.get("/releases")
def list_releases(ctx: Caller, service: str | None = None, model: str | None = None, actor: str | None = None,
                  since: str | None = None, state: Annotated[list[str] | None, Query()] = None) -> Any:
    """``mlctl release list``."""
    return _json(release.list_releases(ctx, service=service, states=state, model=model, actor=actor, since=since))


@router.get("/releases/{service}")
def release_status(ctx: Caller, service: str) -> Any:
    """The service's release in progress, or its latest (``mlctl release status SERVICE -o json``)."""
    return _json(release.status(ctx, service))


@router.get("/releases/{service}/history")
def release_history(ctx: Caller, service: str) -> Any:
    """Every release of SERVICE, newest first (``mlctl release history SERVICE -o json``)."""
    return _json(release.history(ctx, service))


@router.post("/releases/{service}/{verb}", status_code=202)
def act_on_release(ctx: Caller, request: Request, service: str, verb: Literal["promote", "abort", "resume", "rollback"]
                   ) -> JSONResponse:
    """``mlctl release promote|abort|resume|rollback SERVICE``, driven in the background."""
    verbs = {"promote": release.promote, "abort": release.abort, "resume": release.resume, "rollback": release.rollback}
    return _accepted(verbs[verb](ctx, service, _detached(request, ctx, service)))
