"""Readings on every storage path (plain PostgreSQL, TimescaleDB, its Apache build): bucket edges, session time
zones, site calendars, late data, partitions and retention, features, roles, policies.

Most tests run on whichever path the server gives (``tests/conftest.py``) and expect the same answers; the rest
say which path they concern. Connections are autocommit: TimescaleDB refreshes cannot run in a transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from pydantic import ValidationError

from core import storage, timeseries
from core.db import connect, create_pool
from core.embedded import with_dbname
from core.migrate import migrate
from core.plant import apply_plant
from core.settings import CoreSettings
from ingest.writer import mark_late, write_readings
from tests.support import small_plant

pytestmark = pytest.mark.db
T = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def aconn(database_url: str) -> Iterator[psycopg.Connection]:
    with connect(database_url, autocommit=True) as conn:
        yield conn


def _points(conn: psycopg.Connection) -> list[int]:
    apply_plant(conn=conn, plant=small_plant("s1"), source="t")
    return [r[0] for r in conn.execute("SELECT id FROM point ORDER BY id").fetchall()]


def _write(conn: psycopg.Connection, rows: list[tuple[datetime, int, float]]) -> int:
    with conn.transaction():
        return write_readings(conn, [(t, pid, v, 0) for t, pid, v in rows])


def _materialize(conn: psycopg.Connection, upto: datetime) -> None:
    """Roll everything up to ``upto`` into stored buckets (as the refresh policies or refresh_rollups would)."""
    if timeseries.continuous_aggregates(conn):
        for view in ("reading_1m", "reading_1h"):
            conn.execute("CALL refresh_continuous_aggregate(%s::regclass, NULL, %s::timestamptz)", (view, upto))
    else:
        timeseries.refresh_rollups(conn, now=upto + timeseries.GRACE)


def _counts(rows: list[dict]) -> list[tuple[datetime, int]]:
    return [(r["bucket"], r["n"]) for r in rows]


# --- bucket edges and session time zones (item 2, 3) ----------------------------------------------------------


@pytest.mark.parametrize("materialized", [False, True], ids=["raw", "rolled-up"])
@pytest.mark.parametrize("session_tz", ["UTC", "Asia/Kolkata"])
def test_buckets_are_whole_at_unaligned_edges_in_any_session_zone(
    aconn: psycopg.Connection, materialized: bool, session_tz: str
) -> None:
    pid = _points(aconn)[0]
    s = timedelta(seconds=1)
    _write(
        aconn,
        [
            (T + 10 * s, pid, 1.0),
            (T + 50 * s, pid, 2.0),
            (T + 90 * s, pid, 3.0),
            (T + 160 * s, pid, 4.0),
            (T + 185 * s, pid, 5.0),
            (T - 20 * s, pid, 9.0),
        ],
    )
    aconn.execute(f"SET TimeZone = '{session_tz}'")
    if materialized:
        _materialize(aconn, T + timedelta(hours=2))
    minutes = timeseries.bucketed(aconn, point_id=pid, start=T + 30 * s, end=T + 150 * s, bucket="1m")
    assert _counts(minutes) == [(T, 2), (T + 60 * s, 1), (T + 120 * s, 1)]
    assert (minutes[0]["value_avg"], minutes[0]["value_last"], minutes[2]["value_max"]) == (1.5, 2.0, 4.0)
    hours = timeseries.bucketed(aconn, point_id=pid, start=T - timedelta(minutes=30), end=T + 30 * s, bucket="1h")
    assert _counts(hours) == [(T - timedelta(hours=1), 1), (T, 5)]
    assert hours[1]["value_min"] == 1.0 and hours[1]["value_last"] == 5.0
    # an aligned window gives the same buckets: edges change which buckets, never what a bucket holds
    aligned = timeseries.bucketed(aconn, point_id=pid, start=T, end=T + 180 * s, bucket="1m")
    assert _counts(aligned) == _counts(minutes)


def test_rollups_filled_in_another_session_zone_stay_on_utc_hours(aconn: psycopg.Connection) -> None:
    pid = _points(aconn)[0]
    _write(aconn, [(T + timedelta(minutes=m), pid, float(m)) for m in (5, 40, 70)])
    aconn.execute("SET TimeZone = 'Asia/Kolkata'")
    _materialize(aconn, T + timedelta(hours=3))
    aconn.execute("SET TimeZone = 'UTC'")
    stored = aconn.execute(
        "SELECT bucket, value_count FROM reading_1h WHERE point_id = %s ORDER BY 1", (pid,)
    ).fetchall()
    assert stored == [(T, 2), (T + timedelta(hours=1), 1)]


def test_service_connections_have_a_utc_session(database_url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with connect(database_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{name}\" SET TimeZone = 'Asia/Kolkata'")
    with psycopg.connect(database_url) as plain:
        assert plain.execute("SHOW TimeZone").fetchone()[0] == "Asia/Kolkata"  # the database's default
    with connect(database_url) as conn:
        assert conn.execute("SHOW TimeZone").fetchone()[0] == "UTC"
    pool = create_pool(database_url, max_size=1)
    try:
        with pool.connection() as conn:
            assert conn.execute("SHOW TimeZone").fetchone()["TimeZone"] == "UTC"
    finally:
        pool.close()


# --- site calendars (item 3) -----------------------------------------------------------------------------------


@pytest.mark.parametrize("materialized", [False, True], ids=["raw", "rolled-up"])
def test_days_months_and_years_follow_the_site_calendar(aconn: psycopg.Connection, materialized: bool) -> None:
    pid, other = _points(aconn)[:2]
    shanghai = [
        datetime(2026, 4, 30, 15, 30, tzinfo=UTC),  # 23:30 on 30 April in Shanghai
        datetime(2026, 4, 30, 16, 30, tzinfo=UTC),  # 00:30 on 1 May
        datetime(2026, 5, 1, 3, 0, tzinfo=UTC),
    ]  # 11:00 on 1 May
    kolkata = [
        datetime(2026, 4, 30, 18, 20, tzinfo=UTC),  # 23:50 on 30 April in Kolkata (+05:30)
        datetime(2026, 4, 30, 18, 40, tzinfo=UTC),
    ]  # 00:10 on 1 May
    _write(
        aconn,
        [(t, pid, float(i + 1)) for i, t in enumerate(shanghai)]
        + [(t, other, float(i + 1)) for i, t in enumerate(kolkata)],
    )
    aconn.execute("SET TimeZone = 'America/New_York'")  # the session's zone must not matter
    if materialized:
        _materialize(aconn, datetime(2026, 5, 2, tzinfo=UTC))
    days = timeseries.bucketed(
        aconn,
        point_id=pid,
        start=datetime(2026, 4, 30, 10, tzinfo=UTC),
        end=datetime(2026, 5, 1, 4, tzinfo=UTC),
        bucket="day",
    )  # the site's zone
    assert _counts(days) == [(datetime(2026, 4, 29, 16, tzinfo=UTC), 1), (datetime(2026, 4, 30, 16, tzinfo=UTC), 2)]
    assert days[1]["value_avg"] == 2.5 and days[1]["value_last"] == 3.0
    months = timeseries.bucketed(
        aconn,
        point_id=pid,
        start=datetime(2026, 4, 15, tzinfo=UTC),
        end=datetime(2026, 5, 10, tzinfo=UTC),
        bucket="month",
    )
    assert _counts(months) == [(datetime(2026, 3, 31, 16, tzinfo=UTC), 1), (datetime(2026, 4, 30, 16, tzinfo=UTC), 2)]
    years = timeseries.bucketed(
        aconn, point_id=pid, start=datetime(2026, 3, 1, tzinfo=UTC), end=datetime(2026, 3, 2, tzinfo=UTC), bucket="year"
    )
    assert _counts(years) == [(datetime(2025, 12, 31, 16, tzinfo=UTC), 3)]
    half_hour = timeseries.bucketed(
        aconn,
        point_id=other,
        start=datetime(2026, 4, 30, tzinfo=UTC),
        end=datetime(2026, 5, 1, tzinfo=UTC),
        bucket="day",
        tz="Asia/Kolkata",
    )
    assert _counts(half_hour) == [
        (datetime(2026, 4, 29, 18, 30, tzinfo=UTC), 1),
        (datetime(2026, 4, 30, 18, 30, tzinfo=UTC), 1),
    ]


# --- late readings (item 1) ----------------------------------------------------------------------------------


def test_readings_hours_and_days_late_reach_both_rollups_at_the_next_refresh(aconn: psycopg.Connection) -> None:
    pid = _points(aconn)[0]
    now = datetime.now(UTC).replace(microsecond=0)
    hour = timedelta(hours=1)
    five_h, five_d = timeseries.floor(now - 5 * hour, hour), timeseries.floor(now - timedelta(days=5), hour)
    _write(aconn, [(five_h + timedelta(minutes=1), pid, 10.0), (five_d + timedelta(minutes=1), pid, 10.0)])
    _materialize(aconn, timeseries.floor(now - timeseries.GRACE, hour))  # the policies ran: buckets stored
    late = [(five_h + timedelta(minutes=1, seconds=30), pid, 20.0, 0), (five_d + timedelta(seconds=5), pid, 40.0, 0)]
    with aconn.transaction():  # what ingest's writer does with a batch of late readings
        write_readings(aconn, late)
        mark_late(aconn, late, now - timeseries.LATE_AFTER)

    def stored(view: str, bucket: datetime) -> tuple | None:
        return aconn.execute(
            f"SELECT value_count, value_avg FROM {view} WHERE point_id = %s AND bucket = %s",  # noqa: S608
            (pid, bucket),
        ).fetchone()

    assert stored("reading_1h", five_h) == (1, 10.0)  # stale until refreshed
    timeseries.refresh_rollups(aconn, now=now, retention_days=400)  # ingest's housekeeping
    assert stored("reading_1m", five_h + timedelta(minutes=1)) == (2, 15.0)
    assert stored("reading_1h", five_h) == (2, 15.0)
    assert stored("reading_1m", five_d) == (1, 40.0)
    assert stored("reading_1h", five_d) == (2, 25.0)
    assert aconn.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0] == 0


# --- partitions and retention on plain PostgreSQL (item 6) ------------------------------------------------------


@pytest.mark.path("plain")
def test_partitions_are_made_ahead_and_dropped_whole_when_they_age_out(aconn: psycopg.Connection) -> None:
    pid = _points(aconn)[0]
    today = timeseries.floor(datetime.now(UTC), timedelta(days=1))
    day = timedelta(days=1)
    names = [name for name, _, _ in storage.partitions(aconn)]
    assert names[0] == "reading_before" and f"reading_p{today + 3 * day:%Y%m%d}" in names
    assert (
        _write(aconn, [(T, pid, 1.0), (today + timedelta(hours=12), pid, 2.0), (today + 20 * day, pid, 3.0)]) == 3
    )  # a day without a partition yet
    assert f"reading_p{today + 20 * day:%Y%m%d}" in [name for name, _, _ in storage.partitions(aconn)]
    assert _write(aconn, [(today + 20 * day, pid, 3.0), (T, pid, 1.0)]) == 0  # duplicates still dropped
    done = storage.maintain(aconn, now=today + 10 * day + timedelta(hours=1), retention_days=5)
    assert "reading_before" in done["dropped"] and f"reading_p{today:%Y%m%d}" in done["dropped"]
    assert f"reading_p{today + 13 * day:%Y%m%d}" in done["created"]
    left = [name for name, _, _ in storage.partitions(aconn)]
    assert left == [f"reading_p{today + d * day:%Y%m%d}" for d in (9, 10, 11, 12, 13, 20)]
    assert aconn.execute("SELECT to_regclass('reading_before')").fetchone()[0] is None
    assert [r[0] for r in aconn.execute("SELECT value FROM reading").fetchall()] == [3.0]


@pytest.mark.path("plain")
def test_an_existing_unpartitioned_reading_table_is_attached_not_copied(pg_admin_url: str) -> None:
    from yoyo import get_backend, read_migrations
    from yoyo.migrations import MigrationList

    from core.migrate import MIGRATIONS_DIR, _yoyo_url

    name = f"ehs_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_dbname(pg_admin_url, name)
    try:
        backend = get_backend(_yoyo_url(url))
        with backend.lock():
            early = MigrationList([m for m in read_migrations(str(MIGRATIONS_DIR)) if m.id < "0090"])
            backend.apply_migrations(backend.to_apply(early))
        backend.connection.close()
        tomorrow = timeseries.floor(datetime.now(UTC), timedelta(days=1)) + timedelta(days=1, hours=3)
        with connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO reading (time, point_id, value) VALUES (%s, 1, 1.0), (%s, 1, 2.0)", (T, tomorrow))
            oid = conn.execute("SELECT 'reading'::regclass::oid").fetchone()[0]
        migrate(url)
        with connect(url, autocommit=True) as conn:
            assert storage.detect(conn).partitions
            before = storage.partitions(conn)[0]
            assert before[0] == "reading_before" and before[1] is None
            assert before[2] == timeseries.floor(tomorrow, timedelta(days=1)) + timedelta(days=1)
            assert conn.execute("SELECT 'reading_before'::regclass::oid").fetchone()[0] == oid  # same table
            assert _write(conn, [(T, 1, 1.0), (tomorrow, 1, 2.0)]) == 0
            assert _write(conn, [(before[2] + timedelta(hours=1), 1, 3.0)]) == 1
            assert conn.execute("SELECT count(*) FROM reading").fetchone()[0] == 3
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_a_retention_shorter_than_the_hourly_refresh_window_is_refused() -> None:
    with pytest.raises(ValidationError, match="retention_days"):
        CoreSettings(retention_days=4)
    with pytest.raises(ValueError, match="more than 4 days"):
        storage.check_retention(4)
    storage.check_retention(5)


# --- features, roles, licenses, policies (items 4, 5, 6) ------------------------------------------------------


def test_a_normal_role_migrates_where_an_administrator_created_the_extension(
    pg_admin_url: str, storage_features: storage.Features
) -> None:
    role, name = f"ehs_role_{uuid.uuid4().hex[:8]}", f"ehs_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
    admin_url = with_dbname(pg_admin_url, name)
    try:
        if storage_features.timescaledb:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute("CREATE EXTENSION timescaledb")
        info = psycopg.conninfo.conninfo_to_dict(admin_url)
        host, port = info.get("host") or "127.0.0.1", info.get("port") or 5432
        # a URL (yoyo takes URLs); the embedded server listens on a socket directory, not a TCP host
        url = (
            f"postgresql://{role}@/{name}?host={host}&port={port}"
            if str(host).startswith("/")
            else f"postgresql://{role}@{host}:{port}/{name}"
        )
        with connect(url) as conn:
            assert not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        report = migrate(url, settings=CoreSettings(database_url=url, retention_days=30))
        assert report.applied and report.timescaledb == (storage_features.timescaledb is not None)
        with connect(url) as conn:
            assert storage.detect(conn) == storage_features
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE "{role}"')


@pytest.mark.path("apache")
def test_the_apache_build_gets_a_hypertable_rollup_tables_and_chunk_retention(aconn: psycopg.Connection) -> None:
    features = storage.detect(aconn)
    assert (features.license, features.hypertable, features.compression, features.continuous_aggregates) == (
        "apache",
        True,
        False,
        False,
    )
    assert "off: compression, continuous aggregates (plain rollup tables)" in features.describe()
    assert storage.apply_policies(aconn, retention_days=30, compress_after_days=7) == []
    pid = _points(aconn)[0]
    now = datetime.now(UTC)
    _write(aconn, [(now - timedelta(days=20), pid, 1.0), (now, pid, 2.0)])
    done = storage.maintain(aconn, now=now, retention_days=10)
    assert len(done["dropped"]) == 1
    assert [r[0] for r in aconn.execute("SELECT value FROM reading").fetchall()] == [2.0]


@pytest.mark.path("timescaledb")
def test_policies_follow_the_settings_and_are_replaced_in_one_transaction(aconn: psycopg.Connection) -> None:
    jobs = "SELECT proc_name, config FROM timescaledb_information.jobs WHERE hypertable_name = 'reading' ORDER BY 1"
    assert storage.apply_policies(aconn, retention_days=30, compress_after_days=7) == [
        "retention 30 days",
        "compression 7 days",
    ]
    assert storage.apply_policies(aconn, retention_days=30, compress_after_days=7) == []
    assert storage.apply_policies(aconn, retention_days=60, compress_after_days=7) == ["retention 60 days"]
    found = aconn.execute(jobs).fetchall()
    assert [(p, c.get("drop_after") or c.get("compress_after")) for p, c in found] == [
        ("policy_compression", "7 days"),
        ("policy_retention", "60 days"),
    ]
    with pytest.raises(ValueError, match="EHS_RETENTION_DAYS"):
        storage.apply_policies(aconn, retention_days=3, compress_after_days=1)
    assert aconn.execute(jobs).fetchall() == found
