"""How readings are stored, and keeping them within the retention, on each path.

- TimescaleDB (community license): ``reading`` is a hypertable with compression; ``reading_1m``/``reading_1h`` are
  continuous aggregates; retention and compression policies follow the settings.
- TimescaleDB, Apache-licensed build (``timescaledb.license = apache``): a hypertable, whose old chunks ``maintain``
  drops itself (policies are not in that build); the rollups are the plain tables; no compression.
- Plain PostgreSQL: ``reading`` is partitioned by UTC day (migration 0090); ``maintain`` creates partitions ahead
  and drops those that aged out of the retention (whole tables, no DELETE).

``detect`` reads all of it from the catalog, so it works for a role that may not read server settings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from psycopg import errors, sql

from core.db import execute

_LOGGER = logging.getLogger(__name__)

#: Daily partitions are kept this many days ahead of today (plain PostgreSQL).
AHEAD_DAYS = 3
#: The hourly continuous aggregate's refresh policy looks back this far: raw data must be kept longer.
HOURLY_REFRESH_WINDOW = timedelta(days=3)
#: Partitions are created and dropped under this lock timeout, so that a long query delays maintenance
#: instead of queueing every reader behind the DDL; maintenance tries again at its next run.
_LOCK_TIMEOUT = "3s"
_PARTITION_LOCK = 7_419_001  # advisory lock key: one partition maintainer at a time


@dataclass(frozen=True)
class Features:
    """What the database under ``reading`` offers, read from the catalog."""

    timescaledb: str | None  # extension version, None without it
    license: str | None  # 'timescale' (community) or 'apache'
    hypertable: bool
    compression: bool
    continuous_aggregates: bool
    partitions: bool  # plain PostgreSQL with daily partitions

    @property
    def policies(self) -> bool:
        """Retention/compression/refresh policies (background jobs) exist only in the community build."""
        return self.timescaledb is not None and self.license == "timescale"

    def describe(self) -> str:
        """For start-up banners after "TimescaleDB ": off, or on and which features."""
        if self.timescaledb is None:
            retention = "daily partitions dropped by age" if self.partitions else "none (reading is not partitioned)"
            return f"off (plain PostgreSQL: BRIN index, rollup tables; retention: {retention})"
        flags = {
            "hypertable": self.hypertable,
            "compression": self.compression,
            "continuous aggregates": self.continuous_aggregates,
        }
        on = ", ".join(name for name, flag in flags.items() if flag) or "nothing"
        off = ", ".join(name for name, flag in flags.items() if not flag)
        text = f"on ({self.timescaledb}, {self.license} license): {on}"
        if off:
            text += f"; off: {off}" + ("" if self.continuous_aggregates else " (plain rollup tables)")
        return text + "; retention: chunks dropped by age"


def detect(conn: psycopg.Connection) -> Features:
    """Read the features of this database from the catalog (no server settings needed)."""
    row = execute(conn, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    kind = execute(conn, "SELECT relkind FROM pg_class WHERE oid = to_regclass('reading')").fetchone()
    partitions = bool(kind and kind[0] == "p")
    if row is None:
        return Features(None, None, False, False, False, partitions)
    license_ = execute(conn, "SELECT coalesce(current_setting('timescaledb.license', true), 'timescale')").fetchone()[0]
    hyper = execute(
        conn, "SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = 'reading'"
    ).fetchone()
    caggs = execute(
        conn,
        "SELECT count(*) FROM timescaledb_information.continuous_aggregates "
        "WHERE view_name IN ('reading_1m', 'reading_1h')",
    ).fetchone()[0]
    return Features(
        row[0],
        license_,
        hyper is not None,
        bool(hyper and hyper[0]),
        caggs == 2 and license_ == "timescale",
        partitions,
    )


# --- plain PostgreSQL: daily partitions -----------------------------------------------------------------------


def _day(when: datetime) -> date:
    return when.astimezone(UTC).date()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def partitions(conn: psycopg.Connection) -> list[tuple[str, datetime | None, datetime]]:
    """The partitions of ``reading`` as (name, lower bound or None for MINVALUE, upper bound), oldest first."""
    rows = execute(
        conn,
        r"""
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'reading'::regclass ORDER BY 3""",
    ).fetchall()
    return [(name, lower, upper) for name, lower, upper in rows]


def _create_day(conn: psycopg.Connection, day: date) -> str:
    """Create and attach one day's partition (ATTACH takes a lighter lock on ``reading`` than PARTITION OF)."""
    name = f"reading_p{day:%Y%m%d}"
    execute(conn, sql.SQL("CREATE TABLE {} (LIKE reading INCLUDING DEFAULTS)").format(sql.Identifier(name)))
    execute(
        conn,
        sql.SQL("ALTER TABLE reading ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(name), sql.Literal(_midnight(day)), sql.Literal(_midnight(day + timedelta(days=1)))
        ),
    )
    return name


