"""Carbon in the database: the factor library's versions, site settings, entries, instruments (no serial claimed
twice), offsets, reduction projects, closed periods with audited recalculation, routings, batches and footprints.

Functions take a keyword-only ``conn`` and never commit. A closed period answers its frozen result whatever the
factor library says now; ``recalculate`` is the only way to change it, and it writes a new revision and an audit
entry (``core.audit``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg
from psycopg.rows import dict_row

from carbon import ledger as L
from carbon.factors import Factor, FactorLibrary, NoFactor, grid_factor
from carbon.footprint import Routing, footprint, process_emissions
from carbon.sources import ActivitySource
from core import audit
from core.db import execute

PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2]))?$")
#: advisory-lock key serialising serial-range claims (instruments and offsets)
_SERIAL_LOCK = 0x43415242  # "CARB"


class CarbonError(Exception):
    """A refused carbon operation; ``status`` is the HTTP status the API answers."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SiteRef:
    id: int
    code: str
    timezone: str


def site_ref(*, conn: psycopg.Connection, code: str) -> SiteRef:
    row = execute(conn, "SELECT id, code, timezone FROM site WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise CarbonError(f"no site {code!r}", 404)
    return SiteRef(*row)


def period_bounds(period: str, tz: str) -> tuple[datetime, datetime, int]:
    """``YYYY`` or ``YYYY-MM`` → (start, end) as UTC instants of the site's local calendar, and the year."""
    m = PERIOD.match(period or "")
    if not m:
        raise CarbonError(f"period {period!r} must be YYYY or YYYY-MM", 422)
    year, month = int(m.group(1)), m.group(2)
    if not 2000 <= year <= 2100:
        raise CarbonError("the period's year must lie between 2000 and 2100", 422)
    zone = ZoneInfo(tz)
    if month:
        s = datetime(year, int(month), 1, tzinfo=zone)
        e = datetime(year + (int(month) == 12), int(month) % 12 + 1, 1, tzinfo=zone)
    else:
        s, e = datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)
    return s.astimezone(UTC), e.astimezone(UTC), year


# --- the factor library ------------------------------------------------------------------------------------


def import_library(*, conn: psycopg.Connection, library: FactorLibrary, actor: str, activate: bool = True) -> bool:
    """Store a library version (True) or find it stored already with the same content (False). A version's
    content never changes: the same version with other content is refused."""
    row = execute(
        conn, "SELECT sha256 FROM carbon_factor_set WHERE version = %s FOR UPDATE", (library.version,)
    ).fetchone()
    if row is not None:
        if row[0] != library.sha256:
            raise CarbonError(
                f"factor version {library.version} exists with other content: give the new factors a new version"
            )
        if activate:
            set_active(conn=conn, version=library.version, actor=actor)
        return False
    execute(
        conn,
        "INSERT INTO carbon_factor_set (version, sha256, imported_by) VALUES (%s, %s, %s)",
        (library.version, library.sha256, actor),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO carbon_factor (version, row_key, kind, code, region_level, data_year, basis, value, unit, "
            "detail, publication_ref, published_on) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    library.version,
                    f.row_key,
                    f.kind,
                    f.code,
                    f.region_level,
                    f.data_year,
                    f.basis,
                    f.value,
                    f.unit,
                    orjson.dumps(dict(f.detail)).decode(),
                    f.publication_ref,
                    f.published_on,
                )
                for f in library.factors
            ],
        )
    audit.append(
        conn,
        actor=actor,
        action="carbon.factors.import",
        target=library.version,
        detail={"sha256": library.sha256, "rows": len(library.factors)},
    )
    if activate:
        set_active(conn=conn, version=library.version, actor=actor)
    return True


def set_active(*, conn: psycopg.Connection, version: str, actor: str) -> None:
    """Make ``version`` the library that open periods and recalculations use (audited)."""
    current = execute(conn, "SELECT version FROM carbon_factor_set WHERE active").fetchone()
    if current and current[0] == version:
        return
    if execute(conn, "SELECT 1 FROM carbon_factor_set WHERE version = %s", (version,)).fetchone() is None:
        raise CarbonError(f"no factor version {version}", 404)
    execute(conn, "UPDATE carbon_factor_set SET active = false WHERE active")
    execute(conn, "UPDATE carbon_factor_set SET active = true WHERE version = %s", (version,))
    audit.append(
        conn,
        actor=actor,
        action="carbon.factors.activate",
        target=version,
        detail={"previous": current[0] if current else None},
    )


def library(*, conn: psycopg.Connection, version: str | None = None) -> FactorLibrary:
    """A stored library: ``version``, or the active one."""
    row = execute(
        conn,
        "SELECT version, sha256 FROM carbon_factor_set WHERE " + ("version = %s" if version else "active"),
        (version,) if version else (),
    ).fetchone()
    if row is None:
        raise CarbonError(
            "no factor library is active: run `ehs carbon factors import`"
            if version is None
            else f"no factor version {version}",
            404 if version else 409,
        )
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute("SELECT * FROM carbon_factor WHERE version = %s ORDER BY row_key", (row[0],))
        .fetchall()
    )
    return FactorLibrary(
        row[0],
        tuple(
            Factor(
                r["row_key"],
                r["kind"],
                r["code"],
                r["value"],
                r["unit"],
                r["publication_ref"],
                r["region_level"],
                r["data_year"],
                r["basis"],
                r["published_on"],
                r["detail"],
            )
            for r in rows
        ),
        row[1],
    )


def versions(*, conn: psycopg.Connection) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT s.version, s.sha256, s.imported_at, s.imported_by, s.active, count(f.row_key) AS rows "
            "FROM carbon_factor_set s LEFT JOIN carbon_factor f USING (version) GROUP BY s.version "
            "ORDER BY s.imported_at"
        )
        .fetchall()
    )


