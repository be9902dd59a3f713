"""Dependency aliases for routes (FastAPI full-stack template style)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request

from core.settings import CoreSettings


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    """A pooled connection for one request, in one transaction."""
    with request.app.state.pool.connection() as conn, conn.transaction():
        yield conn


def get_app_settings(request: Request) -> CoreSettings:
    return request.app.state.settings


Conn = Annotated[psycopg.Connection, Depends(get_conn)]
Settings = Annotated[CoreSettings, Depends(get_app_settings)]
