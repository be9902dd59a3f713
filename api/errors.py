"""API errors: exceptions that services raise, and the handlers that turn every error into clear JSON.

Bodies are always ``{"detail": "...", ...}``; 422 names the field; a 500 never carries a stack trace. The
API's own errors are ``core.errors.DomainError``s like the domains' refusals, so one handler answers both
with the error's ``status``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core import errors
from core.errors import DomainError

_LOGGER = logging.getLogger(__name__)


class ApiError(DomainError):
    status = 400

    def __init__(self, detail: str, *, field: str | None = None, extra: dict[str, Any] | None = None) -> None:
        # ``extra``: more members of the JSON body, e.g. a conflict's ``code`` and object
        super().__init__(detail, field=field, extra=extra)
        self.detail = detail


class NotFound(ApiError, errors.NotFound):
    status = 404


class Forbidden(ApiError, errors.Forbidden):
    status = 403


class Conflict(ApiError, errors.Conflict):
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

    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        # the API's own errors and every domain's refusals (core.errors): 422 names the field
        if exc.status == 422:
            problems = exc.extra.get("problems")  # several problems of one input (e.g. lines of a file)
            if problems:
                return field_errors([(exc.field or "", p) for p in problems])
            return field_errors([(exc.field or "", str(exc))])
        return JSONResponse(status_code=exc.status, content={"detail": str(exc), **exc.extra})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.detail}, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        # the traceback goes to the log (never to the client), with the path but not the query or body
        _LOGGER.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(status_code=500, content={"detail": "internal error"})