# --- site settings, entries -------------------------------------------------------------------------------


def set_site(
    *,
    conn: psycopg.Connection,
    site: str,
    actor: str,
    province: str | None = None,
    grid_region: str | None = None,
    factor_lag_years: int = 2,
    vintage_years: int = 1,
    steam_gj_per_t: float = 2.8,
    gwp_basis: str = "AR6",
    pv_meters: tuple[str, ...] = (),
) -> None:
    """Set a site's factor regions (most specific first, ``CN`` appended), lag, certificate vintage window, steam
    conversion, GWP report and on-site generation meters (audited)."""
    s = site_ref(conn=conn, code=site)
    execute(
        conn,
        """INSERT INTO carbon_site_setting (site_id, province, grid_region, factor_lag_years, vintage_years,
                         steam_gj_per_t, gwp_basis, pv_meters) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                     ON CONFLICT (site_id) DO UPDATE SET province = EXCLUDED.province,
                         grid_region = EXCLUDED.grid_region, factor_lag_years = EXCLUDED.factor_lag_years,
                         vintage_years = EXCLUDED.vintage_years, steam_gj_per_t = EXCLUDED.steam_gj_per_t,
                         gwp_basis = EXCLUDED.gwp_basis, pv_meters = EXCLUDED.pv_meters, updated_at = now()""",
        (s.id, province, grid_region, factor_lag_years, vintage_years, steam_gj_per_t, gwp_basis, list(pv_meters)),
    )
    audit.append(
        conn,
        actor=actor,
        action="carbon.site",
        target=site,
        site=site,
        detail={
            "province": province,
            "grid_region": grid_region,
            "factor_lag_years": factor_lag_years,
            "vintage_years": vintage_years,
            "steam_gj_per_t": steam_gj_per_t,
            "gwp_basis": gwp_basis,
            "pv_meters": list(pv_meters),
        },
    )


def pv_meters(*, conn: psycopg.Connection, site_id: int) -> list[str]:
    row = execute(conn, "SELECT pv_meters FROM carbon_site_setting WHERE site_id = %s", (site_id,)).fetchone()
    return list(row[0]) if row else []


def site_settings(*, conn: psycopg.Connection, site_id: int) -> L.Settings:
    row = execute(
        conn,
        "SELECT province, grid_region, factor_lag_years, vintage_years, steam_gj_per_t, gwp_basis "
        "FROM carbon_site_setting WHERE site_id = %s",
        (site_id,),
    ).fetchone()
    if row is None:
        return L.Settings()
    regions = tuple(r for r in (row[0], row[1]) if r) + ("CN",)
    return L.Settings(regions, row[2], row[3], row[4], row[5])


