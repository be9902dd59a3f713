"""Hazardous waste: catalogue, facilities, containers and their labels, the HJ 1259 ledger, transfer manifests,
declarations and exports. Regulators read and export; operators record from the phone; managers keep the
catalogue. Objects of a site outside the caller's scope answer 404; a site named outside it, 403."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api import plant_read
from api.deps import After, AppClock, Conn, Limit, PathId, SiteFilter, require
from api.errors import Conflict, Invalid, NotFound
from api.policy import Permission, Principal
from api.queries import after_id, encode_cursor
from core import audit
from core.scope import site_by_code
from hazwaste import catalogue, exchange, exports, ledger, manifests
from hazwaste import compliance as hazwaste_compliance
from hazwaste.catalogue import FacilitySpec, WasteTypeSpec
from hazwaste.labels import LabelData, container_url, render_label
from hazwaste.manifest_pdf import render_manifest

router = APIRouter(prefix="/api/v1/hazwaste", tags=["hazardous waste"])
Reader = Annotated[Principal, require(Permission.HAZWASTE_READ)]
Recorder = Annotated[Principal, require(Permission.HAZWASTE_RECORD)]
Manager = Annotated[Principal, require(Permission.HAZWASTE_MANAGE)]
Exporter = Annotated[Principal, require(Permission.HAZWASTE_EXPORT)]
SiteCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
OptText = Annotated[str | None, Field(max_length=200)]
Kg = Annotated[float, Field(ge=0, le=1e7, description="kg")]
Period = Annotated[str, Query(pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$", description="YYYY or YYYY-MM")]
_EARLIEST, _LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
PDF = {200: {"content": {"application/pdf": {}}, "description": "the label, one page"}}
EXPORT = {
    200: {
        "content": {"text/csv": {}, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}},
        "description": "CSV or XLSX",
    }
}


def _when(value: datetime | None, now: datetime, field: str) -> datetime:
    value = value or now
    if not _EARLIEST <= value <= _LATEST:
        raise Invalid("must lie between 2000 and 2200", field=field)
    return value


def _site(conn, principal: Principal, code: str) -> dict[str, Any]:
    """A site named in a body or query: 403 outside the caller's scope, 404 unknown."""
    return site_by_code(conn, code, site_ids=principal.scope.site_ids)


def _page(rows: list[dict[str, Any]], limit: int, key: str = "id") -> dict[str, Any]:
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next": encode_cursor(rows[-1][key]) if more and rows else None}


# --- catalogue ---------------------------------------------------------------------------------------------


class WasteTypeCreate(WasteTypeSpec):
    site: SiteCode


class FacilityCreate(FacilitySpec):
    site: SiteCode


def _site_ids(conn, principal, site: str | None) -> list[int] | None:
    """The sites a list covers: the one asked for (checked against the caller's scope), else the caller's scope;
    the catalogue filters in SQL."""
    site_id = plant_read.site_filter(conn, principal.scope, site)
    return [site_id] if site_id is not None else principal.scope.sites_param()


@router.get("/waste-types")
def list_waste_types(principal: Reader, conn: Conn, site: SiteFilter = None) -> list[dict[str, Any]]:
    return catalogue.list_waste_types(conn=conn, site_ids=_site_ids(conn, principal, site))


@router.post("/waste-types", status_code=201)
def put_waste_type(body: WasteTypeCreate, principal: Manager, conn: Conn) -> dict[str, Any]:
    """Create or update a waste type of a site (its code must be in the chosen edition of the list)."""
    site = _site(conn, principal, body.site)
    type_id = catalogue.put_waste_type(conn=conn, site_id=site["id"], spec=body)
    audit.append(
        conn,
        actor=principal.actor,
        action="hazwaste.waste_type.put",
        target=f"{body.site}/{body.code}",
        detail=body.model_dump(mode="json"),
    )
    return next(w for w in catalogue.list_waste_types(conn=conn, site_ids=[site["id"]]) if w["id"] == type_id)


@router.get("/facilities")
def list_facilities(principal: Reader, conn: Conn, site: SiteFilter = None) -> list[dict[str, Any]]:
    """Storage and other facilities with their current fill (kg) and container count."""
    return catalogue.list_facilities(conn=conn, site_ids=_site_ids(conn, principal, site))


