"""The FastAPI application factory: ``uvicorn api.main:create_app --factory``."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.routes import health
from core.db import create_pool
from core.settings import CoreSettings, get_settings

_LOGGER = logging.getLogger(__name__)


def create_app(settings: CoreSettings | None = None) -> FastAPI:
    """Build the app; the pool opens at start-up, never at import time."""
    settings = settings or get_settings()
    if not settings.database_url:
        raise RuntimeError("the API needs EHS_DATABASE_URL (`ehs up` sets it)")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pool = create_pool(settings.database_url, min_size=settings.db_pool_min,
                                     max_size=settings.db_pool_max, name="api")
        try:
            yield
        finally:
            app.state.pool.close()

    app = FastAPI(title="ehs-monitor", version="0.1.0", lifespan=lifespan,
                  description="Safety, environment and energy monitoring for battery factories")
    app.state.settings = settings

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(status_code=422, content={"detail": detail, "errors": errors})

    @app.exception_handler(Exception)
    async def _unhandled(_request: Request, exc: Exception) -> JSONResponse:
        _LOGGER.exception("unhandled error")
        return JSONResponse(status_code=500, content={"detail": "internal error"})

    app.include_router(health.router)
    return app