def add_entry(
    *,
    conn: psycopg.Connection,
    site: str,
    month: date,
    kind: str,
    code: str,
    quantity: float,
    unit: str,
    actor: str,
    area: str | None = None,
    co2e_kg: float | None = None,
    note: str = "",
    corrects: int | None = None,
) -> int:
    """Record a fuel not metered, a process emission or a leak for a month (append-only; corrections name the
    entry they replace)."""
    s = site_ref(conn=conn, code=site)
    if kind not in ("fuel", "process", "fugitive"):
        raise CarbonError(f"unknown entry kind {kind!r}", 422)
    if kind == "process" and co2e_kg is None:
        raise CarbonError("a process emission needs co2e_kg", 422)
    if (
        corrects is not None
        and execute(conn, "SELECT 1 FROM carbon_entry WHERE id = %s AND site_id = %s", (corrects, s.id)).fetchone()
        is None
    ):
        raise CarbonError(f"no entry {corrects} at this site", 422)
    _refuse_closed(conn, s, month)
    entry_id = execute(
        conn,
        """INSERT INTO carbon_entry (site_id, area, period_start, kind, code, quantity, unit,
                                    co2e_kg, note, corrects, entered_by)
                                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (s.id, area, month.replace(day=1), kind, code, quantity, unit, co2e_kg, note, corrects, actor),
    ).fetchone()[0]
    audit.append(
        conn,
        actor=actor,
        action="carbon.entry",
        target=str(entry_id),
        site=site,
        area=area,
        detail={"kind": kind, "code": code, "quantity": quantity, "unit": unit, "corrects": corrects},
    )
    return entry_id


def _refuse_closed(conn: psycopg.Connection, s: SiteRef, month: date) -> None:
    closed = execute(
        conn,
        "SELECT period FROM carbon_period WHERE site_id = %s AND period IN (%s, %s) LIMIT 1",
        (s.id, f"{month.year:04d}-{month.month:02d}", f"{month.year:04d}"),
    ).fetchone()
    if closed:
        raise CarbonError(f"period {closed[0]} is closed: recalculate it after the change, explicitly")


def _entry_rows(conn: psycopg.Connection, site_id: int, start: datetime, end: datetime, zone: ZoneInfo) -> list:
    first = start.astimezone(zone).date().replace(day=1)
    return execute(
        conn,
        """SELECT id, coalesce(area, ''), kind, code, quantity, unit, co2e_kg, period_start
                            FROM carbon_entry e
                            WHERE site_id = %s AND period_start >= %s AND period_start < %s
                              AND NOT EXISTS (SELECT 1 FROM carbon_entry c WHERE c.corrects = e.id)
                            ORDER BY id""",
        (site_id, first, end.astimezone(zone).date() + timedelta(days=1)),
    ).fetchall()


def _prorate_entries(rows: list, start: datetime, end: datetime, zone: ZoneInfo) -> list[L.Entry]:
    out = []
    for r in rows:
        ms = datetime.combine(r[7], datetime.min.time(), zone)
        me = datetime(ms.year + (ms.month == 12), ms.month % 12 + 1, 1, tzinfo=zone)
        share = max((min(me, end) - max(ms, start)).total_seconds(), 0.0) / (me - ms).total_seconds()
        if share > 0:
            out.append(L.Entry(r[1], r[2], r[3], r[4] * share, r[5], None if r[6] is None else r[6] * share, r[0]))
    return out


def entries(*, conn: psycopg.Connection, site_id: int, start: datetime, end: datetime, tz: str) -> list[L.Entry]:
    """The entries of months overlapping ``[start, end)`` that no later entry corrects, each scaled by the share
    of its month inside the window (a whole month or year counts whole)."""
    zone = ZoneInfo(tz)
    return _prorate_entries(_entry_rows(conn, site_id, start, end, zone), start, end, zone)


# --- instruments and offsets: serial ranges claimed once ----------------------------------------------------


def _overlapping(conn: psycopg.Connection, table: str, scheme: str, prefix: str, first: int, last: int) -> Any:
    return execute(
        conn,
        f"SELECT id, serial_first, serial_last FROM {table} WHERE scheme = %s AND "
        "serial_prefix = %s AND serial_first <= %s AND serial_last >= %s LIMIT 1",
        (scheme, prefix, last, first),
    ).fetchone()


def add_certificates(
    *,
    conn: psycopg.Connection,
    site: str,
    scheme: str,
    serial_prefix: str,
    serial_first: int,
    serial_last: int,
    vintage_year: int,
    period_start: date,
    period_end: date,
    reference: str,
    actor: str,
    mwh_each: float = 1.0,
) -> int:
    """Claim a block of green certificates (绿证: one per MWh) for a consumption period. A serial already
    claimed by any site, in any period, is refused (Scope 2 Quality Criteria: no double counting)."""
    s = site_ref(conn=conn, code=site)
    if serial_last < serial_first:
        raise CarbonError("the last serial is below the first", 422)
    execute(conn, "SELECT pg_advisory_xact_lock(%s)", (_SERIAL_LOCK,))
    clash = _overlapping(conn, "carbon_instrument", scheme, serial_prefix, serial_first, serial_last)
    if clash:
        raise CarbonError(
            f"serials {serial_prefix}{max(serial_first, clash[1])}.."
            f"{serial_prefix}{min(serial_last, clash[2])} are claimed already (instrument {clash[0]})"
        )
    count = serial_last - serial_first + 1
    iid = execute(
        conn,
        """INSERT INTO carbon_instrument (site_id, kind, scheme, serial_prefix, serial_first,
                               serial_last, mwh, vintage_year, period_start, period_end, reference, created_by)
                           VALUES (%s, 'certificate', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            s.id,
            scheme,
            serial_prefix,
            serial_first,
            serial_last,
            count * mwh_each,
            vintage_year,
            period_start,
            period_end,
            reference,
            actor,
        ),
    ).fetchone()[0]
    audit.append(
        conn,
        actor=actor,
        action="carbon.certificate",
        target=str(iid),
        site=site,
        detail={
            "scheme": scheme,
            "serials": f"{serial_prefix}{serial_first}..{serial_prefix}{serial_last}",
            "mwh": count * mwh_each,
            "vintage": vintage_year,
        },
    )
    return iid


def add_contract(
    *,
    conn: psycopg.Connection,
    site: str,
    scheme: str,
    mwh: float,
    vintage_year: int,
    period_start: date,
    period_end: date,
    reference: str,
    actor: str,
) -> int:
    """A green-power contract (绿电交易, PPA) delivering ``mwh`` with its attributes over a period."""
    s = site_ref(conn=conn, code=site)
    if execute(
        conn,
        "SELECT 1 FROM carbon_instrument WHERE kind = 'contract' AND scheme = %s AND reference = %s",
        (scheme, reference),
    ).fetchone():
        raise CarbonError(f"contract {reference} is recorded already")
    iid = execute(
        conn,
        """INSERT INTO carbon_instrument (site_id, kind, scheme, mwh, vintage_year, period_start,
                               period_end, reference, created_by)
                           VALUES (%s, 'contract', %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (s.id, scheme, mwh, vintage_year, period_start, period_end, reference, actor),
    ).fetchone()[0]
    audit.append(
        conn,
        actor=actor,
        action="carbon.contract",
        target=str(iid),
        site=site,
        detail={"scheme": scheme, "mwh": mwh, "reference": reference},
    )
    return iid


def _instrument_rows(
    conn: psycopg.Connection, site_id: int, start: datetime, end: datetime, zone: ZoneInfo
) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT * FROM carbon_instrument WHERE site_id = %s AND period_start < %s AND period_end > %s ORDER BY id",
            (
                site_id,
                end.astimezone(zone).date() + timedelta(days=1),
                start.astimezone(zone).date() - timedelta(days=1),
            ),
        )
        .fetchall()
    )


def _prorate_instruments(
    rows: list[dict[str, Any]], start: datetime, end: datetime, zone: ZoneInfo
) -> list[L.Instrument]:
    out = []
    for r in rows:
        ps = datetime.combine(r["period_start"], datetime.min.time(), zone)
        pe = datetime.combine(r["period_end"], datetime.min.time(), zone)
        overlap = (min(pe, end) - max(ps, start)).total_seconds()
        if overlap <= 0:
            continue
        share = overlap / (pe - ps).total_seconds()
        serials = (
            f"{r['scheme']}:{r['serial_prefix']}{r['serial_first']}..{r['serial_prefix']}{r['serial_last']}"
            if r["serial_first"] is not None
            else ""
        )
        out.append(
            L.Instrument(r["id"], r["kind"], r["scheme"], r["reference"], r["mwh"] * share, r["vintage_year"], serials)
        )
    return out


def instruments(
    *, conn: psycopg.Connection, site_id: int, start: datetime, end: datetime, tz: str
) -> list[L.Instrument]:
    """Instruments whose claimed period overlaps ``[start, end)``, with their MWh pro rata to the overlap."""
    zone = ZoneInfo(tz)
    return _prorate_instruments(_instrument_rows(conn, site_id, start, end, zone), start, end, zone)


def add_offset(
    *,
    conn: psycopg.Connection,
    site: str,
    scheme: str,
    project: str,
    serial_prefix: str,
    serial_first: int,
    serial_last: int,
    tco2e: float,
    vintage_year: int,
    retired_on: date,
    retirement_ref: str,
    claim_year: int,
    actor: str,
) -> int:
    """Record retired credits (CCER etc.) claimed for a year; reported beside gross emissions, never netted."""
    s = site_ref(conn=conn, code=site)
    if serial_last < serial_first:
        raise CarbonError("the last serial is below the first", 422)
    execute(conn, "SELECT pg_advisory_xact_lock(%s)", (_SERIAL_LOCK,))
    clash = _overlapping(conn, "carbon_offset", scheme, serial_prefix, serial_first, serial_last)
    if clash:
        raise CarbonError(
            f"credits {serial_prefix}{max(serial_first, clash[1])}.."
            f"{serial_prefix}{min(serial_last, clash[2])} are retired already (offset {clash[0]})"
        )
    oid = execute(
        conn,
        """INSERT INTO carbon_offset (site_id, scheme, project, serial_prefix, serial_first,
                               serial_last, tco2e, vintage_year, retired_on, retirement_ref, claim_year, created_by)
                           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            s.id,
            scheme,
            project,
            serial_prefix,
            serial_first,
            serial_last,
            tco2e,
            vintage_year,
            retired_on,
            retirement_ref,
            claim_year,
            actor,
        ),
    ).fetchone()[0]
    audit.append(
        conn,
        actor=actor,
        action="carbon.offset",
        target=str(oid),
        site=site,
        detail={"scheme": scheme, "tco2e": tco2e, "retirement_ref": retirement_ref},
    )
    return oid