@router.post("/facilities", status_code=201)
def put_facility(body: FacilityCreate, principal: Manager, conn: Conn) -> dict[str, Any]:
    site = _site(conn, principal, body.site)
    facility_id = catalogue.put_facility(conn=conn, site_id=site["id"], spec=body)
    audit.append(
        conn,
        actor=principal.actor,
        action="hazwaste.facility.put",
        target=f"{body.site}/{body.code}",
        detail=body.model_dump(mode="json"),
    )
    return next(f for f in catalogue.list_facilities(conn=conn, site_ids=[site["id"]]) if f["id"] == facility_id)


# --- containers and the ledger -------------------------------------------------------------------------------


class ContainerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    waste_type: SiteCode
    container_type: Text
    volume_l: float = Field(gt=0, le=100000)


class EntryCreate(BaseModel):
    """One ledger step of a container (HJ 1259-2022 Appendix B): the weight typed in, or read from a scale point,
    or (after generation) the container's last weight."""

    model_config = ConfigDict(extra="forbid")
    stage: Literal[ledger.STAGES]  # type: ignore[valid-type]
    at: AwareDatetime | None = Field(None, description="when it happened; default now")
    quantity_kg: Kg | None = None
    scale_point_id: int | None = Field(None, ge=1, le=2**31 - 1)
    facility: Annotated[str | None, Field(max_length=64)] = None
    handler: Text
    handler2: OptText = None
    destination: OptText = None
    method: OptText = None
    finished_at: AwareDatetime | None = None
    receiver_type: OptText = None
    receiver_name: OptText = None
    receiver_licence: OptText = None
    container_count: int = Field(1, ge=1, le=10000)


class CorrectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text
    at: AwareDatetime | None = None
    quantity_kg: Kg | None = None
    handler: OptText = None
    handler2: OptText = None
    destination: OptText = None
    method: OptText = None
    finished_at: AwareDatetime | None = None
    receiver_type: OptText = None
    receiver_name: OptText = None
    receiver_licence: OptText = None
    container_count: int | None = Field(None, ge=1, le=10000)


def _container(conn, principal: Principal, container_id: int) -> dict[str, Any]:
    row = ledger.get_container(conn=conn, container_id=container_id, site_ids=principal.scope.sites_param())
    if row is None:
        raise NotFound(f"no container {container_id}")
    return row


