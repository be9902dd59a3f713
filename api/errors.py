"""API errors: exceptions that services raise, and the handlers that turn every error into clear JSON.

Bodies are always ``{"detail": "...", ...}``; 422 names the field; a 500 never carries a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from alerts.models import AlarmError

_LOGGER = logging.getLogger(__name__)


class ApiError(Exception):
    status = 400

    def __init__(self, detail: str, *, field: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra or {}        # more members of the JSON body, e.g. a conflict's ``code`` and object


class NotFound(ApiError):
    status = 404


class Forbidden(ApiError):
    status = 403


class Conflict(ApiError):
    status = 409


class Invalid(ApiError):
    """Input that passed the schema but not the domain rules (422, naming the field)."""

    status = 422


def field_errors(problems: list[tuple[str, str]]) -> JSONResponse:
    errors = [{"field": f, "message": m} for f, m in problems]
    detail = "; ".join(f"{f}: {m}" if f else m for f, m in problems)
    return JSONResponse(status_code=422, content={"detail": detail, "errors": errors})


def install(app: FastAPI) -> None:
    """Register the JSON error handlers."""

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return field_errors([(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()])

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        if exc.status == 422:
            problems = exc.extra.get("problems")      # several problems of one input (e.g. lines of a file)
            if problems:
                return field_errors([(exc.field or "", p) for p in problems])
            return field_errors([(exc.field or "", exc.detail)])
        return JSONResponse(status_code=exc.status, content={"detail": exc.detail, **exc.extra})

    @app.exception_handler(AlarmError)
    async def _alarm_error(_request: Request, exc: AlarmError) -> JSONResponse:
        # routes map the alarm engine's refusals themselves (api.alarms.domain_errors); this is the safety net
        status = exc.status if exc.status in (403, 404, 409) else 422
        if status == 422:
            return field_errors([("", str(exc))])
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail},
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        # the traceback goes to the log (never to the client), with the path but not the query or body
        _LOGGER.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(status_code=500, content={"detail": "internal error"})