def offsets(*, conn: psycopg.Connection, site_id: int, year: int) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT id, scheme, project, serial_prefix, serial_first, serial_last, tco2e, vintage_year, retired_on, "
            "retirement_ref, claim_year FROM carbon_offset WHERE site_id = %s AND claim_year = %s ORDER BY id",
            (site_id, year),
        )
        .fetchall()
    )


# --- reduction projects -------------------------------------------------------------------------------------


def add_project(
    *,
    conn: psycopg.Connection,
    site: str,
    code: str,
    name: str,
    baseline_tco2e_per_year: float,
    started_on: date,
    actor: str,
    area: str | None = None,
    baseline_meter: str | None = None,
    baseline_granularity: str = "monthly",
) -> int:
    """A reduction project; with ``baseline_meter`` its savings come from that electricity meter's current energy
    baseline at ``baseline_granularity`` (see ``baseline_savings``), which must exist when the project is added."""
    s = site_ref(conn=conn, code=site)
    if baseline_meter is not None:
        _meter_baseline(conn, s, baseline_meter, baseline_granularity)
    try:
        with conn.transaction():
            pid = execute(
                conn,
                "INSERT INTO carbon_project (site_id, code, name, area, baseline_tco2e_per_year, "
                "started_on, created_by, baseline_meter, baseline_granularity) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    s.id,
                    code,
                    name,
                    area,
                    baseline_tco2e_per_year,
                    started_on,
                    actor,
                    baseline_meter,
                    baseline_granularity if baseline_meter is not None else None,
                ),
            ).fetchone()[0]
    except psycopg.errors.UniqueViolation:
        raise CarbonError(f"project {code!r} exists already") from None
    audit.append(
        conn,
        actor=actor,
        action="carbon.project",
        target=code,
        site=site,
        area=area,
        detail={"baseline_tco2e_per_year": baseline_tco2e_per_year, "baseline_meter": baseline_meter},
    )
    return pid


def _meter_baseline(conn: psycopg.Connection, s: SiteRef, meter: str, granularity: str):
    """The current baseline of an electricity meter (kWh) at ``granularity``; refused otherwise."""
    from energy import baseline_store

    row = execute(
        conn,
        "SELECT medium FROM meter WHERE site_id = %s AND code = %s AND retired_at IS NULL",
        (s.id, meter),
    ).fetchone()
    if row is None:
        raise CarbonError(f"no meter {meter!r}", 404)
    if row[0] != "electricity":
        raise CarbonError(f"meter {meter!r} measures {row[0]}: a project's baseline meter measures electricity", 422)
    try:
        stored = baseline_store.current_baseline(conn=conn, site=s.code, granularity=granularity, meter=meter)
    except ValueError as exc:
        raise CarbonError(str(exc), 422) from None
    if stored is None:
        raise CarbonError(f"meter {meter!r} has no current {granularity} energy baseline: set one first", 409)
    return stored


