"""Query helpers shared by the API services: dict rows on any connection, scope filters, keyset pages."""

from __future__ import annotations

import base64
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, Field

from api.errors import Invalid
from api.policy import Scope
from core import db

T = TypeVar("T")


#: Dict rows: the one row helper (core.db), under the names the API's modules use.
fetch_all = db.fetch_all
fetch_one = db.fetch_one


def scope_sql(site: str, process: str | None = None) -> str:
    """SQL that keeps rows inside the caller's scope; needs the parameters of ``scope_params``."""
    text = f"(%(scope_sites)s::int[] IS NULL OR {site} = ANY(%(scope_sites)s::int[]))"
    if process is not None:
        text += f" AND (%(scope_procs)s::text[] IS NULL OR {process} = ANY(%(scope_procs)s::text[]))"
    return text


def scope_params(scope: Scope) -> dict[str, Any]:
    return {"scope_sites": scope.sites_param(), "scope_procs": scope.processes_param()}


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next`` as ``after`` to get the following page (null: no more)."""

    items: list[T]
    next: str | None = Field(None, description="Cursor of the next page, or null at the end")


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str | None, *types: type) -> tuple | None:
    """Decode a cursor made by ``encode_cursor`` with values of ``types``; a bad one is a 422 on ``after``."""
    if cursor is None:
        return None
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError
        out = []
        for kind, value in zip(types, values, strict=True):
            if isinstance(value, bool) or (kind is int and not isinstance(value, int)):
                raise ValueError
            out.append(kind(value))
        return tuple(out)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise Invalid("not a cursor returned by this list", field="query.after") from None


def page(rows: list[dict[str, Any]], limit: int, key: Any) -> dict[str, Any]:
    """Cut one extra row fetched beyond ``limit`` into a cursor (``key(row)`` gives the cursor values)."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next": encode_cursor(*key(rows[-1])) if more and rows else None}


def after_id(cursor: str | None) -> int | None:
    """The id in a cursor of an id-ordered list."""
    values = decode_cursor(cursor, int)
    return values[0] if values else None
