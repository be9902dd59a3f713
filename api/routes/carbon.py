"""Carbon: the factor library, period ledgers (open: computed now; closed: frozen until an audited recalculation),
hourly intensity, entries, green certificates and contracts, offsets, reduction projects, the routing, batches and
their footprint declarations. Everyone who reads the plant reads carbon; managers keep it; administrators import
factor libraries. A site named outside the caller's scope answers 403."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import AppClock, Conn, require
from api.errors import ApiError, Conflict, Forbidden, Invalid, NotFound, field_errors
from api.policy import Permission, Principal
from carbon import service
from carbon.factors import FactorFileError, parse_library
from carbon.footprint import Routing
from carbon.imports import parse_certificates
from carbon.service import CarbonError
from carbon.sources import SourceUnavailable
from core.scope import site_by_code

router = APIRouter(prefix="/api/v1/carbon", tags=["carbon"])
Reader = Annotated[Principal, require(Permission.CARBON_READ)]
Manager = Annotated[Principal, require(Permission.CARBON_MANAGE)]
FactorAdmin = Annotated[Principal, require(Permission.CARBON_FACTORS)]
SiteCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
SiteQuery = Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64, description="site code")]
PeriodText = Annotated[str, Field(pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$", description="YYYY or YYYY-MM")]
PeriodQuery = Annotated[str, Query(pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$", description="YYYY or YYYY-MM")]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$", max_length=64)]
Year = Annotated[int, Field(ge=2000, le=2100)]
Serial = Annotated[int, Field(ge=0, le=10**18 - 1)]


class Unavailable(ApiError):
    status = 503


@contextmanager
def _domain() -> Iterator[None]:
    try:
        yield
    except CarbonError as exc:
        if exc.status == 404:
            raise NotFound(str(exc)) from None
        if exc.status == 422:
            raise Invalid(str(exc)) from None
        raise Conflict(str(exc)) from None
    except SourceUnavailable as exc:
        raise Unavailable(str(exc)) from None


def _site(conn, principal: Principal, code: str) -> None:
    site_by_code(conn, code, site_ids=principal.scope.site_ids)


def _source(request: Request):
    return request.app.state.carbon_source


# --- factor library ----------------------------------------------------------------------------------------


class LibraryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Code
    files: dict[Literal["grid.csv", "fuel.csv", "heat.csv", "gwp.csv"], Annotated[str, Field(max_length=2_000_000)]]
    activate: bool = True


@router.get("/factors")
def list_versions(_: Reader, conn: Conn) -> list[dict[str, Any]]:
    """The stored factor-library versions; the active one is used by open periods and recalculations."""
    return service.versions(conn=conn)


@router.get("/factors/{version}")
def get_version(version: Annotated[str, Field(max_length=64)], _: Reader, conn: Conn) -> dict[str, Any]:
    from carbon.factors import as_dict

    with _domain():
        lib = service.library(conn=conn, version=version)
    return {"version": lib.version, "sha256": lib.sha256, "factors": [as_dict(f) for f in lib.factors]}


@router.post("/factors", status_code=201)
def import_factors(body: LibraryCreate, principal: FactorAdmin, conn: Conn) -> Any:
    """Import a factor library version (the four CSV files' text); every problem names file, line and field.
    The library serves every site, so only an administrator of all sites imports one."""
    if principal.scope.site_ids is not None:
        raise Forbidden("only an administrator of all sites imports factor libraries")
    try:
        lib = parse_library(body.version, body.files)
    except FactorFileError as exc:
        return field_errors([("body.files", p) for p in exc.problems[:100]])
    with _domain():
        created = service.import_library(conn=conn, library=lib, actor=principal.actor, activate=body.activate)
    return {"version": lib.version, "sha256": lib.sha256, "rows": len(lib.factors), "created": created}


# --- site settings -----------------------------------------------------------------------------------------


class SiteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    province: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$", max_length=64)] = None
    grid_region: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$", max_length=64)] = None
    factor_lag_years: int = Field(2, ge=0, le=10)
    vintage_years: int = Field(1, ge=0, le=5)
    steam_gj_per_t: float = Field(2.8, gt=0, le=10)
    gwp_basis: Literal["AR5", "AR6"] = "AR6"
    pv_meters: list[SiteCode] = Field(default_factory=list, max_length=200)


@router.put("/settings")
def put_settings(body: SiteSettings, principal: Manager, conn: Conn) -> dict[str, Any]:
    """Set a site's factor regions (province, regional grid; national last), the factor-year lag, the
    certificate vintage window, the steam conversion, the GWP report and the on-site generation meters."""
    _site(conn, principal, body.site)
    with _domain():
        service.set_site(conn=conn, actor=principal.actor, **{**body.model_dump(), "pv_meters": tuple(body.pv_meters)})
    return get_settings(principal, conn, body.site)


@router.get("/settings")
def get_settings(principal: Reader, conn: Conn, site: SiteQuery) -> dict[str, Any]:
    _site(conn, principal, site)
    with _domain():
        s = service.site_ref(conn=conn, code=site)
        st = service.site_settings(conn=conn, site_id=s.id)
        pv = service.pv_meters(conn=conn, site_id=s.id)
    return {
        "site": site,
        "regions": list(st.regions),
        "factor_lag_years": st.lag_years,
        "vintage_years": st.vintage_years,
        "steam_gj_per_t": st.steam_gj_per_t,
        "gwp_basis": st.gwp_basis,
        "pv_meters": pv,
    }


# --- ledgers and periods -----------------------------------------------------------------------------------


@router.get("/ledger")
def get_ledger(request: Request, principal: Reader, conn: Conn, site: SiteQuery, period: PeriodQuery) -> dict[str, Any]:
    """The carbon ledger of a month or year: scope 1, scope 2 location- and market-based by area and process,
    each line with its factor row and version; offsets beside. A closed period answers its frozen revision."""
    _site(conn, principal, site)
    with _domain():
        return service.ledger(conn=conn, site=site, period=period, source=_source(request))


class PeriodClose(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    period: PeriodText


class PeriodRecalculate(PeriodClose):
    reason: Text


@router.post("/periods", status_code=201)
def close_period(body: PeriodClose, request: Request, principal: Manager, conn: Conn) -> dict[str, Any]:
    """Close a period: its ledger is frozen with today's factors (revision 1)."""
    _site(conn, principal, body.site)
    with _domain():
        return service.close_period(
            conn=conn, site=body.site, period=body.period, source=_source(request), actor=principal.actor
        )


@router.post("/periods/recalculate")
def recalculate(body: PeriodRecalculate, request: Request, principal: Manager, conn: Conn) -> dict[str, Any]:
    """Recalculate a closed period as its next revision (audited with both results and the reason)."""
    _site(conn, principal, body.site)
    with _domain():
        return service.recalculate(
            conn=conn,
            site=body.site,
            period=body.period,
            source=_source(request),
            actor=principal.actor,
            reason=body.reason,
        )


@router.get("/intensity")
def intensity(
    request: Request, principal: Reader, conn: Conn, site: SiteQuery, start: AwareDatetime, end: AwareDatetime
) -> dict[str, Any]:
    """gCO2/kWh of the electricity used each hour (at most 31 days)."""
    _site(conn, principal, site)
    if not timedelta(0) < end - start <= timedelta(days=31):
        raise Invalid("end must follow start by at most 31 days", field="end")
    with _domain():
        rows = service.hourly(conn=conn, site=site, start=start, end=end, source=_source(request))
    return {"site": site, "rows": rows}


@router.get("/summary")
def summary(request: Request, principal: Reader, conn: Conn, clock: AppClock, site: SiteQuery) -> dict[str, Any]:
    """For the phone and the control room: this month's tCO2e per process (scope 1, scope 2 location- and
    market-based) with intensity per unit of output, today's emissions per process and today's hourly gCO2/kWh."""
    _site(conn, principal, site)
    with _domain():
        return service.summary(conn=conn, site=site, now=clock.now(), source=_source(request))


# --- entries, instruments, offsets, projects ----------------------------------------------------------------


class EntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    month: date = Field(description="any day of the month the entry belongs to")
    kind: Literal["fuel", "process", "fugitive"]
    code: Code
    quantity: float = Field(ge=0, le=1e12)
    unit: Annotated[str, Field(min_length=1, max_length=20)]
    area: Annotated[str | None, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)] = None
    co2e_kg: float | None = Field(None, ge=0, le=1e12)
    note: Annotated[str, Field(max_length=500)] = ""
    corrects: int | None = Field(None, ge=1, le=2**62)


