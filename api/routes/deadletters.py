"""Dead letters: every rejected message with topic, payload and reason, newest first."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import After, Conn, Limit, PathId, SiteFilter, require
from api.errors import NotFound
from api.plant_read import site_filter
from api.policy import Permission, Principal
from api.queries import Page, after_id, page
from ingest import deadletters

router = APIRouter(prefix="/api/v1/dead-letters", tags=["ingest"])
Reader = Annotated[Principal, require(Permission.DEAD_LETTERS_READ)]
_PREVIEW = 200


class DeadLetterRead(BaseModel):
    id: int
    received_at: datetime
    topic: str
    payload_size: int
    reason: str
    detail: str
    site: str | None
    device: str | None
    payload_preview: str = Field(description=f"The first {_PREVIEW} characters, decoded as UTF-8 where possible")


class DeadLetterDetail(DeadLetterRead):
    payload_text: str | None = Field(description="The whole payload when it is UTF-8 text")
    payload_base64: str = Field(description="The whole payload, base64")


def _read(row: dict, full: bool = False) -> dict:
    payload: bytes = row.pop("payload")
    text = payload.decode("utf-8", errors="replace")
    row["payload_preview"] = text[:_PREVIEW]
    if full:
        try:
            row["payload_text"] = payload.decode("utf-8")
        except UnicodeDecodeError:
            row["payload_text"] = None
        row["payload_base64"] = base64.b64encode(payload).decode()
    return row


@router.get("", response_model=Page[DeadLetterRead])
def list_dead_letters(
    principal: Reader,
    conn: Conn,
    site: SiteFilter = None,
    reason: Annotated[str | None, Query(max_length=64, description="e.g. bad_json")] = None,
    device: Annotated[str | None, Query(max_length=64, description="Device code")] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
    after: After = None,
    limit: Limit = 100,
):
    """Rejected messages, newest first, filtered by site, reason, device and time."""
    site_filter(conn, principal.scope, site)
    rows = deadletters.list_dead_letters(
        conn,
        site_ids=principal.scope.site_ids,
        before=after_id(after),
        site=site,
        reason=reason,
        device=device,
        since=since,
        until=until,
        limit=limit + 1,
    )
    result = page(rows, limit, lambda r: (r["id"],))
    result["items"] = [_read(r) for r in result["items"]]
    return result


@router.get("/{dead_letter_id}", response_model=DeadLetterDetail)
def get_dead_letter(dead_letter_id: PathId, principal: Reader, conn: Conn):
    """One rejected message with its whole payload."""
    row = deadletters.get_dead_letter(conn, dead_letter_id, site_ids=principal.scope.site_ids)
    if row is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    return _read(row, full=True)
