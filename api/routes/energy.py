"""Energy: ledgers per meter, area, medium and site (JSON, CSV, XLSX), the overview, the Sankey flow of the meter
tree, balance, tariffs, production and offline-meter imports. Everyone who works on a site reads its energy;
the EHS manager and administrators keep tariffs, production figures and offline readings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import AppClock, Conn, require
from api.errors import Invalid, NotFound
from api.policy import Permission, Principal
from core import audit
from core.scope import site_by_code
from energy import balance as energy_balance
from energy import exports, offline
from energy import per_unit as energy_per_unit
from energy.ledger import LedgerError, ledger
from energy.offline import ImportRefused
from energy.summary import summary as energy_summary
from energy.tariffs import TariffSpec, list_tariffs, save_tariff

router = APIRouter(prefix="/api/v1/energy", tags=["energy"])
Reader = Annotated[Principal, require(Permission.ENERGY_READ)]
Manager = Annotated[Principal, require(Permission.ENERGY_MANAGE)]
SiteCode = Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64, description="site code")]
Medium = Literal["electricity", "water", "compressed_air", "nitrogen", "steam", "natural_gas"]
Bucket = Literal["15min", "hour", "day", "month", "year"]
_MAX_UPLOAD = 20 * 1024 * 1024
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT = {
    200: {
        "content": {"application/json": {}, "text/csv": {}, _XLSX: {}},
        "description": "JSON, or CSV/XLSX with format=csv|xlsx",
    }
}
#: most 15-minute rows one ledger request may span per meter (a year of 15-minute buckets is 35,040)
_MAX_BUCKETS = {"15min": 96 * 93, "hour": 24 * 400, "day": 366 * 5, "month": 12 * 50, "year": 100}


@contextmanager
def _domain() -> Iterator[None]:
    try:
        yield
    except LedgerError as exc:
        if exc.status == 404:
            raise NotFound(str(exc)) from None
        raise Invalid(str(exc)) from None


def _site(conn, principal: Principal, code: str) -> dict[str, Any]:
    return site_by_code(conn, code, site_ids=principal.scope.site_ids)


def _span(start: datetime, end: datetime, bucket: str) -> None:
    if end <= start:
        raise Invalid("end must come after start", field="end")
    width = {"15min": 900, "hour": 3600, "day": 86400, "month": 86400 * 31, "year": 86400 * 366}[bucket]
    if (end - start).total_seconds() / width > _MAX_BUCKETS[bucket]:
        raise Invalid(
            f"too many {bucket} buckets in one request; use a coarser bucket or a shorter window", field="start"
        )


@router.get("/ledger", responses=EXPORT)
def get_ledger(
    principal: Reader,
    conn: Conn,
    site: SiteCode,
    start: AwareDatetime,
    end: AwareDatetime,
    by: Literal["meter", "area", "medium", "site"] = "area",
    bucket: Bucket = "day",
    medium: Medium | None = None,
    basis: Literal["calorific", "equivalent"] = "calorific",
    format: Literal["json", "csv", "xlsx"] = "json",
) -> Any:  # noqa: A002 - the query parameter's name
    """Energy per meter, area (process), medium or site and bucket (site-local calendar for day/month/year): native
    unit, kgce (GB/T 2589-2020, calorific or equivalent value), cost (CNY) and the quality counts."""
    s = _site(conn, principal, site)
    _span(start, end, bucket)
    with _domain():
        rows = ledger(conn, site=site, start=start, end=end, bucket=bucket, by=by, medium=medium, basis=basis)
    if format == "json":
        return {"rows": [r.as_dict() for r in rows]}
    name = f"energy-{site}-{by}-{bucket}-{start.date()}"
    if format == "csv":
        return Response(
            exports.ledger_csv(rows, s["timezone"]),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        exports.ledger_xlsx(rows, s["timezone"]),
        media_type=_XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


@router.get("/summary")
def get_summary(principal: Reader, conn: Conn, clock: AppClock, site: SiteCode) -> dict[str, Any]:
    """Today and this month per area (kgce, cost, quantity per medium, output, kgce per unit), open energy
    findings, and this month's peak/flat/valley/critical shares of electricity."""
    _site(conn, principal, site)
    with _domain():
        return energy_summary(conn, site=site, now=clock.now())


@router.get("/flow")
def get_flow(
    principal: Reader,
    conn: Conn,
    site: SiteCode,
    start: AwareDatetime,
    end: AwareDatetime,
    medium: Medium = "electricity",
) -> dict[str, Any]:
    """Sankey of the meter tree: parent -> children, leaf -> area, parent - sum of children -> loss/unmetered."""
    _site(conn, principal, site)
    _span(start, end, "hour")
    with _domain():
        return energy_balance.flow(conn, site=site, start=start, end=end, medium=medium)