@router.get("/containers")
def list_containers(
    principal: Reader,
    conn: Conn,
    site: SiteFilter = None,
    stage: Annotated[Literal[ledger.STAGES] | None, Query()] = None,  # type: ignore[valid-type]
    after: After = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    site_id = plant_read.site_filter(conn, principal.scope, site)
    return _page(
        ledger.list_containers(
            conn=conn,
            site_ids=principal.scope.sites_param(),
            site_id=site_id,
            stage=stage,
            after=after_id(after),
            limit=limit,
        ),
        limit,
    )


@router.post("/containers", status_code=201)
def create_container(body: ContainerCreate, principal: Recorder, conn: Conn) -> dict[str, Any]:
    site = _site(conn, principal, body.site)
    wt = catalogue.waste_type_id(conn=conn, site_id=site["id"], code=body.waste_type, active_only=True)
    if wt is None:
        raise Invalid(f"no waste type {body.waste_type!r} at {body.site}", field="body.waste_type")
    container_id = ledger.create_container(
        conn=conn,
        site_id=site["id"],
        code=body.code,
        waste_type_id=wt,
        container_type=body.container_type,
        volume_l=body.volume_l,
    )
    return _container(conn, principal, container_id)


@router.get("/containers/{container_id}")
def get_container(container_id: PathId, principal: Reader, conn: Conn, request: Request) -> dict[str, Any]:
    """A container with its ledger history (what the PWA shows after a scan) and its label's address."""
    row = _container(conn, principal, container_id)
    return {
        **row,
        "history": ledger.history(conn=conn, container_id=container_id),
        "url": container_url(str(request.base_url), container_id),
    }


@router.get("/containers/{container_id}/label.pdf", response_class=Response, responses=PDF)
def container_label(container_id: PathId, principal: Reader, conn: Conn, request: Request) -> Response:
    """The HJ 1276-2022 label at the size for the container's volume, with its QR code."""
    c = _container(conn, principal, container_id)
    setting = catalogue.site_setting(conn=conn, site_id=c["site_id"])
    produced = ledger.generated_at(conn=conn, container_id=container_id)
    pdf = render_label(
        LabelData(
            container_id=container_id,
            container_code=c["code"],
            volume_l=c["volume_l"],
            name=c["waste_name"],
            waste_code=c["waste_code"],
            category=c["category"],
            hazards=tuple(c["hazards"]),
            form=c["form"],
            constituents=c["constituents"],
            precautions=c["precautions"],
            producer=setting["producer_name"] or c["site"],
            contact=setting["producer_contact"] or "",
            produced_on=produced.date() if produced else None,
            weight_kg=c["weight_kg"],
            url=container_url(str(request.base_url), container_id),
        )
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="label-{container_id}.pdf"'},
    )


@router.post("/containers/{container_id}/entries", status_code=201)
def record_entry(
    container_id: PathId, body: EntryCreate, principal: Recorder, conn: Conn, clock: AppClock
) -> dict[str, Any]:
    """Record the container's next step; the batch code is given here (HWCS, HWRK, HWCK, ...)."""
    _container(conn, principal, container_id)
    now = clock.now()
    values = body.model_dump(exclude={"at"})
    values["finished_at"] = body.finished_at and _when(body.finished_at, now, "body.finished_at")
    return ledger.record(
        conn=conn, container_id=container_id, at=_when(body.at, now, "body.at"), recorded_by=principal.actor, **values
    )


@router.get("/ledger")
def list_entries(
    principal: Reader,
    conn: Conn,
    site: SiteFilter = None,
    stage: Annotated[Literal[ledger.STAGES] | None, Query()] = None,  # type: ignore[valid-type]
    after: After = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Ledger entries as they stand (corrections applied)."""
    site_id = plant_read.site_filter(conn, principal.scope, site)
    return _page(
        ledger.list_entries(
            conn=conn,
            site_ids=principal.scope.sites_param(),
            site_id=site_id,
            stage=stage,
            after=after_id(after),
            limit=limit,
        ),
        limit,
        "entry_id",
    )


@router.post("/ledger/{entry_id}/corrections", status_code=201)
def correct_entry(
    entry_id: PathId, body: CorrectionCreate, principal: Recorder, conn: Conn, clock: AppClock
) -> dict[str, Any]:
    """Correct a ledger entry: a new row with the changed fields; the original is kept."""
    site_id = ledger.entry_site(conn=conn, entry_id=entry_id)
    if site_id is None or not principal.scope.has_site(site_id):
        raise NotFound(f"no ledger entry {entry_id}")
    changes = body.model_dump(exclude_unset=True, exclude={"reason"})
    for name in ("at", "finished_at"):
        if changes.get(name) is not None:
            changes[name] = _when(changes[name], clock.now(), f"body.{name}")
    if not changes:
        raise Invalid("name at least one field to correct", field="body")
    row = ledger.correct(conn=conn, entry_id=entry_id, changes=changes, reason=body.reason, recorded_by=principal.actor)
    audit.append(
        conn,
        actor=principal.actor,
        action="hazwaste.ledger.correct",
        target=row["batch_code"],
        detail={
            "entry_id": entry_id,
            "reason": body.reason,
            "changes": body.model_dump(mode="json", exclude_unset=True, exclude={"reason"}),
        },
    )
    return row


# --- manifests ------------------------------------------------------------------------------------------------


class ManifestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    waste_type: SiteCode
    trip: Text
    carrier_name: Text
    vehicle_plate: Text
    carrier_permit: Text
    receiver_name: Text
    receiver_licence: Text
    receiver_scope: list[Annotated[str, Field(pattern=r"^(HW\d{2}|\d{3}-\d{3}-\d{2})$")]] = Field(
        min_length=1, max_length=200, description="waste codes and/or categories HWxx the licence covers"
    )
    method: Literal["use", "disposal"]
    container_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(min_length=1, max_length=1000)


class ManifestEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: Literal[manifests.EVENTS]  # type: ignore[valid-type]
    at: AwareDatetime | None = None
    number: Annotated[str | None, Field(max_length=14)] = None
    received_kg: Kg | None = None
    delivered_at: AwareDatetime | None = None
    note: Annotated[str | None, Field(max_length=1000)] = None


@router.get("/manifests")
def list_manifests(
    principal: Reader,
    conn: Conn,
    site: SiteFilter = None,
    state: Annotated[Literal[manifests.STATES] | None, Query()] = None,  # type: ignore[valid-type]
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    site_id = plant_read.site_filter(conn, principal.scope, site)
    return manifests.list_manifests(
        conn=conn, site_ids=[site_id] if site_id else principal.scope.sites_param(), state=state, limit=limit
    )


@router.post("/manifests", status_code=201)
def create_manifest(body: ManifestCreate, principal: Recorder, conn: Conn, clock: AppClock) -> dict[str, Any]:
    """A draft manifest for one trip and waste type (the receiver's licence scope must cover its code)."""
    site = _site(conn, principal, body.site)
    wt = catalogue.waste_type_id(conn=conn, site_id=site["id"], code=body.waste_type)
    if wt is None:
        raise Invalid(f"no waste type {body.waste_type!r} at {body.site}", field="body.waste_type")
    values = body.model_dump(exclude={"site", "waste_type"})
    manifest_id = manifests.create(
        conn=conn, site_id=site["id"], waste_type_id=wt, created_by=principal.actor, at=clock.now(), **values
    )
    audit.append(
        conn,
        actor=principal.actor,
        action="hazwaste.manifest.create",
        target=str(manifest_id),
        detail=body.model_dump(mode="json"),
    )
    return manifests.get(conn=conn, manifest_id=manifest_id)  # type: ignore[return-value]


_MAX_UPLOAD = 20 * 1024 * 1024


@router.post(
    "/manifests/receipts",
    responses={422: {"description": "The file was refused, nothing applied: the line and column of each problem"}},
)
def import_receipts(
    principal: Recorder,
    conn: Conn,
    clock: AppClock,
    site: Annotated[str, Query(max_length=64, description="The consignor's site whose manifests the file confirms")],
    file: Annotated[
        UploadFile,
        File(description="CSV or XLSX: 联单编号, 接收量 (计量单位: kg or 吨), 接收日期, 经营许可证编号"),
    ],
) -> dict[str, Any]:
    """Import the receiver's confirmations of receipt (from the disposal company or the national system): each
    row confirms one manifest of the site through the state machine (delivered first when it was in transit), a
    quantity that differs from the shipped one flagged as a discrepancy. The whole file is refused (422, nothing
    applied) with the line and column of every problem. Recorded in the audit record."""
    s = _site(conn, principal, site)
    data = file.file.read(_MAX_UPLOAD + 1)
    if len(data) > _MAX_UPLOAD:
        raise Invalid(f"the file is larger than {_MAX_UPLOAD // 1024 // 1024} MB", field="file")
    result = exchange.import_receipts(
        conn=conn,
        data=data,
        filename=file.filename or "receipts.csv",
        site_ids=[s["id"]],
        actor=principal.actor,
        now=clock.now(),
    )
    audit.append(
        conn,
        actor=principal.actor,
        action="hazwaste.manifest.import_receipts",
        target=site,
        detail={k: result[k] for k in ("rows", "received", "discrepancies", "unchanged")}
        | {"numbers": [m["number"] for m in result["manifests"]]},
    )
    return result


@router.get("/manifests/export", response_class=Response, responses=EXPORT)
def export_manifests(
    principal: Exporter,
    conn: Conn,
    site: Annotated[str, Query(max_length=64)],
    period: Period,
    format: Annotated[Literal["xlsx", "csv"], Query()] = "xlsx",  # noqa: A002 - the query name
) -> Response:
    """The transfer manifests (转移联单) of a period (by transfer time, else creation) in the field order of the
    manifest rules, as XLSX or CSV. Recorded in the audit record."""
    s = _site(conn, principal, site)
    audit.append(
        conn,
        actor=principal.actor,
        action="export.hazwaste_manifests",
        target=f"{site}/{period}",
        detail={"format": format},
    )
    start, end = exports.period_bounds(period, s["timezone"])
    rows = exchange.manifest_rows(conn=conn, site_id=s["id"], start=start, end=end)
    name = f"hazwaste-manifests-{site}-{period}"
    if format == "xlsx":
        return Response(
            exports.to_xlsx([("转移联单", exchange.MANIFEST_COLUMNS, rows)], s["timezone"]),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return Response(
        exports.to_csv(exchange.MANIFEST_COLUMNS, rows, s["timezone"]).encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/manifests/{manifest_id}")
def get_manifest(manifest_id: PathId, principal: Reader, conn: Conn) -> dict[str, Any]:
    row = manifests.get(conn=conn, manifest_id=manifest_id, site_ids=principal.scope.sites_param())
    if row is None:
        raise NotFound(f"no manifest {manifest_id}")
    return row


@router.get("/manifests/{manifest_id}/manifest.pdf", response_class=Response, responses=PDF)
def manifest_pdf(manifest_id: PathId, principal: Reader, conn: Conn) -> Response:
    """A printable copy of the manifest (A4): parties, waste, containers, quantities, event record."""
    m = get_manifest(manifest_id, principal, conn)
    containers = ledger.container_weights(conn=conn, container_ids=list(m["containers"]))
    setting = catalogue.site_setting(conn=conn, site_id=m["site_id"])
    pdf = render_manifest(m, containers, setting["producer_name"] or m["site"])  # type: ignore[arg-type]
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="manifest-{manifest_id}.pdf"'},
    )


@router.post("/manifests/{manifest_id}/events")
def manifest_event(
    manifest_id: PathId, body: ManifestEvent, principal: Recorder, conn: Conn, clock: AppClock
) -> dict[str, Any]:
    """Move a manifest on: submit (with its number), paper, depart, deliver, receive (with the quantity),
    reject, resolve, backfill, dispose, close, cancel."""
    get_manifest(manifest_id, principal, conn)
    now = clock.now()
    row = manifests.apply_event(
        conn=conn,
        manifest_id=manifest_id,
        event=body.event,
        at=_when(body.at, now, "body.at"),
        actor=principal.actor,
        number=body.number,
        received_kg=body.received_kg,
        note=body.note,
        delivered_at=body.delivered_at and _when(body.delivered_at, now, "body.delivered_at"),
    )
    audit.append(
        conn,
        actor=principal.actor,
        action=f"hazwaste.manifest.{body.event}",
        target=str(manifest_id),
        detail=body.model_dump(mode="json", exclude_none=True),
    )
    return row


# --- declarations and exports ---------------------------------------------------------------------------------


class DeclarationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    period: str = Field(pattern=r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$", description="YYYY, YYYY-MM or YYYY-Qn")
    filed_at: AwareDatetime | None = None


@router.post("/declarations", status_code=201)
def file_declaration(body: DeclarationCreate, principal: Manager, conn: Conn, clock: AppClock) -> dict[str, Any]:
    """Record that a period's declaration was filed in the national system (clears its due-date finding)."""
    site = _site(conn, principal, body.site)
    filed_at = _when(body.filed_at, clock.now(), "body.filed_at")
    row = hazwaste_compliance.file_declaration(
        conn=conn, site_id=site["id"], period=body.period, filed_at=filed_at, filed_by=principal.actor
    )
    if row is None:
        raise Conflict(f"{body.period} is already filed for {body.site}")
    audit.append(conn, actor=principal.actor, action="hazwaste.declaration.file", target=f"{body.site}/{body.period}")
    return {"site": body.site, **row}


@router.get("/declaration")
def declaration(
    principal: Reader, conn: Conn, site: Annotated[str, Query(max_length=64)], period: Period
) -> dict[str, Any]:
    """The declaration figures of a month or a year per waste code (kg)."""
    s = _site(conn, principal, site)
    start, end = exports.period_bounds(period, s["timezone"])
    return {
        "site": site,
        "period": period,
        "items": exports.monthly_declaration(conn=conn, site_id=s["id"], start=start, end=end),
    }


@router.get("/ledger/export", response_class=Response, responses=EXPORT)
def export_ledger(
    principal: Exporter,
    conn: Conn,
    site: Annotated[str, Query(max_length=64)],
    period: Period,
    format: Annotated[Literal["xlsx", "csv"], Query()] = "xlsx",  # noqa: A002 - the query name
    table: Annotated[
        Literal[tuple(exports.TABLES)] | None,
        Query(  # type: ignore[valid-type]
            description="CSV: which table (B.1-B.5); default B.1"
        ),
    ] = None,
) -> Response:
    """The ledger of a period in the national system's field order: XLSX (tables B.1-B.5 and the declaration
    figures) or CSV (one table). Recorded in the audit record."""
    s = _site(conn, principal, site)
    audit.append(
        conn,
        actor=principal.actor,
        action="export.hazwaste_ledger",
        target=f"{site}/{period}",
        detail={"format": format, "table": table},
    )
    if format == "xlsx":
        body = exports.ledger_workbook(conn=conn, site_id=s["id"], period=period, tz=s["timezone"])
        return Response(
            body,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="hazwaste-{site}-{period}.xlsx"'},
        )
    _, stages, columns = exports.TABLES[table or "B.1"]
    start, end = exports.period_bounds(period, s["timezone"])
    text = exports.to_csv(
        columns, exports.ledger_rows(conn=conn, site_id=s["id"], start=start, end=end, stages=stages), s["timezone"]
    )
    return Response(
        text.encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="hazwaste-{site}-{period}.csv"'},
    )