def baseline_savings(
    *,
    conn: psycopg.Connection,
    site: str,
    project: str,
    period: str,
    energy: Any,
    variables: Any,
    record: bool = False,
    actor: str = "",
) -> dict[str, Any]:
    """A project's savings in a month (``YYYY-MM``) from its meter's energy baseline: the ISO 50006 normalised
    savings (the baseline at the month's relevant variables minus the metered kWh, over the baseline periods
    ``energy`` and ``variables`` hold inside the month), times the month's location-based grid factor. With
    ``record`` the result is stored as the project's saving for the month (method names the baseline)."""
    import pandas as pd

    from energy.baseline import normalised_savings

    if len(period) != 7:
        raise CarbonError("a project's savings are computed per month (YYYY-MM)", 422)
    s = site_ref(conn=conn, code=site)
    start, end, year = period_bounds(period, s.timezone)
    row = execute(
        conn,
        "SELECT baseline_meter, baseline_granularity FROM carbon_project WHERE site_id = %s AND code = %s",
        (s.id, project),
    ).fetchone()
    if row is None:
        raise CarbonError(f"no project {project!r}", 404)
    if row[0] is None:
        raise CarbonError(f"project {project!r} names no baseline meter", 409)
    stored = _meter_baseline(conn, s, row[0], row[1])
    energy = pd.Series(energy, dtype=float)
    variables = pd.DataFrame(variables)
    for frame in (energy, variables):
        frame.index = pd.DatetimeIndex(frame.index)
        if frame.index.tz is None:
            raise CarbonError("period starts must carry a time zone", 422)
    inside = (energy.index >= start) & (energy.index < end)
    energy = energy[inside]
    variables = variables[(variables.index >= start) & (variables.index < end)]
    try:
        sv = normalised_savings(stored.model, energy, variables)
    except ValueError as exc:
        raise CarbonError(str(exc), 422) from None
    st = site_settings(conn=conn, site_id=s.id)
    try:
        f = grid_factor(library(conn=conn).factors, year=year, regions=st.regions, lag_years=st.lag_years)
    except NoFactor as exc:
        raise CarbonError(str(exc), 422) from None
    tco2e = sv.savings * f.value / 1000.0
    result = {
        "project": project,
        "period": period,
        "meter": row[0],
        "baseline_id": stored.id,
        "granularity": row[1],
        "periods": int(len(energy)),
        "expected_kwh": sv.expected,
        "actual_kwh": sv.actual,
        "saved_kwh": sv.savings,
        "improvement": sv.improvement,
        "factor_key": f.row_key,
        "factor_kg_per_kwh": f.value,
        "tco2e": tco2e,
    }
    if record:
        record_saving(
            conn=conn,
            site=site,
            project=project,
            month=start.astimezone(ZoneInfo(s.timezone)).date(),
            tco2e=tco2e,
            method=f"energy baseline {stored.id} of meter {row[0]} x {f.row_key}",
            actor=actor,
        )
    return result


def record_saving(
    *, conn: psycopg.Connection, site: str, project: str, month: date, tco2e: float, method: str, actor: str
) -> None:
    s = site_ref(conn=conn, code=site)
    row = execute(conn, "SELECT id FROM carbon_project WHERE site_id = %s AND code = %s", (s.id, project)).fetchone()
    if row is None:
        raise CarbonError(f"no project {project!r}", 404)
    execute(
        conn,
        """INSERT INTO carbon_project_saving (project_id, period_start, tco2e, method, recorded_by)
                     VALUES (%s, %s, %s, %s, %s) ON CONFLICT (project_id, period_start) DO UPDATE
                     SET tco2e = EXCLUDED.tco2e, method = EXCLUDED.method, recorded_by = EXCLUDED.recorded_by,
                         recorded_at = now()""",
        (row[0], month.replace(day=1), tco2e, method, actor),
    )
    audit.append(
        conn,
        actor=actor,
        action="carbon.project.saving",
        target=project,
        site=site,
        detail={"month": month.replace(day=1).isoformat(), "tco2e": tco2e, "method": method},
    )


def projects(*, conn: psycopg.Connection, site_id: int) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT p.code, p.name, p.area, p.baseline_tco2e_per_year, p.started_on,
                  coalesce(sum(s.tco2e), 0) AS saved_tco2e, count(s.*) AS months
           FROM carbon_project p LEFT JOIN carbon_project_saving s ON s.project_id = p.id
           WHERE p.site_id = %s GROUP BY p.id ORDER BY p.code""",
            (site_id,),
        )
        .fetchall()
    )


# --- the ledger of a period: computed while open, frozen once closed ---------------------------------------


@dataclass
class Context:
    """What the windows inside ``[lo, hi)`` need from the database, read once (a year of batch footprints)."""

    s: SiteRef
    lib: FactorLibrary
    settings: L.Settings
    routing: Routing | None
    entry_rows: list
    instrument_rows: list[dict[str, Any]]
    batch_rows: list

    @classmethod
    def load(
        cls, conn: psycopg.Connection, s: SiteRef, lo: datetime, hi: datetime, lib: FactorLibrary | None = None
    ) -> Context:
        zone = ZoneInfo(s.timezone)
        return cls(
            s,
            lib or library(conn=conn),
            site_settings(conn=conn, site_id=s.id),
            get_routing(conn=conn, site_id=s.id),
            _entry_rows(conn, s.id, lo, hi, zone),
            _instrument_rows(conn, s.id, lo, hi, zone),
            _batch_rows(conn, s.id, lo, hi),
        )


def compute_window(
    *,
    conn: psycopg.Connection,
    s: SiteRef,
    start: datetime,
    end: datetime,
    year: int,
    label: str,
    source: ActivitySource,
    lib: FactorLibrary | None = None,
    bucket: str = "month",
    ctx: Context | None = None,
) -> L.Inventory:
    ctx = ctx or Context.load(conn, s, start, end, lib)
    zone = ZoneInfo(s.timezone)
    acts = source(conn, site=s.code, start=start, end=end, bucket=bucket, by="area") + source(
        conn, site=s.code, start=start, end=end, bucket=bucket, by="site"
    )
    try:
        return L.compute(
            period=label,
            year=year,
            factors=ctx.lib.factors,
            factor_version=ctx.lib.version,
            activities=acts,
            entries=_prorate_entries(ctx.entry_rows, start, end, zone),
            instruments=_prorate_instruments(ctx.instrument_rows, start, end, zone),
            settings=ctx.settings,
        )
    except (L.LedgerInputError, NoFactor) as exc:
        raise CarbonError(str(exc), 422) from None


def compute_period(
    *, conn: psycopg.Connection, site: str, period: str, source: ActivitySource, lib: FactorLibrary | None = None
) -> dict[str, Any]:
    """The period's ledger with the active (or given) factors, plus intensity per process and offsets beside."""
    s = site_ref(conn=conn, code=site)
    start, end, year = period_bounds(period, s.timezone)
    inv = compute_window(
        conn=conn,
        s=s,
        start=start,
        end=end,
        year=year,
        label=period,
        source=source,
        lib=lib,
        bucket="month" if len(period) == 7 else "year",
    )
    result = inv.as_dict()
    routing = get_routing(conn=conn, site_id=s.id)
    if routing is not None:
        output = batch_output(conn=conn, site_id=s.id, start=start, end=end)
        area_kg = {a["area"] or "": a["scope1_kg"] + a["scope2_location_kg"] for a in result["by_area"]}
        per_process = process_emissions(routing, area_kg)
        result["by_process"] = [
            {
                "process": p.code,
                "name": p.name,
                "area": p.area,
                "co2e_kg": per_process[p.code],
                "output": output.get(p.code),
                "unit": p.unit,
                "kg_per_unit": per_process[p.code] / output[p.code] if output.get(p.code) else None,
            }
            for p in routing.processes
        ]
    offs = offsets(conn=conn, site_id=s.id, year=year) if len(period) == 4 else []
    result["offsets"] = {
        "tco2e": sum(o["tco2e"] for o in offs),
        "credits": offs,
        "note": "reported beside gross emissions, never subtracted",
    }
    result["site"] = site
    result["start"], result["end"] = start.isoformat(), end.isoformat()
    return _jsonable(result)