@router.get("/balance")
def get_balance(
    principal: Reader, conn: Conn, site: SiteCode, start: AwareDatetime, end: AwareDatetime, bucket: Bucket = "hour"
) -> dict[str, Any]:
    """Parent meter vs the sum of its children per bucket: loss and loss % of the parent."""
    _site(conn, principal, site)
    _span(start, end, bucket)
    with _domain():
        return {"rows": energy_balance.balance(conn, site=site, start=start, end=end, bucket=bucket)}


@router.get("/per-unit")
def get_per_unit(
    principal: Reader, conn: Conn, site: SiteCode, start: AwareDatetime, end: AwareDatetime
) -> dict[str, Any]:
    """Energy, kgce and cost per unit of output per process area and per device (whole local days), each ranked
    against the areas of the same process type or the devices of the same kind."""
    _site(conn, principal, site)
    _span(start, end, "day")
    with _domain():
        return energy_per_unit.per_unit(conn, site=site, start=start, end=end)


@router.get("/tariffs")
def get_tariffs(principal: Reader, conn: Conn, site: SiteCode, medium: Medium | None = None) -> list[dict[str, Any]]:
    s = _site(conn, principal, site)
    return [t.model_dump(mode="json", by_alias=True) for t in list_tariffs(conn=conn, site_id=s["id"], medium=medium)]


class TariffCreate(TariffSpec):
    site: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)


@router.post("/tariffs", status_code=201)
def post_tariff(body: TariffCreate, principal: Manager, conn: Conn) -> dict[str, Any]:
    """Create or replace a tariff of a site; the intervals it prices are recomputed by the next energy refresh."""
    s = _site(conn, principal, body.site)
    spec = TariffSpec.model_validate(body.model_dump(exclude={"site"}, by_alias=True))
    save_tariff(conn=conn, site_id=s["id"], spec=spec, actor=principal.actor)
    audit.append(
        conn,
        actor=principal.actor,
        action="energy.tariff.put",
        target=f"{body.site}/{body.code}",
        detail=spec.model_dump(mode="json", by_alias=True),
        site=body.site,
    )
    return spec.model_dump(mode="json", by_alias=True)


class ProductionRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    area: str = Field(max_length=64)
    start: AwareDatetime
    end: AwareDatetime
    quantity: float = Field(ge=0, le=1e10)
    unit: Literal["cells", "packs", "ah", "kwh", "pcs", "t"]


class ProductionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    rows: list[ProductionRow] = Field(min_length=1, max_length=10000)


@router.get("/production")
def get_production(
    principal: Reader, conn: Conn, site: SiteCode, start: AwareDatetime, end: AwareDatetime
) -> list[dict[str, Any]]:
    s = _site(conn, principal, site)
    return offline.production(conn, site_id=s["id"], start=start, end=end)


def _refused(exc: ImportRefused, field: str = "file") -> Invalid:
    return Invalid(str(exc), field=field, extra={"problems": exc.problems})


@router.post("/production", status_code=201)
def post_production(body: ProductionCreate, principal: Manager, conn: Conn) -> dict[str, Any]:
    """Record production output per area and period (replaces a row for the same area, period and unit)."""
    s = _site(conn, principal, body.site)
    try:
        n = offline.record_production(
            conn, site_id=s["id"], rows=[r.model_dump() for r in body.rows], source="api", actor=principal.actor
        )
    except ImportRefused as exc:
        raise _refused(exc, "rows") from None
    return {"stored": n}


def _read(file: UploadFile) -> bytes:
    data = file.file.read(_MAX_UPLOAD + 1)
    if len(data) > _MAX_UPLOAD:
        raise Invalid(f"the file is larger than {_MAX_UPLOAD // 1024 // 1024} MB", field="file")
    return data


@router.post("/offline", status_code=201)
def post_offline(
    principal: Manager,
    conn: Conn,
    site: SiteCode,
    file: Annotated[UploadFile, File(description="CSV or XLSX: meter, time, value")],
    kind: Literal["readings", "production"] = "readings",
) -> dict[str, Any]:
    """Import offline meter readings (columns meter, time, value) or production (area, start, end, quantity,
    unit) from CSV or XLSX; the whole file is refused with the line and field of each problem."""
    data = _read(file)
    s = _site(conn, principal, site)
    name = file.filename or "upload.csv"
    try:
        if kind == "production":
            return {
                "stored": offline.import_production(
                    conn, site_id=s["id"], data=data, filename=name, actor=principal.actor
                )
            }
        result = offline.import_offline(conn, site_id=s["id"], data=data, filename=name, actor=principal.actor)
    except ImportRefused as exc:
        raise _refused(exc) from None
    return {"rows": result.rows, "stored": result.stored, "meters": result.meters, "import_id": result.import_id}
