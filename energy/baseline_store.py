"""Stored energy baselines (migration 0056): set, re-baseline with an audit entry, read the current one.

Functions take a psycopg connection keyword-only and run in the caller's transaction (STYLE.md). A baseline is
stored only as an accepted ``energy.baseline.Baseline`` (one that passed Guideline 14); a new one for the same
meter or area and granularity supersedes the current row, never edits it, and the audit record gets the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from core import audit
from core.db import execute
from energy.baseline import Baseline, Granularity


class NotFound(LookupError):
    """The site, meter or area code does not exist (or is retired)."""


@dataclass(frozen=True, slots=True)
class StoredBaseline:
    id: int
    site: str
    meter: str | None
    area: str | None
    model: Baseline
    reason: str
    created_by: str
    created_at: datetime
    superseded_at: datetime | None
    superseded_by: int | None


def _target(
    conn: psycopg.Connection, site: str, meter: str | None, area: str | None
) -> tuple[int, int | None, int | None]:
    if (meter is None) == (area is None):
        raise ValueError("a baseline belongs to exactly one meter or one area")
    row = execute(conn, "SELECT id FROM site WHERE code = %s", (site,)).fetchone()
    if row is None:
        raise NotFound(f"no site {site!r}")
    site_id = row[0]
    if meter is not None:
        found = execute(
            conn, "SELECT id FROM meter WHERE site_id = %s AND code = %s AND retired_at IS NULL", (site_id, meter)
        ).fetchone()
        if found is None:
            raise NotFound(f"no meter {meter!r} in site {site!r}")
        return site_id, found[0], None
    found = execute(
        conn, "SELECT id FROM area WHERE site_id = %s AND code = %s AND retired_at IS NULL", (site_id, area)
    ).fetchone()
    if found is None:
        raise NotFound(f"no area {area!r} in site {site!r}")
    return site_id, None, found[0]


def set_baseline(
    *,
    conn: psycopg.Connection,
    site: str,
    model: Baseline,
    reason: str,
    actor: str,
    meter: str | None = None,
    area: str | None = None,
) -> int:
    """Store ``model`` as the current baseline of the meter or area; supersede the previous one; audit both.

    Returns the new row's id. ``reason`` is required (ISO 50006: re-baseline for a stated cause).
    """
    reason = reason.strip()
    if not reason:
        raise ValueError("a baseline needs a reason (why it is set or changed)")
    if model.period_start is None or model.period_end is None:
        raise ValueError("the baseline does not record its period")
    site_id, meter_id, area_id = _target(conn, site, meter, area)
    execute(conn, "SELECT pg_advisory_xact_lock(hashtext('energy_baseline'), %s)", (site_id,))
    previous = execute(
        conn,
        """SELECT id FROM energy_baseline WHERE site_id = %s AND meter_id IS NOT DISTINCT FROM %s
           AND area_id IS NOT DISTINCT FROM %s AND granularity = %s AND superseded_at IS NULL FOR UPDATE""",
        (site_id, meter_id, area_id, model.granularity.value),
    ).fetchone()
    new_id = _insert(conn, site_id, meter_id, area_id, model, reason, actor, previous[0] if previous else None)
    subject = f"{site}/{meter or area}"
    audit.append(
        conn,
        actor=actor,
        action="energy.rebaseline" if previous else "energy.baseline",
        target=f"energy_baseline:{new_id}",
        site=site,
        detail={
            "subject": subject,
            "granularity": model.granularity.value,
            "reason": reason,
            "replaces": previous[0] if previous else None,
            "cv_rmse_pct": _figure(model.cv_rmse_pct),
            "nmbe_pct": _figure(model.nmbe_pct),
            "r2": _figure(model.r2),
            "variables": list(model.variables),
            "period": [model.period_start, model.period_end],
        },
    )
    return new_id


def _figure(value: float) -> float:
    """Rounded for the audit record (a -0.0 is fine: ``core.audit`` hashes it as the 0.0 JSONB gives back)."""
    return round(value, 4)


def _insert(
    conn: psycopg.Connection,
    site_id: int,
    meter_id: int | None,
    area_id: int | None,
    model: Baseline,
    reason: str,
    actor: str,
    previous: int | None,
) -> int:
    # The old row stops being current before the insert (the partial unique index allows one current row) and
    # is linked to its successor after it; all in the caller's transaction.
    if previous is not None:
        execute(
            conn, "UPDATE energy_baseline SET superseded_at = now(), superseded_by = NULL WHERE id = %s", (previous,)
        )
    new_id = execute(
        conn,
        """INSERT INTO energy_baseline (site_id, meter_id, area_id, granularity, model, variables, cv_rmse_pct,
               nmbe_pct, r2, n_periods, period_start, period_end, reason, created_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            site_id,
            meter_id,
            area_id,
            model.granularity.value,
            orjson.dumps(model.to_dict()).decode(),
            list(model.variables),
            model.cv_rmse_pct,
            model.nmbe_pct,
            model.r2,
            model.n,
            model.period_start,
            model.period_end,
            reason,
            actor,
        ),
    ).fetchone()[0]
    if previous is not None:
        execute(conn, "UPDATE energy_baseline SET superseded_by = %s WHERE id = %s", (new_id, previous))
    return new_id


_SELECT = """SELECT b.id, s.code AS site, m.code AS meter, a.code AS area, b.model, b.reason, b.created_by,
                    b.created_at, b.superseded_at, b.superseded_by
             FROM energy_baseline b JOIN site s ON s.id = b.site_id
             LEFT JOIN meter m ON m.id = b.meter_id LEFT JOIN area a ON a.id = b.area_id"""


def _stored(row: dict[str, Any]) -> StoredBaseline:
    return StoredBaseline(
        id=row["id"],
        site=row["site"],
        meter=row["meter"],
        area=row["area"],
        model=Baseline.from_dict(row["model"]),
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        superseded_at=row["superseded_at"],
        superseded_by=row["superseded_by"],
    )


def current_baseline(
    *,
    conn: psycopg.Connection,
    site: str,
    granularity: Granularity | str,
    meter: str | None = None,
    area: str | None = None,
) -> StoredBaseline | None:
    """The current baseline of the meter or area at this granularity, or None."""
    site_id, meter_id, area_id = _target(conn, site, meter, area)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            _SELECT
            + """ WHERE b.site_id = %s AND b.meter_id IS NOT DISTINCT FROM %s
                AND b.area_id IS NOT DISTINCT FROM %s AND b.granularity = %s AND b.superseded_at IS NULL""",
            (site_id, meter_id, area_id, Granularity(granularity).value),
        ).fetchone()
    return None if row is None else _stored(row)


def baseline_history(
    *, conn: psycopg.Connection, site: str, meter: str | None = None, area: str | None = None
) -> list[StoredBaseline]:
    """Every baseline of the meter or area, newest first (the re-baselining record)."""
    site_id, meter_id, area_id = _target(conn, site, meter, area)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _SELECT
            + """ WHERE b.site_id = %s AND b.meter_id IS NOT DISTINCT FROM %s
                AND b.area_id IS NOT DISTINCT FROM %s ORDER BY b.id DESC""",
            (site_id, meter_id, area_id),
        ).fetchall()
    return [_stored(r) for r in rows]
