"""The carbon ledger of a period (pure): scope 1 and scope 2 location- and market-based per area and site, every
line naming the factor row and version it used.

Scope 2 follows the GHG Protocol Scope 2 Guidance (standards.md 5.1): location-based = grid electricity × the
grid-average factor of the site's region; market-based = grid electricity not covered by contractual instruments
(green certificates, green-power contracts: zero emission) × the residual factor (the MEE "excluding market-traded
non-fossil" national factor, the nearest thing to a residual mix in China). Certificates cover the site's grid
electricity as a whole and are shared over the areas in proportion to their electricity. Fuels follow
GB/T 32150 (``carbon.factors.fuel_factor``); steam and heat use their per-GJ factor; leaks are kg × GWP.
Offsets are reported beside the gross figures and never subtracted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from carbon.factors import Factor, NoFactor, grid_factor, lookup

SITE = ""  # the area key of site-level lines that no area meter covers (未分摊)
#: units of the activity quantities that ``carbon`` understands, to GJ (steam) or themselves
_ELECTRICITY_KWH = {"kWh": 1.0, "kwh": 1.0, "MWh": 1000.0, "mwh": 1000.0}
_GAS_NM3 = {"Nm3": 1.0, "m3": 1.0, "nm3": 1.0, "Nm³": 1.0, "m³": 1.0}
_HEAT_GJ = {"GJ": 1.0, "MJ": 0.001}


class LedgerInputError(ValueError):
    """An activity or entry the ledger cannot turn into emissions (unknown unit or code)."""


@dataclass(frozen=True, slots=True)
class Activity:
    """Activity data of one key (area code, or ``SITE`` for the site's own meter) in one bucket."""

    key: str
    medium: str
    bucket_start: datetime
    quantity: float
    unit: str


@dataclass(frozen=True, slots=True)
class Entry:
    """An emission typed in: ``fuel`` (quantity in the fuel's unit), ``fugitive`` (kg of gas), ``process`` (kgCO2e)."""

    area: str
    kind: str
    code: str
    quantity: float
    unit: str
    co2e_kg: float | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Instrument:
    """A green certificate block or green-power contract, with the MWh it claims inside this period."""

    id: int
    kind: str
    scheme: str
    reference: str
    mwh: float
    vintage_year: int
    serials: str = ""


@dataclass(frozen=True, slots=True)
class Settings:
    regions: tuple[str, ...] = ("CN",)  # most specific first; "CN" last
    lag_years: int = 2
    vintage_years: int = 1  # certificates of the year and this many years before count
    steam_gj_per_t: float = 2.8
    gwp_basis: str = "AR6"


@dataclass(slots=True)
class Line:
    area: str
    scope: str  # "1" | "2"
    category: str  # fuel | process | fugitive | electricity | steam | heat
    source: str  # fuel or gas code, medium
    quantity: float
    unit: str
    factor_key: str | None
    factor_value: float | None
    factor_unit: str | None
    co2e_kg: float  # scope 1, or scope 2 location-based
    co2e_market_kg: float | None = None


@dataclass
class Inventory:
    period: str
    year: int
    factor_version: str
    lines: list[Line] = field(default_factory=list)
    instruments: list[dict[str, Any]] = field(default_factory=list)
    factors: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, float]:
        s1 = sum(x.co2e_kg for x in self.lines if x.scope == "1")
        s2l = sum(x.co2e_kg for x in self.lines if x.scope == "2")
        s2m = sum(x.co2e_market_kg or 0.0 for x in self.lines if x.scope == "2")
        return {
            "scope1_kg": s1,
            "scope2_location_kg": s2l,
            "scope2_market_kg": s2m,
            "total_location_kg": s1 + s2l,
            "total_market_kg": s1 + s2m,
        }

    def by_area(self, output: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
        acc: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for x in self.lines:
            a = acc[x.area]
            if x.scope == "1":
                a["scope1_kg"] += x.co2e_kg
            else:
                a["scope2_location_kg"] += x.co2e_kg
                a["scope2_market_kg"] += x.co2e_market_kg or 0.0
                if x.category == "electricity":
                    a["electricity_kwh"] += x.quantity
        out = []
        for area in sorted(acc):
            a = dict(acc[area])
            a.setdefault("scope1_kg", 0.0)
            a.setdefault("scope2_location_kg", 0.0)
            a.setdefault("scope2_market_kg", 0.0)
            units = (output or {}).get(area)
            total = a["scope1_kg"] + a["scope2_location_kg"]
            out.append(
                {
                    "area": area or None,
                    **a,
                    "output": units,
                    "kg_per_unit_location": total / units if units else None,
                    "kg_per_unit_market": (a["scope1_kg"] + a["scope2_market_kg"]) / units if units else None,
                }
            )
        return out

    def as_dict(self, output: Mapping[str, float] | None = None) -> dict[str, Any]:
        return {
            "period": self.period,
            "year": self.year,
            "factor_version": self.factor_version,
            "totals": self.totals(),
            "by_area": self.by_area(output),
            "lines": [asdict(x) for x in self.lines],
            "instruments": self.instruments,
            "factors": self.factors,
            "notes": self.notes,
        }


def _normalised(activities: Iterable[Activity], settings: Settings) -> dict[tuple[str, str], float]:
    """Sum per (key, medium) in carbon's units: electricity kWh, natural gas Nm3, steam GJ."""
    out: dict[tuple[str, str], float] = defaultdict(float)
    for a in activities:
        where = a.key or "the site"
        if a.medium == "electricity":
            if a.unit not in _ELECTRICITY_KWH:
                raise LedgerInputError(f"electricity of {where} in unknown unit {a.unit!r}")
            out[(a.key, a.medium)] += a.quantity * _ELECTRICITY_KWH[a.unit]
        elif a.medium == "natural_gas":
            if a.unit not in _GAS_NM3:
                raise LedgerInputError(f"natural gas of {where} in unknown unit {a.unit!r}")
            out[(a.key, a.medium)] += a.quantity * _GAS_NM3[a.unit]
        elif a.medium == "steam":
            if a.unit == "t":
                out[(a.key, a.medium)] += a.quantity * settings.steam_gj_per_t
            elif a.unit in _HEAT_GJ:
                out[(a.key, a.medium)] += a.quantity * _HEAT_GJ[a.unit]
            else:
                raise LedgerInputError(f"steam of {where} in unknown unit {a.unit!r}")
    return out


def _unallocated(per_key: dict[tuple[str, str], float], notes: list[str]) -> dict[tuple[str, str], float]:
    """Replace each medium's site total (key ``SITE``) by what the area meters do not cover (losses, offices,
    unmetered loads), so that nothing is counted twice."""
    out = {k: v for k, v in per_key.items() if k[0] != SITE}
    for (key, medium), site_total in per_key.items():
        if key != SITE:
            continue
        areas = sum(v for (k, m), v in out.items() if m == medium)
        if site_total > areas:
            out[(SITE, medium)] = site_total - areas
        elif site_total < areas * (1 - 1e-9):
            notes.append(
                f"{medium}: area meters ({areas:.0f}) exceed the site meter ({site_total:.0f}): the areas are used"
            )
    return out


def compute(
    *,
    period: str,
    year: int,
    factors: Sequence[Factor],
    factor_version: str,
    activities: Iterable[Activity],
    entries: Iterable[Entry] = (),
    instruments: Iterable[Instrument] = (),
    settings: Settings = Settings(),
) -> Inventory:
    """The inventory of one period from its activity data (areas and, under ``SITE``, the site meter)."""
    inv = Inventory(period, year, factor_version)

    def use(f: Factor) -> Factor:
        inv.factors[f.row_key] = {
            "value": f.value,
            "unit": f.unit,
            "publication_ref": f.publication_ref,
            "data_year": f.data_year,
            "basis": f.basis,
            "version": factor_version,
        }
        return f

    location = use(grid_factor(factors, year=year, regions=settings.regions, lag_years=settings.lag_years))
    try:
        residual = use(
            grid_factor(
                factors,
                year=year,
                regions=settings.regions,
                basis="excl_market_nonfossil",
                lag_years=settings.lag_years,
            )
        )
    except NoFactor:
        residual = location
        inv.notes.append("no residual factor: market-based uses the grid average")
    per_key = _unallocated(_normalised(activities, settings), inv.notes)
    elec: dict[str, float] = {}
    for (key, medium), qty in sorted(per_key.items()):
        if medium == "electricity":
            elec[key] = qty
        elif medium == "natural_gas":
            f = use(lookup(factors, "fuel:natural_gas"))
            inv.lines.append(
                Line(key, "1", "fuel", "natural_gas", qty, "Nm3", f.row_key, f.value, f"kg/{f.unit}", qty * f.value)
            )
        elif medium == "steam":
            f = use(lookup(factors, "heat:steam"))
            inv.lines.append(
                Line(key, "2", "steam", "steam", qty, "GJ", f.row_key, f.value, "kg/GJ", qty * f.value, qty * f.value)
            )
        # water, compressed air and nitrogen made on site carry their electricity, counted at the meters above
    grid_kwh = sum(elec.values())
    covered_kwh = 0.0
    for ins in instruments:
        eligible = year - settings.vintage_years <= ins.vintage_year <= year
        want = ins.mwh * 1000.0 if eligible else 0.0
        used = min(want, max(grid_kwh - covered_kwh, 0.0))
        covered_kwh += used
        inv.instruments.append(
            {
                "id": ins.id,
                "kind": ins.kind,
                "scheme": ins.scheme,
                "reference": ins.reference,
                "serials": ins.serials,
                "vintage_year": ins.vintage_year,
                "mwh_claimed": ins.mwh,
                "eligible": eligible,
                "mwh_used": used / 1000.0,
            }
        )
    uncovered_share = 1.0 - covered_kwh / grid_kwh if grid_kwh > 0 else 1.0
    for key in sorted(elec):
        kwh = elec[key]
        inv.lines.append(
            Line(
                key,
                "2",
                "electricity",
                "grid",
                kwh,
                "kWh",
                location.row_key,
                location.value,
                "kg/kWh",
                kwh * location.value,
                kwh * uncovered_share * residual.value,
            )
        )
    for e in entries:
        inv.lines.append(_entry_line(e, factors, settings, use))
    return inv


def _entry_line(e: Entry, factors: Sequence[Factor], settings: Settings, use) -> Line:
    if e.kind == "process":
        if e.co2e_kg is None:
            raise LedgerInputError(f"process emission {e.code!r} has no kgCO2e")
        return Line(e.area, "1", "process", e.code, e.quantity, e.unit, None, None, None, e.co2e_kg)
    if e.kind == "fugitive":
        try:
            f = use(lookup(factors, f"gwp:{e.code}:{settings.gwp_basis}"))
        except NoFactor:
            raise LedgerInputError(f"no {settings.gwp_basis} GWP for gas {e.code!r}") from None
        if e.unit != "kg":
            raise LedgerInputError(f"leak of {e.code} must be in kg, not {e.unit!r}")
        return Line(e.area, "1", "fugitive", e.code, e.quantity, "kg", f.row_key, f.value, "GWP", e.quantity * f.value)
    if e.kind == "fuel":
        try:
            f = use(lookup(factors, f"fuel:{e.code}"))
        except NoFactor:
            raise LedgerInputError(f"no fuel factor for {e.code!r}") from None
        if e.unit != f.unit:
            raise LedgerInputError(f"fuel {e.code} is counted in {f.unit}, not {e.unit!r}")
        return Line(
            e.area, "1", "fuel", e.code, e.quantity, f.unit, f.row_key, f.value, f"kg/{f.unit}", e.quantity * f.value
        )
    raise LedgerInputError(f"unknown entry kind {e.kind!r}")


def hourly_intensity(
    *, grid_kwh: Mapping[datetime, float], onsite_kwh: Mapping[datetime, float], grid_factor_kg_per_kwh: float
) -> list[dict[str, Any]]:
    """gCO2 per kWh of the electricity the plant used each hour: grid import at the grid factor mixed with
    on-site generation (PV, zero at the point of use). China publishes annual factors only, so the hourly
    variation comes from the on-site share."""
    out = []
    for hour in sorted(set(grid_kwh) | set(onsite_kwh)):
        g, s = grid_kwh.get(hour, 0.0), onsite_kwh.get(hour, 0.0)
        used = g + s
        out.append(
            {
                "hour": hour,
                "grid_kwh": g,
                "onsite_kwh": s,
                "g_per_kwh": (g * grid_factor_kg_per_kwh * 1000.0 / used) if used > 0 else None,
            }
        )
    return out
