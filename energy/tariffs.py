"""Tariffs as data: time-of-use calendars (season months x weekdays x time bands x prices), validity dates,
critical peak, two-part charges, per-medium prices; the band and cost of each 15-minute interval.

A tariff is given as ``TariffSpec`` (API body, YAML file) and stored in ``energy_tariff`` and its period and
price rows. ``Schedule`` is the pure lookup used by the interval computation: (local month, ISO weekday,
quarter-hour of the day) -> band, for the tariffs of one site and medium ordered by validity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import psycopg
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from core.db import execute
from core.yamlconf import load_model, read_yaml

BANDS = ("critical", "peak", "flat", "valley")
Band = Literal["critical", "peak", "flat", "valley"]
DEFAULT_TARIFF = Path(__file__).parent / "data" / "tariff-jiangsu-2024.yaml"
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class PeriodSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    season: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    months: list[Annotated[int, Field(ge=1, le=12)]] = Field(min_length=1)
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default=[1, 2, 3, 4, 5, 6, 7], min_length=1, description="ISO weekdays, 1 = Monday"
    )
    start: str = Field(alias="from", pattern=_HHMM, description="local time HH:MM")
    end: str = Field(alias="to", pattern=_HHMM, description="local time HH:MM, 24:00 = midnight")
    band: Band

    @model_validator(mode="after")
    def _ordered(self) -> PeriodSpec:
        if _minutes(self.end) <= _minutes(self.start):
            raise ValueError(
                f"'to' {self.end} must come after 'from' {self.start} (split a band that crosses "
                "midnight into two periods)"
            )
        if _minutes(self.start) % 15 or _minutes(self.end) % 15:
            raise ValueError("band boundaries must fall on quarter hours (the intervals are 15 minutes)")
        return self


class TariffSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    medium: Literal["electricity", "water", "compressed_air", "nitrogen", "steam", "natural_gas"]
    valid_from: date
    valid_to: date | None = None
    prices: dict[Band, Annotated[float, Field(ge=0, le=1e4)]] = Field(min_length=1, description="CNY per unit")
    periods: list[PeriodSpec] = Field(default_factory=list, description="no periods: every hour is 'flat'")
    demand_cny_per_kw: Annotated[float, Field(ge=0, le=1e4)] | None = None
    capacity_cny_per_kva: Annotated[float, Field(ge=0, le=1e4)] | None = None
    capacity_kva: Annotated[float, Field(gt=0, le=1e7)] | None = None
    contracted_max_kw: Annotated[float, Field(gt=0, le=1e7)] | None = None

    @field_validator("valid_to")
    @classmethod
    def _after(cls, value: date | None, info) -> date | None:
        start = info.data.get("valid_from")
        if value is not None and start is not None and value <= start:
            raise ValueError("valid_to must come after valid_from")
        return value

    @model_validator(mode="after")
    def _complete(self) -> TariffSpec:
        seen: dict[tuple[int, int, int], str] = {}
        for period in self.periods:
            for month in period.months:
                for weekday in period.weekdays:
                    for q in range(_minutes(period.start) // 15, _minutes(period.end) // 15):
                        if (month, weekday, q) in seen:
                            raise ValueError(
                                f"periods overlap: month {month}, weekday {weekday}, "
                                f"{q // 4:02d}:{q % 4 * 15:02d} is in '{seen[(month, weekday, q)]}' "
                                f"and '{period.season}'"
                            )
                        seen[(month, weekday, q)] = period.season
        used = {p.band for p in self.periods} or {"flat"}
        if len(seen) < 12 * 7 * 96:
            used.add("flat")
        missing = sorted(used - set(self.prices))
        if missing:
            raise ValueError(f"no price for band(s) {', '.join(missing)}")
        if self.capacity_cny_per_kva is not None and self.capacity_kva is None:
            raise ValueError("a capacity charge needs capacity_kva")
        return self


def load_tariff_file(path: str | Path) -> TariffSpec:
    """Read a tariff YAML file; ``ConfigError`` names the line and field of a problem."""
    data, lines = read_yaml(path)
    return load_model(path, TariffSpec, data, lines)


def save_tariff(*, conn: psycopg.Connection, site_id: int, spec: TariffSpec, actor: str) -> int:
    """Create or replace the tariff ``spec.code`` of a site (its periods and prices with it); returns its id. The
    intervals it prices are recomputed by the next ``energy.intervals.refresh``."""
    row = execute(
        conn,
        """
        INSERT INTO energy_tariff (site_id, code, name, medium, valid_from, valid_to, demand_cny_per_kw,
                                   capacity_cny_per_kva, capacity_kva, contracted_max_kw, created_by)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (site_id, code) DO UPDATE SET name = excluded.name, medium = excluded.medium,
            valid_from = excluded.valid_from, valid_to = excluded.valid_to,
            demand_cny_per_kw = excluded.demand_cny_per_kw, capacity_cny_per_kva = excluded.capacity_cny_per_kva,
            capacity_kva = excluded.capacity_kva, contracted_max_kw = excluded.contracted_max_kw,
            created_by = excluded.created_by, created_at = now()
        RETURNING id""",
        (
            site_id,
            spec.code,
            spec.name,
            spec.medium,
            spec.valid_from,
            spec.valid_to,
            spec.demand_cny_per_kw,
            spec.capacity_cny_per_kva,
            spec.capacity_kva,
            spec.contracted_max_kw,
            actor,
        ),
    ).fetchone()
    tariff_id = row[0]
    execute(conn, "DELETE FROM energy_tariff_period WHERE tariff_id = %s", (tariff_id,))
    execute(conn, "DELETE FROM energy_tariff_price WHERE tariff_id = %s", (tariff_id,))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO energy_tariff_price (tariff_id, band, price_cny) VALUES (%s, %s, %s)",
            [(tariff_id, band, price) for band, price in spec.prices.items()],
        )
        cur.executemany(
            """INSERT INTO energy_tariff_period (tariff_id, season, months, weekdays, start_min,
                           end_min, band) VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            [
                (tariff_id, p.season, p.months, p.weekdays, _minutes(p.start), _minutes(p.end), p.band)
                for p in spec.periods
            ],
        )
    # re-price: the next refresh recomputes the site's meters of this medium from the tariff's first day
    execute(
        conn,
        """
        UPDATE energy_state e SET reading_to = least(e.reading_to, %s::date::timestamp AT TIME ZONE s.timezone)
        FROM meter m JOIN site s ON s.id = m.site_id
        WHERE m.id = e.meter_id AND m.site_id = %s AND m.medium = %s""",
        (spec.valid_from, site_id, spec.medium),
    )
    return tariff_id


