"""The periodic abnormal-consumption evaluation over ``energy_interval``: decisions → edge-triggered findings.

Wired: the night-time base load of every compressed-air meter (``energy.abnormal.night_base_load``), its level
learned from the meter's own previous complete nights (site-local 01:00-05:00) over ``learn_days``; and, for
every meter of an area with production records (``energy_production``, the energy core's table), consumption
while the area's output is zero, against the standby level learned from its earlier stopped intervals; and, for
every meter with a stored baseline (``energy.baseline_store``), energy above the baseline's prediction band
(``energy.abnormal.above_band``) in each of its last ``band_periods`` complete periods, with the relevant variables
built per period by ``energy.baseline_check`` (production, degree-days, working days); and, for every meter, its
last complete hours' energy above its own typical weekly profile (``energy.abnormal.above_profile``: the same
hour of the week in the previous ``profile_weeks`` weeks of measured intervals, at least ``profile_min_weeks``).

``evaluate`` keeps the last severity per (rule, subject) in ``energy_finding_state`` (migration 0057) and returns
only changes, including the return to normal, like ``hazwaste.compliance``; a composition root passes them to
``alerts.service.apply_findings`` in the same transaction. ``current_abnormal`` lists what is abnormal now, with
the expected value, for the energy summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg.rows import dict_row
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.db import execute
from core.model import Finding, Severity, SubjectRef
from energy import baseline_check
from energy.abnormal import (
    Abnormal,
    Kind,
    above_band,
    above_profile,
    learn_night_base,
    learn_standby,
    night_base_load,
    night_means,
    running_while_stopped,
    to_finding,
)

NIGHT_HOURS = (1, 5)
#: The rules this job evaluates (and may therefore return to normal).
RULES = (Kind.NIGHT_BASE_LOAD, Kind.RUNNING_WHILE_STOPPED, Kind.ABOVE_BAND, Kind.ABOVE_PROFILE)


class AbnormalSettings(BaseSettings):
    """Settings of the abnormal-consumption evaluation (prefix ``EHS_ENERGY_ABNORMAL_``)."""

    model_config = SettingsConfigDict(env_prefix="EHS_ENERGY_ABNORMAL_", env_file=".env", extra="ignore")

    #: How often the alerts worker evaluates (seconds; 0 turns it off there, ``ehs energy abnormal evaluate``
    #: still runs it by hand).
    evaluate_s: float = Field(900.0, ge=0)
    #: Nights of history the night base load is learned from.
    learn_days: int = Field(28, ge=8, le=366)
    #: A night counts as abnormal above this multiple of the learned base load.
    night_factor: float = Field(1.3, ge=1.0)
    #: Consumption while production is stopped: this many 15-minute intervals in a row above
    #: ``stopped_factor`` × the standby level learned from the area's earlier stopped intervals.
    stopped_intervals: int = Field(4, ge=1, le=96)
    stopped_factor: float = Field(1.5, ge=1.0)
    #: Above the baseline's prediction band: this many complete periods in a row (hours, days or months, the
    #: baseline's granularity) above the upper edge of the band at ``band_confidence``.
    band_periods: int = Field(2, ge=1, le=48)
    band_confidence: float = Field(0.95, gt=0.5, lt=1.0)
    #: Above the meter's own typical profile: this many complete hours in a row above the band of the same hour
    #: of the week in the previous ``profile_weeks`` weeks (at least ``profile_min_weeks`` of them measured): the
    #: wider of ``profile_factor`` × their median and the median + ``profile_spread`` scaled MADs.
    profile_hours: int = Field(3, ge=1, le=48)
    profile_weeks: int = Field(4, ge=2, le=12)
    profile_min_weeks: int = Field(2, ge=1, le=12)
    profile_factor: float = Field(1.2, ge=1.0)
    profile_spread: float = Field(3.0, ge=0.0)
    #: Meter codes the profile check skips (JSON list): loads that follow the weather, such as chillers in the
    #: spring when cooling starts, are above last weeks' profile without waste; judge them with a baseline on
    #: degree-days (``energy.above_band``) instead.
    profile_exclude: list[str] = Field(default_factory=list)
    #: Public holidays and make-up working days (JSON lists of dates) for the ``working_days`` variable.
    holidays: list[date] = Field(default_factory=list)
    extra_workdays: list[date] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MeterRef:
    site: str
    timezone: str
    meter_id: int
    meter: str
    name: str
    medium: str
    unit: str
    device: str
    area: str | None


def meters(conn: psycopg.Connection, *, medium: str | None = None) -> list[MeterRef]:
    """Active meters (optionally of one medium) with their site, time zone, device, area and unit."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT s.code AS site, s.timezone, m.id AS meter_id, m.code AS meter, m.name, m.medium, p.unit,
                      d.code AS device, a.code AS area
               FROM meter m JOIN site s ON s.id = m.site_id JOIN point p ON p.id = m.point_id
               JOIN device d ON d.id = p.device_id LEFT JOIN area a ON a.id = m.area_id
               WHERE m.retired_at IS NULL AND (%(medium)s::text IS NULL OR m.medium = %(medium)s)
               ORDER BY s.code, m.code""",
            {"medium": medium},
        ).fetchall()
    return [MeterRef(**r) for r in rows]


def interval_energy(conn: psycopg.Connection, *, meter_id: int, start: datetime, end: datetime) -> pd.Series:
    """Measured and estimated interval energy of one meter in [start, end), indexed by interval start (UTC)."""
    rows = execute(
        conn,
        """SELECT start, quantity FROM energy_interval WHERE meter_id = %s AND start >= %s AND start < %s
           AND quality <> 'missing' ORDER BY start""",
        (meter_id, start, end),
    ).fetchall()
    if not rows:
        return pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    index = pd.DatetimeIndex([r[0] for r in rows]).tz_convert("UTC")
    return pd.Series([float(r[1]) for r in rows], index=index)


def night_leak(
    conn: psycopg.Connection,
    ref: MeterRef,
    now: datetime,
    *,
    learn_days: int = 28,
    factor: float = 1.3,
    min_nights: int = 7,
) -> Abnormal | None:
    """The night-base-load decision for one compressed-air meter at ``now``."""
    series = interval_energy(conn, meter_id=ref.meter_id, start=now - timedelta(days=learn_days + 1), end=now)
    nights = night_means(series, tz=ref.timezone, hours=NIGHT_HOURS)
    if len(nights) < 2:
        return None
    last_night = pd.Timestamp(nights.index[-1]).tz_localize(ref.timezone).tz_convert("UTC")
    learned = learn_night_base(
        series[series.index < last_night], tz=ref.timezone, hours=NIGHT_HOURS, min_nights=min_nights
    )
    if learned is None:
        return None
    return night_base_load(
        series,
        learned=learned,
        tz=ref.timezone,
        meter=ref.meter,
        unit=ref.unit,
        hours=NIGHT_HOURS,
        factor=factor,
        device=ref.device,
        area=ref.area,
    )


def area_output(conn: psycopg.Connection, *, site: str, area: str, slots: pd.DatetimeIndex) -> pd.Series:
    """Production output of an area per 15-minute slot, from ``energy_production`` records (spread evenly over
    each record's period); NaN where no record covers the slot (unknown is not "stopped")."""
    end = slots[-1] + pd.Timedelta(minutes=15)
    rows = execute(
        conn,
        """SELECT p.start, p."end", p.quantity FROM energy_production p JOIN area a ON a.id = p.area_id
           JOIN site s ON s.id = a.site_id WHERE s.code = %s AND a.code = %s AND p.start < %s AND p."end" > %s""",
        (site, area, end.to_pydatetime(), slots[0].to_pydatetime()),
    ).fetchall()
    total = np.zeros(len(slots))
    covered = np.zeros(len(slots))
    starts = slots.as_unit("s").asi8.astype(float)
    for start, stop, quantity in rows:
        a, b = start.timestamp(), stop.timestamp()
        overlap = np.clip(np.minimum(starts + 900, b) - np.maximum(starts, a), 0, None)
        total += quantity * overlap / (b - a)
        covered += overlap
    return pd.Series(np.where(covered >= 900 - 1e-6, total, np.nan), index=slots)


def stopped_but_running(
    conn: psycopg.Connection,
    ref: MeterRef,
    now: datetime,
    *,
    learn_days: int = 28,
    persist: int = 4,
    factor: float = 1.5,
) -> Abnormal | None:
    """The production-stopped decision for one meter of an area with production records, at ``now``."""
    if ref.area is None:
        return None
    end = pd.Timestamp(now).tz_convert("UTC").floor("15min")
    slots = pd.date_range(end - pd.Timedelta(days=learn_days), end, freq="15min", inclusive="left")
    output = area_output(conn, site=ref.site, area=ref.area, slots=slots)
    if not np.isfinite(output.to_numpy()[-persist:]).all():
        return None
    energy = interval_energy(conn, meter_id=ref.meter_id, start=slots[0].to_pydatetime(), end=end.to_pydatetime())
    recent = slots[-persist:]
    standby = learn_standby(energy[energy.index < recent[0]], output[output.index < recent[0]])
    if standby is None:
        return None
    return running_while_stopped(
        energy,
        output,
        standby=standby,
        meter=ref.meter,
        unit=ref.unit,
        persist=persist,
        factor=factor,
        device=ref.device,
        area=ref.area,
    )


def over_baseline(
    conn: psycopg.Connection, ref: MeterRef, now: datetime, settings: AbnormalSettings
) -> Abnormal | None:
    """The above-band decision for one meter with a stored baseline, at ``now`` (the first granularity that finds
    an excess; none where the periods' energy or variables are incomplete)."""
    for model in baseline_check.stored_baselines(conn, ref.meter_id):
        edges = baseline_check.recent_periods(now, ref.timezone, model.granularity, settings.band_periods)
        lo, hi = edges[0].to_pydatetime(), edges[-1].to_pydatetime()
        slots = pd.date_range(edges[0], edges[-1], freq="15min", inclusive="left")
        output = None
        if "production" in model.variables and ref.area is not None:
            output = area_output(conn, site=ref.site, area=ref.area, slots=slots)
        outdoor = None
        if {"hdd", "cdd"} & set(model.variables):
            # whole local days around the periods: degree-days are computed per calendar day
            outdoor = baseline_check.outdoor_temperatures(
                conn, site=ref.site, start=lo - timedelta(days=1), end=hi + timedelta(days=1)
            )
        table = baseline_check.variables_table(
            model,
            edges,
            timezone=ref.timezone,
            output=output,
            outdoor_c=outdoor,
            holidays=settings.holidays,
            workdays=settings.extra_workdays,
        )
        if table is None:
            continue
        actual = baseline_check.per_period(interval_energy(conn, meter_id=ref.meter_id, start=lo, end=hi), edges)
        if not np.isfinite(actual.to_numpy()).all():
            continue
        found = above_band(
            actual,
            model.band(table, settings.band_confidence),
            meter=ref.meter,
            unit=ref.unit,
            persist=settings.band_periods,
            device=ref.device,
            area=ref.area,
        )
        if found is not None:
            return found
    return None


def hourly_measured(conn: psycopg.Connection, *, meter_id: int, start: datetime, end: datetime) -> pd.Series:
    """Hourly energy of one meter in [start, end) (hour starts, UTC, every hour of the range): the sum of the
    hour's four 15-minute intervals when all four are measured, NaN otherwise (an estimated or missing interval
    makes the hour unknown)."""
    hours = pd.date_range(pd.Timestamp(start).ceil("h"), pd.Timestamp(end).floor("h"), freq="h", inclusive="left")
    rows = execute(
        conn,
        """SELECT date_trunc('hour', start) AS hour, sum(quantity), count(*) FILTER (WHERE quality = 'measured')
           FROM energy_interval WHERE meter_id = %s AND start >= %s AND start < %s GROUP BY 1""",
        (meter_id, hours[0].to_pydatetime() if len(hours) else start, end),
    ).fetchall()
    full = {pd.Timestamp(r[0]).tz_convert("UTC"): float(r[1]) for r in rows if r[2] == 4}
    return pd.Series([full.get(h, np.nan) for h in hours], index=hours, dtype=float)


def over_profile(conn: psycopg.Connection, ref: MeterRef, now: datetime, settings: AbnormalSettings) -> Abnormal | None:
    """The above-profile decision for one meter at ``now``: its last complete hours against the same hours of the
    week in the previous ``profile_weeks`` weeks."""
    end = pd.Timestamp(now).tz_convert("UTC").floor("h")
    start = end - pd.Timedelta(days=7 * settings.profile_weeks) - pd.Timedelta(hours=settings.profile_hours)
    hourly = hourly_measured(conn, meter_id=ref.meter_id, start=start.to_pydatetime(), end=end.to_pydatetime())
    if hourly.empty:
        return None
    return above_profile(
        hourly,
        meter=ref.meter,
        unit=ref.unit,
        persist=settings.profile_hours,
        weeks=settings.profile_weeks,
        min_weeks=min(settings.profile_min_weeks, settings.profile_weeks),
        factor=settings.profile_factor,
        spread=settings.profile_spread,
        device=ref.device,
        area=ref.area,
    )


def decisions(
    conn: psycopg.Connection, now: datetime, settings: AbnormalSettings | None = None
) -> list[tuple[MeterRef, Abnormal]]:
    """Every abnormal decision at ``now`` (what the job would raise); none before ``energy_interval`` exists,
    and no production-stopped decision before ``energy_production`` exists (the energy core's migration)."""
    settings = settings or AbnormalSettings()
    if execute(conn, "SELECT to_regclass('energy_interval')").fetchone()[0] is None:
        return []
    out = []
    for ref in meters(conn, medium="compressed_air"):
        found = night_leak(conn, ref, now, learn_days=settings.learn_days, factor=settings.night_factor)
        if found is not None:
            out.append((ref, found))
    if execute(conn, "SELECT to_regclass('energy_production')").fetchone()[0] is not None:
        for ref in meters(conn):
            found = stopped_but_running(
                conn,
                ref,
                now,
                learn_days=settings.learn_days,
                persist=settings.stopped_intervals,
                factor=settings.stopped_factor,
            )
            if found is not None:
                out.append((ref, found))
    if execute(conn, "SELECT to_regclass('energy_baseline')").fetchone()[0] is not None:
        with_baseline = {
            r[0] for r in execute(conn, "SELECT meter_id FROM energy_baseline WHERE superseded_at IS NULL").fetchall()
        }
        for ref in meters(conn):
            if ref.meter_id in with_baseline:
                found = over_baseline(conn, ref, now, settings)
                if found is not None:
                    out.append((ref, found))
    skip = set(settings.profile_exclude)
    for ref in meters(conn):
        if ref.meter in skip:
            continue
        found = over_profile(conn, ref, now, settings)
        if found is not None:
            out.append((ref, found))
    return out


def evaluate(*, conn: psycopg.Connection, now: datetime, settings: AbnormalSettings | None = None) -> list[Finding]:
    """The findings that changed since the last evaluation (raised, changed severity, or back to normal)."""
    execute(conn, "SELECT pg_advisory_xact_lock(hashtext('energy.abnormal'))")
    current: dict[tuple[str, str], tuple[MeterRef, Abnormal, Finding]] = {}
    for ref, found in decisions(conn, now, settings):
        finding = to_finding(found, site=ref.site, now=now)
        current[(finding.rule, finding.subject.key)] = (ref, found, finding)
    # only the rules this job decides: the table also holds the energy core's balance and demand findings
    previous = {
        (r[0], r[1]): r[2:]
        for r in execute(
            conn,
            "SELECT rule, subject, severity, message, site, area, device, meter FROM energy_finding_state "
            "WHERE rule = ANY(%s)",
            ([k.value for k in RULES],),
        )
    }
    out: list[Finding] = []
    for key, (_ref, found, finding) in current.items():
        if key not in previous or previous[key][0] != int(finding.severity):
            out.append(finding)
        _save(conn, finding, found, now)
    for key, (severity, message, site, area, device, meter) in previous.items():
        if key not in current and severity > 0:
            cleared = Finding(
                rule=key[0],
                detector="energy",
                subject=SubjectRef(site, area, device, meter),
                severity=Severity.NORMAL,
                ts=now,
                message=f"恢复正常 / back to normal: {message}",
                details={"type": "energy", "plan": [], "finding_id": f"{key[0]}:{key[1]}:{now.isoformat()}"},
            )
            out.append(cleared)
            execute(
                conn,
                """UPDATE energy_finding_state SET severity = 0, expected = NULL, actual = NULL,
                             since = NULL, updated_at = %s WHERE rule = %s AND subject = %s""",
                (now, *key),
            )
    return out


def _save(conn: psycopg.Connection, f: Finding, found: Abnormal, now: datetime) -> None:
    execute(
        conn,
        """INSERT INTO energy_finding_state (rule, subject, site, area, device, meter, severity, message, expected,
               actual, unit, since, updated_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (rule, subject) DO UPDATE SET severity = excluded.severity, message = excluded.message,
               expected = excluded.expected, actual = excluded.actual, unit = excluded.unit,
               since = excluded.since, updated_at = excluded.updated_at""",
        (
            f.rule,
            f.subject.key,
            f.subject.site,
            f.subject.area,
            f.subject.device,
            found.meter,
            int(f.severity),
            f.message,
            found.expected,
            found.actual,
            found.unit,
            found.since,
            now,
        ),
    )


def current_abnormal(*, conn: psycopg.Connection, site: str) -> list[dict[str, Any]]:
    """What is abnormal now at ``site`` (meter, name, area, device, expected, actual, unit, since, rule, message), the
    largest excess first: the energy summary's ``abnormal`` list."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT f.meter, m.name, f.area, f.device, f.expected, f.actual, f.unit, f.since, f.rule, f.message
               FROM energy_finding_state f
               JOIN site s ON s.code = f.site
               LEFT JOIN meter m ON m.site_id = s.id AND m.code = f.meter
               WHERE f.site = %s AND f.severity > 0 ORDER BY f.actual - f.expected DESC NULLS LAST""",
            (site,),
        ).fetchall()