def _jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))


def closed(*, conn: psycopg.Connection, site_id: int, period: str) -> dict[str, Any] | None:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT revision, factor_version, result, reason, closed_by, closed_at FROM carbon_period "
            "WHERE site_id = %s AND period = %s ORDER BY revision DESC LIMIT 1",
            (site_id, period),
        )
        .fetchone()
    )


def ledger(*, conn: psycopg.Connection, site: str, period: str, source: ActivitySource) -> dict[str, Any]:
    """The period's ledger: the frozen result of its last revision when closed, else computed now."""
    s = site_ref(conn=conn, code=site)
    period_bounds(period, s.timezone)
    row = closed(conn=conn, site_id=s.id, period=period)
    if row is not None:
        return {
            **row["result"],
            "closed": True,
            "revision": row["revision"],
            "closed_by": row["closed_by"],
            "closed_at": row["closed_at"].isoformat(),
        }
    return {**compute_period(conn=conn, site=site, period=period, source=source), "closed": False}


def close_period(
    *, conn: psycopg.Connection, site: str, period: str, source: ActivitySource, actor: str
) -> dict[str, Any]:
    """Freeze the period's ledger with the active factors (revision 1); refused when it is closed already."""
    s = site_ref(conn=conn, code=site)
    execute(conn, "SELECT pg_advisory_xact_lock(%s, %s)", (_SERIAL_LOCK, s.id))
    if closed(conn=conn, site_id=s.id, period=period) is not None:
        raise CarbonError(f"period {period} is closed already; recalculate it to change it")
    result = compute_period(conn=conn, site=site, period=period, source=source)
    _store(conn, s, period, 1, result, "closed", actor)
    audit.append(
        conn,
        actor=actor,
        action="carbon.period.close",
        target=period,
        site=site,
        detail={"factor_version": result["factor_version"], "totals": result["totals"]},
    )
    return {**result, "closed": True, "revision": 1}


def recalculate(
    *, conn: psycopg.Connection, site: str, period: str, source: ActivitySource, actor: str, reason: str
) -> dict[str, Any]:
    """Recompute a closed period with the active factors and today's data as its next revision; the earlier
    revisions stay, and the audit record names both results and the reason."""
    if not reason.strip():
        raise CarbonError("a recalculation needs a reason", 422)
    s = site_ref(conn=conn, code=site)
    execute(conn, "SELECT pg_advisory_xact_lock(%s, %s)", (_SERIAL_LOCK, s.id))
    before = closed(conn=conn, site_id=s.id, period=period)
    if before is None:
        raise CarbonError(f"period {period} is not closed; close it first", 409)
    result = compute_period(conn=conn, site=site, period=period, source=source)
    revision = before["revision"] + 1
    _store(conn, s, period, revision, result, reason, actor)
    audit.append(
        conn,
        actor=actor,
        action="carbon.period.recalculate",
        target=period,
        site=site,
        detail={
            "revision": revision,
            "reason": reason,
            "factor_version_before": before["factor_version"],
            "factor_version": result["factor_version"],
            "totals_before": before["result"]["totals"],
            "totals": result["totals"],
        },
    )
    return {**result, "closed": True, "revision": revision}


def _store(
    conn: psycopg.Connection, s: SiteRef, period: str, revision: int, result: dict[str, Any], reason: str, actor: str
) -> None:
    execute(
        conn,
        "INSERT INTO carbon_period (site_id, period, revision, factor_version, result, reason, closed_by) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (s.id, period, revision, result["factor_version"], orjson.dumps(result).decode(), reason, actor),
    )


def revisions(*, conn: psycopg.Connection, site_id: int, period: str) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT revision, factor_version, reason, closed_by, closed_at, result->'totals' AS totals "
            "FROM carbon_period WHERE site_id = %s AND period = %s ORDER BY revision",
            (site_id, period),
        )
        .fetchall()
    )


