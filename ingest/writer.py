"""Write one decoded batch in one transaction: COPY readings, dead letters, device status.

Duplicates are dropped by the key (point, time): the fast path COPYs straight into ``reading``; when a
batch collides with rows already stored (a redelivery after a crash, a spool replay) the batch is copied
into a temporary table and inserted with ``ON CONFLICT DO NOTHING`` instead. On plain PostgreSQL ``reading`` is
partitioned by day: a reading for a day that has no partition yet (late data after a long outage) makes the
batch create the missing partitions and try once more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import errors

from core import channels, storage
from core.model import Reading
from core.text import storable, storable_or_none
from core.timeseries import mark_dirty
from ingest.decoders import Decoded, Reject

_LOGGER = logging.getLogger(__name__)

_COLUMNS = "(time, point_id, value, quality)"
_TYPES = ["timestamptz", "int4", "float8", "int2"]


@dataclass(frozen=True, slots=True)
class WriteResult:
    written: int
    duplicates: int
    rejects: int


def copy_rows(conn: psycopg.Connection, table: str, rows: list[Reading]) -> None:
    """Binary COPY of reading rows into ``table``."""
    with conn.cursor() as cur, cur.copy(f"COPY {table} {_COLUMNS} FROM STDIN (FORMAT BINARY)") as copy:  # noqa: S608
        copy.set_types(_TYPES)
        write = copy.write_row
        for row in rows:
            write(row)


def _insert_deduplicated(conn: psycopg.Connection, rows: list[Reading]) -> int:
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS reading_stage (LIKE reading INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    copy_rows(conn, "reading_stage", rows)
    cur = conn.execute(
        f"INSERT INTO reading {_COLUMNS} SELECT {_COLUMNS[1:-1]} FROM reading_stage "  # noqa: S608
        "ON CONFLICT (point_id, time) DO NOTHING"
    )
    conn.execute("TRUNCATE reading_stage")
    return cur.rowcount


def _write(conn: psycopg.Connection, rows: list[Reading]) -> int:
    try:
        with conn.transaction():  # a savepoint: a collision undoes only the COPY
            copy_rows(conn, "reading", rows)
        return len(rows)
    except errors.UniqueViolation:
        return _insert_deduplicated(conn, rows)


def dead_letter_row(r: Reject) -> tuple:
    """A reject as a ``dead_letter`` row; the device's text made storable (NUL, lone surrogates, length)."""
    return (
        r.received_at,
        storable(r.topic, 1000),
        bytes(r.payload),
        r.payload_size,
        r.reason.value,
        storable(r.detail),
        storable_or_none(r.site, 200),
        storable_or_none(r.device, 200),
    )


def write_readings(conn: psycopg.Connection, rows: list[Reading]) -> int:
    """Store rows inside the caller's transaction; return how many were new (duplicates are dropped)."""
    if not rows:
        return 0
    try:
        with conn.transaction():
            return _write(conn, rows)
    except errors.CheckViolation as exc:
        if not storage.is_missing_partition(exc):
            raise
    storage.ensure_partitions(conn, [row[0] for row in rows])
    return _write(conn, rows)


def write_rejects(conn: psycopg.Connection, decoded: Decoded) -> None:
    if not decoded.rejects:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO dead_letter (received_at, topic, payload, payload_size, reason, detail, site_code, "
            "device_code) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [dead_letter_row(r) for r in decoded.rejects],
        )


def write_statuses(conn: psycopg.Connection, decoded: Decoded) -> None:
    """Record device status changes (a repeated retained status is not a change)."""
    for change in decoded.statuses:
        cur = conn.execute(
            "UPDATE device SET status = %s, status_at = %s WHERE id = %s AND status IS DISTINCT FROM %s",
            (change.status, change.at, change.device_id, change.status),
        )
        if cur.rowcount:
            conn.execute(
                "INSERT INTO device_status_event (device_id, time, status) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (change.device_id, change.at, change.status),
            )


def mark_late(conn: psycopg.Connection, rows: list[Reading], late_before: datetime | None) -> None:
    """Note the time range and points of late rows (older than ``late_before``) for the rollups to recompute."""
    if late_before is None or not rows or min(row[0] for row in rows) >= late_before:
        return
    late = [row for row in rows if row[0] < late_before]
    mark_dirty(conn, min(r[0] for r in late), max(r[0] for r in late), sorted({r[1] for r in late}))


def write_batch(conn: psycopg.Connection, decoded: Decoded, *, late_before: datetime | None = None) -> WriteResult:
    """Write a decoded batch inside the caller's transaction (``late_before``: see ``mark_late``)."""
    written = write_readings(conn, decoded.rows)
    write_rejects(conn, decoded)
    write_statuses(conn, decoded)
    mark_late(conn, decoded.rows, late_before)
    return WriteResult(written, len(decoded.rows) - written, len(decoded.rejects))


def announce(conn: psycopg.Connection, batch_id: str, rows: list[Reading]) -> None:
    """Tell listeners (the API's live feed) which points got readings: one NOTIFY per batch, sent on commit."""
    if rows:
        payload = channels.readings_payload(batch_id, len(rows), {row[1] for row in rows})
        conn.execute("SELECT pg_notify(%s, %s)", (channels.READINGS, payload))
