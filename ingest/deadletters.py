"""Retention of the dead-letter table: by age, per topic and day, and in all (ingest housekeeping).

Rejected input is kept with its reason (ARCHITECTURE.md), but not without bound: anyone who may publish can make
up topics, and every message on one becomes a row. So the housekeeping

* deletes rows older than ``dead_letter_days`` (the retention policy);
* keeps at most ``dead_letter_per_topic_day`` rows per topic and UTC day (the first ones: they show how a fault
  began) among the last two days;
* keeps at most ``dead_letter_max_rows`` rows in all (the newest).

Rows removed by a cap are counted in ``dead_letter_pruned`` per day, reason and cause, with an example topic.
The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from core.db import execute, fetch_all, fetch_one


@dataclass(frozen=True, slots=True)
class Pruned:
    aged: int
    topic_cap: int
    total_cap: int


def _delete_counted(conn: psycopg.Connection, delete: str, params: dict, cause: str) -> int:
    """Run ``delete`` (RETURNING received_at, reason, topic), count what it removed into ``dead_letter_pruned``."""
    return execute(
        conn,
        f"WITH gone AS ({delete} RETURNING received_at, reason, topic), counted AS ("
        "INSERT INTO dead_letter_pruned (day, reason, cause, rows, example_topic) "
        "SELECT (received_at AT TIME ZONE 'UTC')::date, reason, %(cause)s, count(*), min(left(topic, 200)) FROM gone "
        "GROUP BY 1, 2 ON CONFLICT (day, reason, cause) DO UPDATE SET rows = dead_letter_pruned.rows + EXCLUDED.rows "
        "RETURNING 1) SELECT count(*) FROM gone",
        {**params, "cause": cause},
    ).fetchone()[0]


def prune_dead_letters(
    conn: psycopg.Connection, *, now: datetime, keep_days: int, per_topic_day: int, max_rows: int
) -> Pruned:
    """Apply the retention policy once; return how many rows each rule removed."""
    now = now.astimezone(UTC)
    aged = execute(conn, "DELETE FROM dead_letter WHERE received_at < %s", (now - timedelta(days=keep_days),)).rowcount
    topic_cap = _delete_counted(
        conn,
        "DELETE FROM dead_letter d USING (SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY topic, "
        "(received_at AT TIME ZONE 'UTC')::date ORDER BY received_at, id) AS n FROM dead_letter "
        "WHERE received_at >= %(since)s) ranked WHERE n > %(cap)s) extra WHERE d.id = extra.id",
        {"since": (now - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0), "cap": per_topic_day},
        "topic_cap",
    )
    # the newest max_rows stay: find the first row beyond them along the primary key's index
    edge = execute(conn, "SELECT id FROM dead_letter ORDER BY id DESC OFFSET %s LIMIT 1", (max_rows,)).fetchone()
    total_cap = (
        0
        if edge is None
        else _delete_counted(conn, "DELETE FROM dead_letter WHERE id <= %(edge)s", {"edge": edge[0]}, "total_cap")
    )
    return Pruned(aged, topic_cap, total_cap)


# --- reading them (the API's dead-letter list) -------------------------------------------------------------------

# rows without a known site (a bad topic, an unknown site code) are visible only to callers of all sites
_SCOPE = "(%(scope_sites)s::int[] IS NULL OR dl.site_code IN (SELECT code FROM site WHERE id = ANY(%(scope_sites)s)))"
_COLUMNS = (
    "dl.id, dl.received_at, dl.topic, dl.payload_size, dl.reason, dl.detail, dl.site_code AS site, "
    "dl.device_code AS device, dl.payload"
)


def _scope(site_ids: Iterable[int] | None) -> dict:
    return {"scope_sites": None if site_ids is None else sorted(site_ids)}


def list_dead_letters(
    conn: psycopg.Connection,
    *,
    site_ids: Iterable[int] | None,
    before: int | None = None,
    site: str | None = None,
    reason: str | None = None,
    device: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[dict]:
    """Rejected messages of the sites ``site_ids`` (None: every site, and those of no known site), newest
    first, with ``id`` below ``before``, filtered by site code, reason, device code and time."""
    return fetch_all(
        conn,
        f"""
        SELECT {_COLUMNS} FROM dead_letter dl
        WHERE {_SCOPE} AND (%(after)s::bigint IS NULL OR dl.id < %(after)s)
          AND (%(site)s::text IS NULL OR dl.site_code = %(site)s)
          AND (%(reason)s::text IS NULL OR dl.reason = %(reason)s)
          AND (%(device)s::text IS NULL OR dl.device_code = %(device)s)
          AND (%(since)s::timestamptz IS NULL OR dl.received_at >= %(since)s)
          AND (%(until)s::timestamptz IS NULL OR dl.received_at < %(until)s)
        ORDER BY dl.id DESC LIMIT %(limit)s""",
        {
            **_scope(site_ids),
            "after": before,
            "site": site,
            "reason": reason,
            "device": device,
            "since": since,
            "until": until,
            "limit": limit,
        },
    )


def get_dead_letter(conn: psycopg.Connection, dead_letter_id: int, *, site_ids: Iterable[int] | None) -> dict | None:
    """One rejected message of the sites ``site_ids``, None when there is none."""
    return fetch_one(
        conn,
        f"SELECT {_COLUMNS} FROM dead_letter dl WHERE dl.id = %(id)s AND {_SCOPE}",
        {"id": dead_letter_id, **_scope(site_ids)},
    )