def hourly(
    *, conn: psycopg.Connection, site: str, start: datetime, end: datetime, source: ActivitySource
) -> list[dict[str, Any]]:
    """gCO2/kWh of the electricity used each hour: grid import (the site meter) at the location-based factor
    mixed with on-site generation (the site's ``pv_meters``, read per meter)."""
    s = site_ref(conn=conn, code=site)
    lib = library(conn=conn)
    st = site_settings(conn=conn, site_id=s.id)
    local_year = start.astimezone(ZoneInfo(s.timezone)).year
    try:
        f = grid_factor(lib.factors, year=local_year, regions=st.regions, lag_years=st.lag_years)
    except NoFactor as exc:
        raise CarbonError(str(exc), 422) from None
    grid: dict[datetime, float] = {}
    for a in source(conn, site=site, start=start, end=end, bucket="hour", by="site"):
        if a.medium == "electricity":
            grid[a.bucket_start] = grid.get(a.bucket_start, 0.0) + a.quantity * L._ELECTRICITY_KWH.get(a.unit, 1.0)
    pv: dict[datetime, float] = {}
    meters = set(pv_meters(conn=conn, site_id=s.id))
    for a in source(conn, site=site, start=start, end=end, bucket="hour", by="meter") if meters else []:
        if a.key in meters and a.medium == "electricity":
            pv[a.bucket_start] = pv.get(a.bucket_start, 0.0) + a.quantity * L._ELECTRICITY_KWH.get(a.unit, 1.0)
    rows = L.hourly_intensity(grid_kwh=grid, onsite_kwh=pv, grid_factor_kg_per_kwh=f.value)
    return [{**r, "hour": r["hour"].isoformat(), "factor_key": f.row_key, "factor_version": lib.version} for r in rows]


# --- routing, batches, footprints ---------------------------------------------------------------------------


def set_routing(*, conn: psycopg.Connection, site: str, routing: Routing, actor: str) -> None:
    s = site_ref(conn=conn, code=site)
    spec = routing.model_dump(mode="json", by_alias=True)
    execute(
        conn,
        """INSERT INTO carbon_routing (site_id, spec, updated_by) VALUES (%s, %s, %s)
                     ON CONFLICT (site_id) DO UPDATE SET spec = EXCLUDED.spec, updated_by = EXCLUDED.updated_by,
                         updated_at = now()""",
        (s.id, orjson.dumps(spec).decode(), actor),
    )
    audit.append(
        conn,
        actor=actor,
        action="carbon.routing",
        target=site,
        site=site,
        detail={"processes": len(routing.processes), "product": routing.product.name},
    )


def get_routing(*, conn: psycopg.Connection, site_id: int) -> Routing | None:
    row = execute(conn, "SELECT spec FROM carbon_routing WHERE site_id = %s", (site_id,)).fetchone()
    return Routing.model_validate(row[0]) if row else None


def add_batch(
    *,
    conn: psycopg.Connection,
    site: str,
    code: str,
    product: str,
    started_at: datetime,
    ended_at: datetime,
    output: dict[str, float],
    actor: str,
) -> int:
    s = site_ref(conn=conn, code=site)
    routing = get_routing(conn=conn, site_id=s.id)
    if routing is None:
        raise CarbonError("the site has no routing: set it first", 409)
    unknown = set(output) - set(routing.by_code())
    if unknown:
        raise CarbonError(f"output names processes not in the routing: {', '.join(sorted(unknown))}", 422)
    if ended_at <= started_at:
        raise CarbonError("a batch must end after it starts", 422)
    try:
        with conn.transaction():
            bid = execute(
                conn,
                "INSERT INTO carbon_batch (site_id, code, product, started_at, ended_at, output, "
                "created_by) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (s.id, code, product, started_at, ended_at, orjson.dumps(output).decode(), actor),
            ).fetchone()[0]
    except psycopg.errors.UniqueViolation:
        raise CarbonError(f"batch {code!r} exists already") from None
    audit.append(conn, actor=actor, action="carbon.batch", target=code, site=site, detail={"output": output})
    return bid


def _batch_rows(conn: psycopg.Connection, site_id: int, start: datetime, end: datetime) -> list:
    return execute(
        conn,
        "SELECT started_at, ended_at, output, code, product FROM carbon_batch WHERE site_id = %s "
        "AND started_at < %s AND ended_at > %s ORDER BY started_at, code",
        (site_id, end, start),
    ).fetchall()


def _output(rows: list, start: datetime, end: datetime) -> dict[str, float]:
    out: dict[str, float] = {}
    for b_start, b_end, output, *_ in rows:
        if b_start >= end or b_end <= start:
            continue
        share = (min(b_end, end) - max(b_start, start)) / (b_end - b_start)
        for proc, units in output.items():
            out[proc] = out.get(proc, 0.0) + float(units) * share
    return out


def batch_output(*, conn: psycopg.Connection, site_id: int, start: datetime, end: datetime) -> dict[str, float]:
    """Good output per process in ``[start, end)``: every batch's output pro rata to its time inside the window."""
    return _output(_batch_rows(conn, site_id, start, end), start, end)


def batch_footprint(
    *, conn: psycopg.Connection, site: str, batch: str, source: ActivitySource, basis: str = "location"
) -> dict[str, Any]:
    """The footprint of one batch: the emissions and good output of every process during the batch's window."""
    s = site_ref(conn=conn, code=site)
    row = execute(
        conn,
        "SELECT code, product, started_at, ended_at, output FROM carbon_batch WHERE site_id = %s AND code = %s",
        (s.id, batch),
    ).fetchone()
    if row is None:
        raise CarbonError(f"no batch {batch!r}", 404)
    result = window_footprint(
        conn=conn, s=s, start=row[2], end=row[3], source=source, basis=basis, label=f"batch {batch}"
    )
    return {
        **result,
        "batch": row[0],
        "batch_product": row[1],
        "started_at": row[2].isoformat(),
        "ended_at": row[3].isoformat(),
        "batch_output": row[4],
    }


