"""Reports: the kinds, runs (a background job with a progress record), the archive within the caller's scope
(regulators: the reports whose every area is a compliance area of their sites), byte-for-byte downloads (audited)
and the check of a file against the archive."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, BackgroundTasks, File, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field

from api.alarms import alarm_scope, check_site
from api.deps import AppClock, Conn, PathId, Settings, SiteFilter, require
from api.errors import Invalid, NotFound
from api.policy import Permission, Principal
from reports import archive, links, service
from reports.context import NotFound as ReportNotFound
from reports.registry import KINDS, readable_kinds

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
Runner = Annotated[Principal, require(Permission.REPORTS_RUN)]
Reader = Annotated[Principal, require(Permission.REPORTS_READ)]
Verifier = Annotated[Principal, require(Permission.REPORTS_VERIFY)]
#: Largest file ``POST /reports/verify`` takes (the request body limit applies as well).
MAX_VERIFY_BYTES = 50 * 1024 * 1024


class KindRead(BaseModel):
    name: str
    title: str
    title_en: str
    subject: Literal["period", "incident"]


class RunCreate(BaseModel):
    kind: str = Field(
        max_length=40,
        description="incident, alarm_month, interlocks, device_health, energy_month, carbon_inventory, "
        "hazwaste_month, hazwaste_year, compliance_day, compliance_month",
    )
    site: str | None = Field(None, max_length=64, description="Site code (period reports)")
    month: str | None = Field(None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM, site's time zone")
    day: date | None = Field(
        None, ge=date(2000, 1, 1), le=date(2199, 12, 31), description="A day of the site's calendar (compliance_day)"
    )
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    areas: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=100)
    lang: Literal["zh-CN", "en"] = "zh-CN"
    formats: list[Literal["pdf", "xlsx", "csv"]] = Field(["pdf", "xlsx", "csv"], min_length=1, max_length=3)
    alarm_id: int | None = Field(None, ge=1, le=2**62)
    flood_id: int | None = Field(None, ge=1, le=2**62)


class FileRead(BaseModel):
    id: int
    run_id: int | None
    kind: str
    site: str
    areas: list[str]
    lang: str
    format: str
    filename: str
    media_type: str
    size_bytes: int
    sha256: str
    params: dict[str, Any]
    revision: dict[str, Any]
    period_start: datetime
    period_end: datetime
    data_as_of: datetime | None
    generated_at: datetime
    generated_by: str
    audit_seq: int
    timezone: str | None = Field(None, description="The site's time zone (the period is local to it)")


class RunRead(BaseModel):
    id: int
    kind: str
    site: str
    params: dict[str, Any]
    formats: list[str]
    status: Literal["queued", "running", "done", "failed"]
    progress: float
    step: str
    error: str | None
    requested_by: str
    schedule: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    files: list[FileRead] = []


class VerifyRead(BaseModel):
    valid: bool
    sha256: str
    size_bytes: int
    reason: str
    report: FileRead | None = Field(None, description="The archived report, when it is one you may see")
    differs: dict[str, Any] | None = None


@router.get("/kinds", response_model=list[KindRead])
def list_kinds(principal: Reader):
    """The reports that can be made."""
    return [{"name": k.name, "title": k.title, "title_en": k.title_en, "subject": k.subject} for k in KINDS.values()]


@router.post("/runs", response_model=RunRead, status_code=202)
def create_run(
    body: RunCreate, principal: Runner, conn: Conn, clock: AppClock, request: Request, tasks: BackgroundTasks
):
    """Queue a report; it is generated in the background (poll ``GET /reports/runs/{id}`` for its progress) and
    its files are archived and entered in the audit record."""
    run = service.request_run(
        conn,
        alarm_scope(conn, principal.scope),
        kind=body.kind,
        site=body.site,
        month=body.month,
        day=body.day,
        since=body.since,
        until=body.until,
        areas=body.areas,
        lang=body.lang,
        alarm_id=body.alarm_id,
        flood_id=body.flood_id,
        formats=body.formats,
        actor=principal.actor,
        now=clock.now(),
    )
    pool = request.app.state.pool
    tasks.add_task(service.execute, pool.connection, run["id"], clock=clock)
    return {**run, "files": []}


@router.get(
    "/links/{token}",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}, "text/csv": {}, "application/octet-stream": {}}},
        410: {"description": "The link has expired"},
    },
)
def download_by_link(token: Annotated[str, Path(max_length=2000)], conn: Conn, settings: Settings, clock: AppClock):
    """A report sent to a chat channel: the signed link is the credential (no sign-in); audited."""
    try:
        link = links.read(settings.keyring, token, now=clock.now())
        found = archive.download(conn, link.report_id, actor=f"link:{link.to or 'report'}")
    except links.LinkError as exc:
        if exc.status == 410:
            raise HTTPException(410, str(exc)) from None
        raise NotFound(str(exc)) from None
    except ReportNotFound:
        raise NotFound("unknown link") from None
    return Response(
        found["content"],
        media_type=found["media_type"],
        headers={
            "Content-Disposition": f'attachment; filename="{found["filename"]}"',
            "X-Content-SHA256": found["sha256"],
        },
    )


@router.get("/runs/{run_id}", response_model=RunRead)
def get_run(run_id: PathId, principal: Runner, conn: Conn):
    """A run's progress, and its archived files once done."""
    return service.get_run_in_scope(conn, alarm_scope(conn, principal.scope), run_id)


