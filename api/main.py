"""The FastAPI application factory: ``uvicorn api.main:create_app --factory``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from api import errors, frontend, ws
from api.auth import AuthConfig
from api.hub import Hub
from api.middleware import BodyLimit, SecurityHeaders
from api.ratelimit import RateLimiter
from api.routes import (
    alarms,
    apikeys,
    areas,
    audit,
    bypasses,
    commands,
    compliance,
    deadletters,
    devices,
    drills,
    energy_baselines,
    floods,
    health,
    meters,
    notifications,
    points,
    push,
    readings,
    report_schedules,
    reports,
    safety_config,
    sites,
    system,
    users,
)
from api.routes import auth as auth_routes
from api.routes import carbon as carbon_routes
from api.routes import energy as energy_routes
from api.routes import hazwaste as hazwaste_routes
from api.schemas import ERRORS
from api.settings import ApiSettings
from carbon.sources import energy_ledger_source
from core.clock import Clock, SystemClock
from core.db import create_pool
from core.logging import redact_server_logs, setup_logging
from core.settings import CoreSettings, get_settings

_LOGGER = logging.getLogger(__name__)

DESCRIPTION = """Safety, environment and energy monitoring for battery factories.

Sign in with `POST /api/v1/auth/token` (OAuth2 password flow; add `totp` when two-factor authentication is on)
and send `Authorization: Bearer <access_token>`; devices and integrations send `X-API-Key`. Lists are pages:
pass `next` back as `after`. Errors are JSON: `{"detail": ...}`, and 422 names the field in `errors`.
Live readings and alarm events: WebSocket `/api/v1/ws` (protocol in `api/ws.py`)."""


def create_app(
    settings: CoreSettings | None = None, api_settings: ApiSettings | None = None, clock: Clock | None = None
) -> FastAPI:
    """Build the app; the pool and the live feed start with the app, never at import time."""
    settings = settings or get_settings()
    api_settings = api_settings or ApiSettings()
    if not logging.getLogger().handlers:
        # under `uvicorn ... --factory` nothing has configured the root logger: ours, with secrets redacted
        setup_logging(settings.log_level)
    redact_server_logs()
    if not settings.database_url:
        raise RuntimeError("the API needs EHS_DATABASE_URL (`ehs up` sets it)")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pool = create_pool(
            settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max, name="api"
        )
        app.state.hub = Hub(settings.database_url, api_settings)
        await app.state.hub.start()
        # start live when the database answers; otherwise serve anyway (the feed keeps retrying)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(app.state.hub.connected.wait(), 10)
        try:
            yield
        finally:
            await app.state.hub.stop()
            app.state.pool.close()

    app = FastAPI(
        title="ehs-monitor", version="0.1.0", lifespan=lifespan, description=DESCRIPTION, docs_url=None, redoc_url=None
    )
    app.state.settings = settings
    app.state.api_settings = api_settings
    app.state.auth = AuthConfig.from_settings(settings, api_settings)
    app.state.clock = clock or SystemClock()
    app.state.auth_limiter = RateLimiter(api_settings.auth_rate_limit)
    app.state.heavy_limiter = RateLimiter(api_settings.heavy_rate_limit)

    errors.install(app)

    @app.exception_handler(psycopg.DataError)
    async def _data_error(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # SQLSTATE class 22 (data exception): a value the database cannot take, i.e. bad input
        # the primary message only (psycopg's own, such as NUL bytes in text, have no diagnostics)
        message = (exc.diag.message_primary or (str(exc).strip().splitlines() or [""])[0] or "malformed value")[:200]
        _LOGGER.warning("data error on %s %s: %s", request.method, request.url.path, message)
        return errors.field_errors([("", message)])

    app.add_middleware(BodyLimit, limit=api_settings.max_body_bytes)
    if api_settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api_settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
        )
    app.add_middleware(SecurityHeaders, hsts=api_settings.hsts)

    app.include_router(health.router)
    for module in (
        auth_routes,
        sites,
        areas,
        devices,
        points,
        meters,
        readings,
        deadletters,
        system,
        users,
        apikeys,
        audit,
        alarms,
        floods,
        commands,
        bypasses,
        drills,
        safety_config,
        notifications,
        push,
        report_schedules,  # before reports: /reports/schedules is not /reports/{report_id}
        reports,
        compliance,
        energy_baselines,
    ):
        app.include_router(module.router, responses=ERRORS)
    app.include_router(hazwaste_routes.router, responses=ERRORS)
    # carbon reads activity data through the energy ledgers (carbon.sources); tests put their own source here
    app.state.carbon_source = energy_ledger_source
    app.include_router(carbon_routes.router, responses=ERRORS)
    app.include_router(energy_routes.router, responses=ERRORS)
    app.include_router(ws.router)
    frontend.mount(app)
    frontend.mount_docs(app)
    return app


def http_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves over HTTP, across included routers (the authorization matrix)."""
    return {
        (method, ctx.path)
        for ctx in iter_route_contexts(app.routes)
        for method in ctx.methods or ()
        if method != "HEAD"
    }


def websocket_paths(app: FastAPI) -> set[str]:
    """Every WebSocket path the app serves (their authorization is tested apart from the HTTP matrix)."""
    return {
        ctx.path
        for ctx in iter_route_contexts(app.routes)
        if not ctx.methods and ctx.path and not isinstance(ctx.route, Mount)
    }