def ensure_partitions(conn: psycopg.Connection, times: Iterable[datetime]) -> list[str]:
    """Create the missing daily partitions for readings at ``times`` (each UTC day once); run in a transaction."""
    execute(conn, "SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
    before = execute(
        conn, "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)", (_LOCK_TIMEOUT,)
    ).fetchone()[0]
    try:
        return _ensure(conn, sorted({_day(t) for t in times}))
    finally:
        if not conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            execute(conn, "SELECT set_config('lock_timeout', %s, true)", (before,))


def _ensure(conn: psycopg.Connection, days: list[date]) -> list[str]:
    existing = partitions(conn)
    covered_until = max((upper for name, lower, upper in existing if lower is None), default=None)
    have = {name for name, _, _ in existing}
    made = []
    for day in days:
        name = f"reading_p{day:%Y%m%d}"
        if name not in have and (covered_until is None or _midnight(day) >= covered_until):
            made.append(_create_day(conn, day))
    return made


def is_missing_partition(exc: psycopg.Error) -> bool:
    """True for "no partition of relation ... found for row" (a reading on a day without a partition)."""
    return isinstance(exc, errors.CheckViolation) and "no partition" in str(exc)


# --- retention on every path ----------------------------------------------------------------------------------


def maintain(
    conn: psycopg.Connection, *, now: datetime, retention_days: int | None, features: Features | None = None
) -> dict[str, Any]:
    """Create partitions ahead and drop what aged out of the retention; run on an autocommit connection.

    Plain PostgreSQL: daily partitions from yesterday to ``AHEAD_DAYS`` ahead; a partition whose upper bound is
    older than ``now - retention`` is dropped. TimescaleDB: ``drop_chunks`` with the same cutoff (the community
    build also has a retention policy; doing it here too keeps retention working when background jobs fail).
    ``retention_days`` None: nothing is dropped.
    """
    features = features or detect(conn)
    cutoff = now - timedelta(days=retention_days) if retention_days else datetime.min.replace(tzinfo=UTC)
    done: dict[str, Any] = {"created": [], "dropped": []}
    if features.hypertable and retention_days:
        with conn.transaction():
            rows = execute(conn, "SELECT drop_chunks('reading', older_than => %s::timestamptz)", (cutoff,)).fetchall()
        done["dropped"] = [r[0] for r in rows]
        return done
    if not features.partitions:
        return done
    try:
        with conn.transaction():
            execute(conn, f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
            done["created"] = ensure_partitions(conn, [now + timedelta(days=d) for d in range(-1, AHEAD_DAYS + 1)])
            for name, _lower, upper in partitions(conn):
                if upper <= cutoff:
                    execute(conn, sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                    done["dropped"].append(name)
    except errors.LockNotAvailable:
        _LOGGER.info("reading partitions: a lock was not free within %s, trying again at the next run", _LOCK_TIMEOUT)
    return done


def check_retention(retention_days: int) -> None:
    """Refuse a retention shorter than the hourly aggregate's refresh window (plus a day of chunk width).

    Such a retention drops raw data that the next refresh of ``reading_1h`` still reads, and a continuous
    aggregate's refresh deletes the buckets whose raw rows are gone.
    """
    least = HOURLY_REFRESH_WINDOW + timedelta(days=1)
    if timedelta(days=retention_days) <= least:
        raise ValueError(
            f"EHS_RETENTION_DAYS={retention_days} must be more than {least.days} days: the hourly "
            f"rollup refreshes the last {HOURLY_REFRESH_WINDOW.days} days from raw readings"
        )


def apply_policies(
    conn: psycopg.Connection, *, retention_days: int, compress_after_days: int, features: Features | None = None
) -> list[str]:
    """Set the TimescaleDB retention and compression policies from the settings, each replaced atomically.

    Only the community build has policies; a policy that already has the wanted interval is left alone.
    Returns what changed.
    """
    check_retention(retention_days)
    features = features or detect(conn)
    if not features.policies or not features.hypertable:
        return []
    wanted = [("policy_retention", "drop_after", retention_days, "retention")]
    if features.compression:
        wanted.append(("policy_compression", "compress_after", compress_after_days, "compression"))
    changed = []
    for proc, key, days, kind in wanted:
        current = execute(
            conn,
            "SELECT config ->> %s FROM timescaledb_information.jobs WHERE proc_name = %s "
            "AND hypertable_name = 'reading'",
            (key, proc),
        ).fetchone()
        interval = execute(conn, "SELECT make_interval(days => %s)::text", (days,)).fetchone()[0]
        if current is not None and current[0] == interval:
            continue
        with conn.transaction():  # remove and add in one transaction: never a moment without a policy
            execute(conn, f"SELECT remove_{kind}_policy('reading', if_exists => true)")
            execute(conn, f"SELECT add_{kind}_policy('reading', make_interval(days => %s))", (days,))
        changed.append(f"{kind} {interval}")
    return changed


def storage_bytes(conn: psycopg.Connection) -> int:
    """Bytes on disk of ``reading`` with its indexes (all partitions or chunks, compressed or not)."""
    features = detect(conn)
    if features.hypertable:
        return execute(conn, "SELECT hypertable_size('reading')").fetchone()[0] or 0
    return execute(
        conn, "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint FROM pg_partition_tree('reading')"
    ).fetchone()[0]