def _scope_args(conn: psycopg.Connection, principal: Principal) -> dict[str, Any]:
    ascope = alarm_scope(conn, principal.scope)
    return {"sites": ascope.sites, "areas": ascope.areas, "kinds": readable_kinds(principal.role)}


@router.get("", response_model=list[FileRead])
def list_reports(
    principal: Reader,
    conn: Conn,
    site: SiteFilter = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
):
    """Archived reports you may see, newest first (regulators: those of their sites' compliance areas)."""
    check_site(conn, principal.scope, site)
    return archive.list_files(conn, **_scope_args(conn, principal), kind=kind, site=site, limit=limit, offset=offset)


@router.get("/{report_id}", response_model=FileRead)
def get_report(report_id: PathId, principal: Reader, conn: Conn):
    """One archived report (without its bytes)."""
    try:
        return archive.get(conn, report_id, **_scope_args(conn, principal))
    except ReportNotFound:
        raise NotFound(f"no report {report_id}") from None


@router.get(
    "/{report_id}/download",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "text/csv": {}, "application/octet-stream": {}}}},
)
def download_report(report_id: PathId, principal: Reader, conn: Conn):
    """The archived file, byte for byte as generated; the download is entered in the audit record."""
    try:
        found = archive.download(conn, report_id, actor=principal.actor, **_scope_args(conn, principal))
    except ReportNotFound:
        raise NotFound(f"no report {report_id}") from None
    return Response(
        found["content"],
        media_type=found["media_type"],
        headers={
            "Content-Disposition": f'attachment; filename="{found["filename"]}"',
            "X-Content-SHA256": found["sha256"],
        },
    )


@router.post("/verify", response_model=VerifyRead)
def verify_report(
    principal: Verifier,
    conn: Conn,
    file: Annotated[UploadFile, File(description="The file")],
    report_id: Annotated[int | None, Query(ge=1, le=2**62, description="The report it claims to be")] = None,
):
    """Check a file against the archive: ``valid`` when it is, byte for byte, a report generated here and its
    archive row and audit entry are intact. The matching report is shown only if it is in your scope."""
    content = file.file.read(MAX_VERIFY_BYTES + 1)
    if len(content) > MAX_VERIFY_BYTES:
        raise Invalid(f"the file is larger than {MAX_VERIFY_BYTES} bytes", field="file")
    scope = _scope_args(conn, principal)
    if report_id is not None:
        try:
            archive.get(conn, report_id, **scope)
        except ReportNotFound:
            report_id = None  # not one the caller may compare against
    result = archive.verify(conn, content, file_id=report_id)
    if result["report"] is not None:
        try:
            archive.get(conn, result["report"]["id"], **scope)
        except ReportNotFound:
            result["report"] = None
    return result
