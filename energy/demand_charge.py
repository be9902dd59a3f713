"""The monthly part of a two-part electricity tariff (基本电费): maximum 15-minute demand x CNY per kW, or contracted
capacity x CNY per kVA, per site-local month, for the site's root electricity meters (the grid connections).

It is a monthly sum, not a per-interval price, so the ledger keeps it apart (``demand_charge``) and adds it only to
month and year buckets of the root meters, the electricity medium and the site.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import psycopg

from core.db import execute
from energy.tariffs import TariffSpec, list_tariffs


@dataclass(frozen=True)
class DemandCharge:
    meter_id: int
    month: date  # first local day
    max_kw: float  # 4 x the largest 15-minute energy of the month (kWh)
    basis: str  # 'demand' or 'capacity'
    cny: float


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def tariff_of_month(tariffs: list[TariffSpec], month: date) -> TariffSpec | None:
    """The tariff in force for ``month``: of those valid on any of its days, the latest ``valid_from`` (the same
    precedence as ``Schedule``)."""
    end = _next_month(month)
    live = [t for t in tariffs if t.valid_from < end and (t.valid_to is None or t.valid_to > month)]
    return max(live, key=lambda t: t.valid_from, default=None)


def charge_of(tariff: TariffSpec | None, max_kw: float) -> tuple[str, float] | None:
    """(basis, CNY) of one month: demand charge when the tariff prices demand, else capacity charge, else None."""
    if tariff is None:
        return None
    if tariff.demand_cny_per_kw is not None:
        return "demand", max_kw * tariff.demand_cny_per_kw
    if tariff.capacity_cny_per_kva is not None and tariff.capacity_kva is not None:
        return "capacity", tariff.capacity_kva * tariff.capacity_cny_per_kva
    return None


def monthly(
    conn: psycopg.Connection, *, site_id: int, timezone: str, start: datetime, end: datetime
) -> list[DemandCharge]:
    """Charges of the root electricity counter meters for the local months starting in [start, end). A capacity
    charge is per connection contract, so it goes to the first root meter (lowest id) only."""
    tariffs = list_tariffs(conn=conn, site_id=site_id, medium="electricity")
    if not tariffs:
        return []
    rows = execute(
        conn,
        """
        SELECT d.meter_id, d.day, d.max_15min FROM energy_month d JOIN meter m ON m.id = d.meter_id
        WHERE m.site_id = %(site)s AND m.medium = 'electricity' AND m.parent_id IS NULL AND m.point_id IS NOT NULL
          AND m.retired_at IS NULL
          AND d.day >= (%(lo)s::timestamptz AT TIME ZONE %(tz)s)::date
          AND d.day < (%(hi)s::timestamptz AT TIME ZONE %(tz)s)::date
        ORDER BY d.meter_id, d.day""",
        {"site": site_id, "lo": start, "hi": end, "tz": timezone},
    ).fetchall()
    first_root = min((r[0] for r in rows), default=None)
    out = []
    for meter_id, month, max_kwh in rows:
        max_kw = 4.0 * float(max_kwh)
        got = charge_of(tariff_of_month(tariffs, month), max_kw)
        if got is None or (got[0] == "capacity" and meter_id != first_root):
            continue
        out.append(DemandCharge(meter_id, month, max_kw, got[0], got[1]))
    return out


def month_start_utc(month: date, timezone: str) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=ZoneInfo(timezone)).astimezone(UTC)