def window_footprint(
    *,
    conn: psycopg.Connection,
    s: SiteRef,
    start: datetime,
    end: datetime,
    source: ActivitySource,
    basis: str,
    label: str,
    lib: FactorLibrary | None = None,
    ctx: Context | None = None,
) -> dict[str, Any]:
    """The footprint of the product made in ``[start, end)``: each process's emissions and good output there."""
    if basis not in ("location", "market"):
        raise CarbonError("basis must be location or market", 422)
    ctx = ctx or Context.load(conn, s, start, end, lib)
    if ctx.routing is None:
        raise CarbonError("the site has no routing", 409)
    year = start.astimezone(ZoneInfo(s.timezone)).year
    inv = compute_window(
        conn=conn, s=s, start=start, end=end, year=year, label=label, source=source, bucket="hour", ctx=ctx
    )
    key = "scope2_location_kg" if basis == "location" else "scope2_market_kg"
    area_kg = {a["area"] or "": a["scope1_kg"] + a[key] for a in inv.by_area()}
    try:
        fp = footprint(ctx.routing, process_emissions(ctx.routing, area_kg), _output(ctx.batch_rows, start, end))
    except ValueError as exc:
        raise CarbonError(str(exc), 422) from None
    return {
        "site": s.code,
        "basis": basis,
        "factor_version": inv.factor_version,
        "declared_unit": "kgCO2e/kWh",
        "system_boundary": "cradle-to-gate: raw material acquisition and main product production "
        "((EU) 2023/1542 Annex II 4); distribution and end of life not included",
        "unallocated_kg": area_kg.get("", 0.0),
        **fp.as_dict(),
    }


def batch_footprints(
    *,
    conn: psycopg.Connection,
    site: str,
    start: datetime,
    end: datetime,
    source: ActivitySource,
    basis: str = "location",
) -> list[dict[str, Any]]:
    """The footprint of every batch that starts in ``[start, end)``, reading the database once."""
    s = site_ref(conn=conn, code=site)
    rows = _batch_rows(conn, s.id, start, end)
    if not rows:
        return []
    ctx = Context.load(conn, s, min(r[0] for r in rows), max(r[1] for r in rows))
    out = []
    for b_start, b_end, output, code, product in rows:
        if b_start < start:
            continue
        fp = window_footprint(
            conn=conn, s=s, start=b_start, end=b_end, source=source, basis=basis, label=f"batch {code}", ctx=ctx
        )
        out.append(
            {
                **fp,
                "batch": code,
                "batch_product": product,
                "started_at": b_start.isoformat(),
                "ended_at": b_end.isoformat(),
                "batch_output": output,
            }
        )
    return out


# --- the phone's and the control room's summary ---------------------------------------------------------------


def _scopes(by_area: list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "area": a["area"],
            "name": names.get(a["area"] or "", a["area"]),
            "scope1_kg": a["scope1_kg"],
            "scope2_location_kg": a["scope2_location_kg"],
            "scope2_market_kg": a["scope2_market_kg"],
            "electricity_kwh": a.get("electricity_kwh", 0.0),
            "output": a.get("output"),
            "kg_per_unit_location": a.get("kg_per_unit_location"),
            "kg_per_unit_market": a.get("kg_per_unit_market"),
        }
        for a in by_area
    ]


def summary(*, conn: psycopg.Connection, site: str, now: datetime, source: ActivitySource) -> dict[str, Any]:
    """This month's ledger per process (scope 1, scope 2 location- and market-based, intensity per unit of
    output), today's emissions per process and today's hourly gCO2/kWh, in the site's calendar."""
    s = site_ref(conn=conn, code=site)
    zone = ZoneInfo(s.timezone)
    local = now.astimezone(zone)
    day_start = datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)
    day_end = (datetime(local.year, local.month, local.day, tzinfo=zone) + timedelta(days=1)).astimezone(UTC)
    names = {
        code: name for code, name in execute(conn, "SELECT code, name FROM area WHERE site_id = %s", (s.id,)).fetchall()
    }
    period = f"{local.year:04d}-{local.month:02d}"
    month = ledger(conn=conn, site=site, period=period, source=source)
    today = compute_window(
        conn=conn,
        s=s,
        start=day_start,
        end=day_end,
        year=local.year,
        label=str(local.date()),
        source=source,
        bucket="hour",
    )
    return _jsonable(
        {
            "site": site,
            "month": {
                "period": period,
                "closed": month.get("closed", False),
                "factor_version": month.get("factor_version"),
                "totals": month.get("totals"),
                "by_area": _scopes(month.get("by_area", []), names),
                "by_process": month.get("by_process", []),
            },
            "today": {
                "start": day_start.isoformat(),
                "end": day_end.isoformat(),
                "totals": today.totals(),
                "by_area": _scopes(today.by_area(), names),
            },
            "intensity": hourly(conn=conn, site=site, start=day_start, end=day_end, source=source),
        }
    )


def site_instruments(*, conn: psycopg.Connection, site: str) -> list[dict[str, Any]]:
    """The green-electricity instruments (certificates, contracts) recorded for a site (a code), oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT i.id, i.kind, i.scheme, i.serial_prefix, i.serial_first, i.serial_last, i.mwh, i.vintage_year, "
            "i.period_start, i.period_end, i.reference, i.created_by, i.created_at FROM carbon_instrument i "
            "JOIN site s ON s.id = i.site_id WHERE s.code = %s ORDER BY i.id",
            (site,),
        ).fetchall()
