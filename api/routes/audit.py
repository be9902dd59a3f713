"""The audit record (read, newest first) and the verification of its hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel

from api.deps import After, Conn, CurrentPrincipal, Limit, require
from api.policy import COMPLIANCE_ACTIONS, Permission, Principal
from api.queries import Page, after_id, encode_cursor
from api.ratelimit import limit_heavy
from api.schemas import ErrorRead
from core import audit
from core.scope import site_codes

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Verifier = Annotated[Principal, require(Permission.AUDIT_VERIFY)]


class AuditEntryRead(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    site: str | None = None
    area: str | None = None
    detail: dict[str, Any]
    hash: str


class ProblemRead(BaseModel):
    seq: int
    kind: str
    message: str


class VerifyRead(BaseModel):
    entries: int
    intact: bool
    problems: list[ProblemRead]


def _reader(principal: CurrentPrincipal) -> Principal:
    if not (principal.can(Permission.AUDIT_READ) or principal.can(Permission.AUDIT_READ_COMPLIANCE)):
        raise HTTPException(403, f"the {principal.role} role may not read the audit record")
    return principal


_reader.permission = Permission.AUDIT_READ_COMPLIANCE  # type: ignore[attr-defined]


@router.get("", response_model=Page[AuditEntryRead])
def list_entries(
    principal: Annotated[Principal, Depends(_reader)],
    conn: Conn,
    action: Annotated[str | None, Query(max_length=100, description="Action or prefix, e.g. auth.")] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
    after: After = None,
    limit: Limit = 100,
):
    """Entries newest first. Administrators read everything; EHS managers and regulators read the
    compliance-relevant actions (configuration, exports, alarms, commands, bypasses). Callers limited to some
    sites see the entries recorded for those sites; callers limited to some processes (regulators) see the
    entries of those processes' areas and the plant-wide ones (no site)."""
    everything = principal.can(Permission.AUDIT_READ)
    sites = site_codes(conn, principal.scope.site_ids)
    prefix = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" if action else None
    rows = audit.entries(
        conn,
        before=after_id(after),
        actions=None if everything else [p.replace("_", "\\_") + "%" for p in COMPLIANCE_ACTIONS],
        sites=sites,
        processes=principal.scope.processes_param(),
        prefix=prefix,
        actor=actor,
        target=target,
        since=since,
        until=until,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next": encode_cursor(rows[-1]["seq"]) if more and rows else None}


@router.get(
    "/verify",
    response_model=VerifyRead,
    responses={429: {"model": ErrorRead, "description": "Verified too often (it reads the whole record)"}},
)
def verify(request: Request, principal: Verifier, conn: Conn):
    """Walk the whole hash chain; name every edited, deleted or reordered entry (rate-limited per caller)."""
    limit_heavy(request, principal.actor, "audit verification")
    checked, problems = audit.verify(conn)
    return {
        "entries": checked,
        "intact": not problems,
        "problems": [{"seq": p.seq, "kind": p.kind, "message": p.message} for p in problems],
    }
