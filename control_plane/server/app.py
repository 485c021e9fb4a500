"""The FastAPI application: probes, metrics, error mapping and the versioned API routes."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.routing import Match

from control_plane import __version__
from control_plane.server import (
    audit_routes,
    errors,
    infra_routes,
    local_routes,
    model_routes,
    monitor_routes,
    pipeline_routes,
    routes,
)
from control_plane.server.jobs import Jobs
from control_plane.server.metrics import ServerMetrics

__all__ = ["create_app"]

log = logging.getLogger("mlctl.server")


def _route_template(request: Request) -> str:
    """The route's path template (``/v1/releases/{service}``), so metrics never carry user input."""
    route = request.scope.get("route")  # set by the router on the request's scope when a route matched
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    for candidate in request.app.router.routes:
        match, _ = candidate.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"


def create_app(*, insecure_dev: bool = False) -> FastAPI:
    """The API. ``insecure_dev``: served over plain HTTP, so verbs on staging/prod environments are
    refused (``routes.require_transport``)."""
    jobs = Jobs()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        resumed = jobs.resume_orphans()
        if resumed:
            log.warning("resumed the releases of %s (their driving process had died)", ", ".join(resumed))
        yield
        jobs.shutdown()

    app = FastAPI(
        lifespan=lifespan,
        title="mlctl control plane",
        version=__version__,
        description="Every mlctl verb over HTTPS. Authenticate with an OIDC access token "
        "(`Authorization: Bearer ...`, `mlctl login`); roles come from the identity file (docs/identity.md).",
    )
    app.state.metrics = ServerMetrics()
    app.state.jobs = jobs
    app.state.insecure_dev = insecure_dev
    errors.install(app)

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        request.app.state.metrics.observe(request.method, _route_template(request), response.status_code,
                                          time.perf_counter() - started)
        return response

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        return routes.readiness()

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(routes.router)
    app.include_router(model_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(monitor_routes.router)
    app.include_router(pipeline_routes.router)
    app.include_router(local_routes.router)
    app.include_router(infra_routes.router)
    return app