@router.post("/entries", status_code=201)
def add_entry(body: EntryCreate, principal: Manager, conn: Conn) -> dict[str, Any]:
    """Record a fuel not metered, a process emission (kgCO2e) or a leak (kg of gas) for a month."""
    _site(conn, principal, body.site)
    if not 2000 <= body.month.year <= 2100:
        raise Invalid("the month must lie between 2000 and 2100", field="body.month")
    with _domain():
        entry_id = service.add_entry(
            conn=conn,
            site=body.site,
            month=body.month,
            kind=body.kind,
            code=body.code,
            quantity=body.quantity,
            unit=body.unit,
            area=body.area,
            co2e_kg=body.co2e_kg,
            note=body.note,
            corrects=body.corrects,
            actor=principal.actor,
        )
    return {"id": entry_id}


class CertificateImport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    csv: Annotated[str, Field(min_length=1, max_length=2_000_000, description="columns of carbon.imports.COLUMNS")]


@router.post("/certificates", status_code=201)
def import_certificates(body: CertificateImport, principal: Manager, conn: Conn) -> Any:
    """Claim green certificates from a CSV (one row per serial block); all rows or none. A serial claimed before,
    by any site, is refused with the row's line."""
    _site(conn, principal, body.site)
    try:
        rows = parse_certificates(body.csv)
    except FactorFileError as exc:
        return field_errors([("body.csv", p) for p in exc.problems[:100]])
    ids = []
    for r in rows:
        try:
            ids.append(
                service.add_certificates(
                    conn=conn,
                    site=body.site,
                    scheme=r.scheme,
                    serial_prefix=r.serial_prefix,
                    serial_first=r.serial_first,
                    serial_last=r.serial_last,
                    vintage_year=r.vintage_year,
                    period_start=r.period_start,
                    period_end=r.period_end,
                    reference=r.reference,
                    actor=principal.actor,
                )
            )
        except CarbonError as exc:
            raise Conflict(f"certificates.csv:{r.line}: {exc}") from None
    return {"ids": ids}


class ContractCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    scheme: Code = "GREEN_POWER"
    mwh: float = Field(gt=0, le=1e9)
    vintage_year: Year
    period_start: date
    period_end: date
    reference: Text


@router.post("/contracts", status_code=201)
def add_contract(body: ContractCreate, principal: Manager, conn: Conn) -> dict[str, Any]:
    _site(conn, principal, body.site)
    if body.period_end <= body.period_start:
        raise Invalid("period_end must follow period_start", field="body.period_end")
    with _domain():
        return {
            "id": service.add_contract(
                conn=conn,
                site=body.site,
                scheme=body.scheme,
                mwh=body.mwh,
                vintage_year=body.vintage_year,
                period_start=body.period_start,
                period_end=body.period_end,
                reference=body.reference,
                actor=principal.actor,
            )
        }


@router.get("/instruments")
def list_instruments(principal: Reader, conn: Conn, site: SiteQuery) -> list[dict[str, Any]]:
    _site(conn, principal, site)
    return service.site_instruments(conn=conn, site=site)


class OffsetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    scheme: Code = "CCER"
    project: Text
    serial_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{0,32}$")] = ""
    serial_first: Serial
    serial_last: Serial
    tco2e: float = Field(gt=0, le=1e9)
    vintage_year: Year
    retired_on: date
    retirement_ref: Text
    claim_year: Year


