"""The relevant variables of a meter's recent periods, for the stored baseline's prediction band (ISO 50006 /
``energy.abnormal.above_band``): the table of energy and variables per period that the pure decision needs.

Variables the job can build (the names a baseline is fitted with, ``POST /api/v1/energy/baselines``):

``production``     the output of the meter's area (``energy_production``, spread evenly over each record)
``hdd``, ``cdd``   heating and cooling degree-days (base 18 °C, ``energy.baseline.degree_days``) from the site's
                   outdoor temperature point (key ``outdoor_temp_c``); daily and monthly baselines only
``working_days``   Monday to Friday minus the configured holidays plus make-up days; daily and monthly only

A baseline with any other variable, or a period whose energy or variables are incomplete, decides nothing (an
unknown is not an excess).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import numpy as np
import pandas as pd
import psycopg

from core.db import execute
from energy.baseline import Baseline, Granularity, degree_days, working_days

VARIABLES = frozenset({"production", "hdd", "cdd", "working_days"})
_FREQ = {Granularity.HOURLY: "h", Granularity.DAILY: "D", Granularity.MONTHLY: "MS"}
OUTDOOR_KEY = "outdoor_temp_c"


def stored_baselines(conn: psycopg.Connection, meter_id: int) -> list[Baseline]:
    """The current (not superseded) baselines of a meter, one per granularity."""
    rows = execute(
        conn,
        "SELECT model FROM energy_baseline WHERE meter_id = %s AND superseded_at IS NULL ORDER BY granularity",
        (meter_id,),
    ).fetchall()
    return [Baseline.from_dict(r[0]) for r in rows]


def recent_periods(now: datetime, timezone: str, granularity: Granularity, count: int) -> pd.DatetimeIndex:
    """Bounds (UTC) of the last ``count`` complete site-local periods before ``now``: ``count + 1`` edges."""
    local = pd.Timestamp(now).tz_convert(timezone).tz_localize(None)
    end = {
        Granularity.HOURLY: local.floor("h"),
        Granularity.DAILY: local.normalize(),
        Granularity.MONTHLY: local.normalize().replace(day=1),
    }[granularity]
    edges = pd.date_range(end=end, periods=count + 1, freq=_FREQ[granularity])
    return edges.tz_localize(timezone).tz_convert("UTC")


def per_period(slots: pd.Series, edges: pd.DatetimeIndex) -> pd.Series:
    """Sum of a 15-minute series per period (index: period starts); NaN where a slot is absent or NaN."""
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        want = pd.date_range(a, b, freq="15min", inclusive="left")
        values = slots.reindex(want).to_numpy(dtype=float)
        out.append(float(values.sum()) if np.isfinite(values).all() else np.nan)
    return pd.Series(out, index=edges[:-1])


def outdoor_temperatures(conn: psycopg.Connection, *, site: str, start: datetime, end: datetime) -> pd.Series | None:
    """Readings of the site's outdoor temperature point in [start, end), or None without such a point."""
    rows = execute(
        conn,
        """SELECT r.time, r.value FROM reading r WHERE r.point_id = (
               SELECT p.id FROM point p JOIN device d ON d.id = p.device_id JOIN site s ON s.id = d.site_id
               WHERE s.code = %s AND p.key = %s AND d.retired_at IS NULL ORDER BY p.id LIMIT 1)
             AND r.time >= %s AND r.time < %s AND r.value IS NOT NULL ORDER BY r.time""",
        (site, OUTDOOR_KEY, start, end),
    ).fetchall()
    if not rows:
        return None
    return pd.Series([float(v) for _t, v in rows], index=pd.DatetimeIndex([t for t, _v in rows]).tz_convert("UTC"))


def variables_table(
    model: Baseline,
    edges: pd.DatetimeIndex,
    *,
    timezone: str,
    output: pd.Series | None,
    outdoor_c: pd.Series | None,
    holidays: Sequence[date] = (),
    workdays: Sequence[date] = (),
) -> pd.DataFrame | None:
    """The model's variables per period (index: period starts, UTC), or None when one cannot be built.

    ``output``: the area's production per 15-minute slot (NaN where unknown); ``outdoor_c``: outdoor readings."""
    if not set(model.variables) <= VARIABLES:
        return None
    starts = edges[:-1]
    local = starts.tz_convert(timezone)
    table = pd.DataFrame(index=starts)
    for name in model.variables:
        if name == "production":
            if output is None:
                return None
            table[name] = per_period(output, edges).to_numpy()
        elif name in ("hdd", "cdd"):
            if outdoor_c is None or model.granularity == Granularity.HOURLY:
                return None
            days = degree_days(outdoor_c, freq="D", tz=timezone)[name]
            days.index = days.index.tz_localize(None)
            naive = local.tz_localize(None)
            ends = list(naive[1:]) + [edges[-1].tz_convert(timezone).tz_localize(None)]
            values = []
            for a, b in zip(naive, ends, strict=True):
                want = pd.date_range(a, b, freq="D", inclusive="left")
                got = days.reindex(want).to_numpy(dtype=float)
                values.append(float(got.sum()) if np.isfinite(got).all() else np.nan)
            table[name] = values
        else:  # working_days
            if model.granularity == Granularity.HOURLY:
                return None
            table[name] = working_days(
                local,
                holidays=[str(d) for d in holidays],
                workdays=[str(d) for d in workdays],
                freq=_FREQ[model.granularity],
            ).to_numpy()
    if not np.isfinite(table.to_numpy(dtype=float)).all():
        return None
    return table