def list_tariffs(*, conn: psycopg.Connection, site_id: int, medium: str | None = None) -> list[TariffSpec]:
    """The tariffs of a site (optionally one medium), oldest validity first."""
    out = []
    for tid, code, name, med, vf, vt, dem, cap, kva, cmax in execute(
        conn,
        """
            SELECT id, code, name, medium, valid_from, valid_to, demand_cny_per_kw, capacity_cny_per_kva,
                   capacity_kva, contracted_max_kw FROM energy_tariff
            WHERE site_id = %s AND (%s::text IS NULL OR medium = %s) ORDER BY valid_from, id""",
        (site_id, medium, medium),
    ).fetchall():
        prices = dict(
            execute(conn, "SELECT band, price_cny FROM energy_tariff_price WHERE tariff_id = %s", (tid,)).fetchall()
        )
        periods = [
            PeriodSpec(
                season=s,
                months=m,
                weekdays=w,
                start=f"{a // 60:02d}:{a % 60:02d}",
                end=f"{b // 60:02d}:{b % 60:02d}",
                band=band,
            )
            for s, m, w, a, b, band in execute(
                conn,
                """
                       SELECT season, months, weekdays, start_min, end_min, band FROM energy_tariff_period
                       WHERE tariff_id = %s ORDER BY id""",
                (tid,),
            ).fetchall()
        ]
        out.append(
            TariffSpec(
                code=code,
                name=name,
                medium=med,
                valid_from=vf,
                valid_to=vt,
                prices=prices,
                periods=periods,
                demand_cny_per_kw=dem,
                capacity_cny_per_kva=cap,
                capacity_kva=kva,
                contracted_max_kw=cmax,
            )
        )
    return out


@dataclass(frozen=True)
class _Compiled:
    valid_from: date
    valid_to: date | None
    bands: np.ndarray  # [13, 8, 96] band index into BANDS (month 1..12, ISO weekday 1..7, quarter hour)
    prices: np.ndarray  # [4] CNY per unit by band index (NaN: no price)


def _compile(spec: TariffSpec) -> _Compiled:
    bands = np.full((13, 8, 96), BANDS.index("flat"), dtype=np.int8)
    for p in spec.periods:
        lo, hi = _minutes(p.start) // 15, _minutes(p.end) // 15
        for month in p.months:
            for weekday in p.weekdays:
                bands[month, weekday, lo:hi] = BANDS.index(p.band)
    prices = np.array([spec.prices.get(b, np.nan) for b in BANDS], dtype=float)
    return _Compiled(spec.valid_from, spec.valid_to, bands, prices)


class Schedule:
    """Band and price of every 15-minute interval of one site and medium, from its tariffs."""

    def __init__(self, tariffs: list[TariffSpec], timezone: str) -> None:
        self.tariffs = [_compile(t) for t in sorted(tariffs, key=lambda t: t.valid_from)]
        self.timezone = timezone

    def price(self, starts: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        """(band index, or -1 without a tariff; price CNY per unit, NaN without) of each interval start (UTC)."""
        band = np.full(len(starts), -1, dtype=np.int8)
        price = np.full(len(starts), np.nan)
        if not self.tariffs or len(starts) == 0:
            return band, price
        local = starts.tz_convert(self.timezone)
        month = local.month.to_numpy()
        weekday = local.day_of_week.to_numpy() + 1
        quarter = local.hour.to_numpy() * 4 + local.minute.to_numpy() // 15
        day_arr = local.tz_localize(None).to_numpy().astype("datetime64[D]")
        for t in self.tariffs:  # later validity wins where two overlap
            mask = day_arr >= np.datetime64(t.valid_from)
            if t.valid_to is not None:
                mask &= day_arr < np.datetime64(t.valid_to)
            if not mask.any():
                continue
            b = t.bands[month[mask], weekday[mask], quarter[mask]]
            band[mask] = b
            price[mask] = t.prices[b]
        return band, price

    def band_at(self, when: datetime) -> str | None:
        """The band of the interval holding ``when`` (None without a tariff)."""
        index = pd.DatetimeIndex([pd.Timestamp(when).floor("15min")])
        b = int(self.price(index)[0][0])
        return BANDS[b] if b >= 0 else None


def schedule_for(*, conn: psycopg.Connection, site_id: int, medium: str, timezone: str) -> Schedule:
    return Schedule(list_tariffs(conn=conn, site_id=site_id, medium=medium), timezone)