@router.post("/offsets", status_code=201)
def add_offset(body: OffsetCreate, principal: Manager, conn: Conn) -> dict[str, Any]:
    """Record retired credits; they are reported beside gross emissions and never subtracted."""
    _site(conn, principal, body.site)
    with _domain():
        return {"id": service.add_offset(conn=conn, actor=principal.actor, **body.model_dump())}


@router.get("/offsets")
def list_offsets(
    principal: Reader, conn: Conn, site: SiteQuery, year: Annotated[int, Query(ge=2000, le=2100)]
) -> list[dict[str, Any]]:
    _site(conn, principal, site)
    with _domain():
        return service.offsets(conn=conn, site_id=service.site_ref(conn=conn, code=site).id, year=year)


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    code: SiteCode
    name: Text
    area: Annotated[str | None, Field(max_length=64)] = None
    baseline_tco2e_per_year: float = Field(ge=0, le=1e9)
    started_on: date
    baseline_meter: Annotated[str | None, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)] = Field(
        None, description="an electricity meter whose current energy baseline measures the project's savings"
    )
    baseline_granularity: Literal["monthly", "daily", "hourly"] = "monthly"


class ReportingPeriod(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: AwareDatetime
    energy: float = Field(ge=0, le=1e12, description="kWh metered in the period")
    variables: dict[Annotated[str, Field(max_length=64)], float] = Field(max_length=10)


class BaselineSavings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    project: SiteCode
    period: Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
    periods: list[ReportingPeriod] = Field(min_length=1, max_length=800)
    record: bool = False


class SavingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    project: SiteCode
    month: date
    tco2e: float = Field(ge=-1e9, le=1e9)
    method: Text


@router.post("/projects", status_code=201)
def add_project(body: ProjectCreate, principal: Manager, conn: Conn) -> dict[str, Any]:
    _site(conn, principal, body.site)
    with _domain():
        return {"id": service.add_project(conn=conn, actor=principal.actor, **body.model_dump())}


@router.post("/projects/savings")
def record_saving(body: SavingCreate, principal: Manager, conn: Conn) -> dict[str, Any]:
    """Record a reduction project's saving for a month (tCO2e against its baseline)."""
    _site(conn, principal, body.site)
    with _domain():
        service.record_saving(conn=conn, actor=principal.actor, **body.model_dump())
    return {"ok": True}


@router.post("/projects/baseline-savings")
def baseline_savings(body: BaselineSavings, principal: Manager, conn: Conn) -> dict[str, Any]:
    """A project's savings in a month from its meter's energy baseline (ISO 50006 normalised savings of the
    reporting periods inside the month, times the month's location-based grid factor); ``record`` stores them."""
    _site(conn, principal, body.site)
    if len({p.start for p in body.periods}) != len(body.periods):
        raise Invalid("two periods start at the same time", field="body.periods")
    energy = {p.start: p.energy for p in body.periods}
    names = sorted({n for p in body.periods for n in p.variables})
    variables = {n: {p.start: p.variables.get(n, float("nan")) for p in body.periods} for n in names}
    with _domain():
        return service.baseline_savings(
            conn=conn,
            site=body.site,
            project=body.project,
            period=body.period,
            energy=energy,
            variables=variables,
            record=body.record,
            actor=principal.actor,
        )


@router.get("/projects")
def list_projects(principal: Reader, conn: Conn, site: SiteQuery) -> list[dict[str, Any]]:
    _site(conn, principal, site)
    with _domain():
        return service.projects(conn=conn, site_id=service.site_ref(conn=conn, code=site).id)


# --- routing, batches, footprints ---------------------------------------------------------------------------


class RoutingPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    routing: Routing


@router.put("/routing")
def put_routing(body: RoutingPut, principal: Manager, conn: Conn) -> dict[str, Any]:
    """Set the site's process graph (processes, yields, inputs, purchased materials with their factors)."""
    _site(conn, principal, body.site)
    with _domain():
        service.set_routing(conn=conn, site=body.site, routing=body.routing, actor=principal.actor)
    return {"order": body.routing.order()}


@router.get("/routing")
def get_routing(principal: Reader, conn: Conn, site: SiteQuery) -> dict[str, Any]:
    _site(conn, principal, site)
    with _domain():
        routing = service.get_routing(conn=conn, site_id=service.site_ref(conn=conn, code=site).id)
    if routing is None:
        raise NotFound(f"site {site} has no routing")
    return {"routing": routing.model_dump(mode="json", by_alias=True), "order": routing.order()}


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: SiteCode
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    product: Text
    started_at: AwareDatetime
    ended_at: AwareDatetime
    output: dict[Annotated[str, Field(max_length=64)], Annotated[float, Field(ge=0, le=1e9)]] = Field(
        max_length=500, description="good units per process code"
    )


@router.post("/batches", status_code=201)
def add_batch(body: BatchCreate, principal: Manager, conn: Conn) -> dict[str, Any]:
    _site(conn, principal, body.site)
    with _domain():
        return {
            "id": service.add_batch(
                conn=conn,
                site=body.site,
                code=body.code,
                product=body.product,
                started_at=body.started_at,
                ended_at=body.ended_at,
                output=body.output,
                actor=principal.actor,
            )
        }


@router.get("/batches/{code}/footprint")
def batch_footprint(
    code: Annotated[str, Field(max_length=64)],
    request: Request,
    principal: Reader,
    conn: Conn,
    site: SiteQuery,
    basis: Annotated[Literal["location", "market"], Query()] = "location",
) -> dict[str, Any]:
    """The batch's product carbon footprint declaration: kgCO2e per cell, per pack and per kWh of rated
    capacity ((EU) 2023/1542 declared unit), by process, material and life-cycle stage, hotspots ranked."""
    _site(conn, principal, site)
    with _domain():
        return service.batch_footprint(conn=conn, site=site, batch=code, source=_source(request), basis=basis)


@router.get(
    "/batches/{code}/declaration.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the declaration"}},
)
def batch_declaration(
    code: Annotated[str, Field(max_length=64)],
    request: Request,
    principal: Reader,
    conn: Conn,
    clock: AppClock,
    site: SiteQuery,
    basis: Annotated[Literal["location", "market"], Query()] = "location",
    lang: Annotated[Literal["zh-CN", "en"], Query()] = "zh-CN",
) -> Response:
    """The batch's footprint declaration as PDF (zh-CN or English)."""
    from reports.context import ReportError
    from reports.kinds import carbon_footprint
    from reports.render import FORMATS

    _site(conn, principal, site)
    try:
        doc, _ = carbon_footprint.build(
            conn, site=site, batch=code, basis=basis, lang=lang, now=clock.now(), source=_source(request)
        )
    except ReportError as exc:
        if "no batch" in str(exc):
            raise NotFound(str(exc)) from None
        raise Conflict(str(exc)) from None
    return Response(
        FORMATS["pdf"].render(doc),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="footprint-{site}-{code}.pdf"'},
    )


@router.get("/footprint")
def period_footprint(
    request: Request,
    principal: Reader,
    conn: Conn,
    site: SiteQuery,
    period: PeriodQuery,
    basis: Annotated[Literal["location", "market"], Query()] = "location",
) -> dict[str, Any]:
    """The product footprint of a month or year (all batches of the period)."""
    _site(conn, principal, site)
    with _domain():
        s = service.site_ref(conn=conn, code=site)
        start, end, _ = service.period_bounds(period, s.timezone)
        return {
            "period": period,
            **service.window_footprint(
                conn=conn, s=s, start=start, end=end, source=_source(request), basis=basis, label=period
            ),
        }
