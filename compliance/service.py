"""Compliance storage: the outfalls section (versioned), samples with their HJ 212 flags, results, watermarks.

Functions take the caller's connection and never commit (the unit of work belongs to the caller).
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime

import orjson
import psycopg

from compliance.averaging import Sample
from compliance.config import ComplianceSection
from compliance.evaluate import PeriodResult
from core.db import execute


def apply_compliance(*, conn: psycopg.Connection, section: ComplianceSection, source: str) -> int | None:
    """Store the section if it differs from the newest one; return the new revision, or None."""
    body = section.model_dump(mode="json")
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    latest = execute(conn, "SELECT sha256 FROM compliance_config ORDER BY id DESC LIMIT 1").fetchone()
    if (latest and latest[0] == digest) or (latest is None and not section.outfalls):
        return None
    return execute(
        conn,
        "INSERT INTO compliance_config (source, sha256, body) VALUES (%s, %s, %s) RETURNING id",
        (source, digest, orjson.dumps(body).decode()),
    ).fetchone()[0]


def load_compliance(*, conn: psycopg.Connection) -> tuple[int, ComplianceSection]:
    row = execute(conn, "SELECT id, body FROM compliance_config ORDER BY id DESC LIMIT 1").fetchone()
    return (0, ComplianceSection()) if row is None else (row[0], ComplianceSection.model_validate(row[1]))


def site_points(*, conn: psycopg.Connection, site: str) -> tuple[str, dict[str, int], dict[str, str]]:
    """The site's time zone, its active points by ``device/key``, and each device's area."""
    rows = execute(
        conn,
        """
        SELECT s.timezone, d.code || '/' || p.key, p.id, d.code, a.code FROM site s
        JOIN device d ON d.site_id = s.id AND d.retired_at IS NULL
        JOIN area a ON a.id = d.area_id
        JOIN point p ON p.device_id = d.id AND p.retired_at IS NULL
        WHERE s.code = %s""",
        (site,),
    ).fetchall()
    return (
        (rows[0][0] if rows else "Asia/Shanghai"),
        {ref: pid for _, ref, pid, _, _ in rows},
        {device: area for *_, device, area in rows},
    )


def fetch_samples(
    *, conn: psycopg.Connection, point_ids: list[int], since: datetime, until: datetime
) -> dict[int, list[Sample]]:
    """Readings in (since, until] with their HJ 212 flag, oldest first, by point.

    A reading without an HJ 212 flag but with bad quality (a null from MQTT, quality 2) counts as a fault (D).
    """
    out: dict[int, list[Sample]] = {pid: [] for pid in point_ids}
    rows = execute(
        conn,
        """
        SELECT r.point_id, r.time, r.value, coalesce(f.flag, CASE WHEN r.quality >= 2 THEN 'D' END)
        FROM reading r LEFT JOIN reading_flag f ON f.point_id = r.point_id AND f.time = r.time
        WHERE r.point_id = ANY(%s) AND r.time > %s AND r.time <= %s
        ORDER BY r.point_id, r.time""",
        (point_ids, since, until),
    ).fetchall()
    for point_id, ts, value, flag in rows:
        out[point_id].append(Sample(ts, value, flag))
    return out


def total_since(*, conn: psycopg.Connection, point_id: int, since: datetime, until: datetime) -> float:
    """Sum of valid interval totals (-Cou) of a point in (since, until] (flag N or none, good quality)."""
    return execute(
        conn,
        """
        SELECT coalesce(sum(r.value), 0) FROM reading r
        LEFT JOIN reading_flag f ON f.point_id = r.point_id AND f.time = r.time
        WHERE r.point_id = %s AND r.time > %s AND r.time <= %s AND r.value IS NOT NULL
          AND coalesce(f.flag, 'N') = 'N' AND r.quality < 2""",
        (point_id, since, until),
    ).fetchone()[0]


def store_results(*, conn: psycopg.Connection, site: str, outfall: str, results: list[PeriodResult]) -> None:
    if not results:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO compliance_result (site_code, outfall, pollutant, averaging, period_start, value, n_valid,
                                           n_total, valid, limit_min, limit_max, source, exceeded)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (site_code, outfall, pollutant, averaging, period_start) DO UPDATE SET
                value = excluded.value, n_valid = excluded.n_valid, n_total = excluded.n_total,
                valid = excluded.valid, limit_min = excluded.limit_min, limit_max = excluded.limit_max,
                source = excluded.source, exceeded = excluded.exceeded, computed_at = now()""",
            [
                (
                    site,
                    outfall,
                    r.pollutant,
                    r.averaging,
                    r.start,
                    r.value,
                    r.n_valid,
                    r.n_total,
                    r.valid,
                    r.limit.min,
                    r.limit.max,
                    r.source,
                    r.exceeded,
                )
                for r in results
            ],
        )


def watermark(*, conn: psycopg.Connection, site: str, outfall: str) -> datetime | None:
    row = execute(
        conn, "SELECT evaluated_to FROM compliance_watermark WHERE site_code = %s AND outfall = %s", (site, outfall)
    ).fetchone()
    return row[0] if row else None


def set_watermark(*, conn: psycopg.Connection, site: str, outfall: str, to: datetime) -> None:
    execute(
        conn,
        "INSERT INTO compliance_watermark (site_code, outfall, evaluated_to) VALUES (%s, %s, %s) "
        "ON CONFLICT (site_code, outfall) DO UPDATE SET evaluated_to = excluded.evaluated_to",
        (site, outfall, to),
    )


def results(*, conn: psycopg.Connection, site: str, day: date | None = None) -> list[tuple]:
    """Stored results of a site (for reports and tests), oldest first."""
    return execute(
        conn,
        "SELECT outfall, pollutant, averaging, period_start, value, n_valid, n_total, valid, "
        "exceeded, source FROM compliance_result WHERE site_code = %s "
        "ORDER BY period_start, outfall, pollutant, averaging",
        (site,),
    ).fetchall()
