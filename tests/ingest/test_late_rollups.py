"""Late readings published over MQTT reach the stored minute and hour rollups at ingest's next housekeeping, on
every storage path (continuous aggregates under TimescaleDB, rollup tables otherwise), without background jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from core import timeseries
from core.db import connect
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings
from ingest.writer import write_readings
from tests.support import Publisher, unique_code, wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]


def test_readings_five_hours_and_five_days_late_reach_the_rollups(
    plant_db: str, broker_url: str, site: str, tmp_path: Path
) -> None:
    hour = timedelta(hours=1)
    now = datetime.now(UTC)
    five_h, five_d = timeseries.floor(now - 5 * hour, hour), timeseries.floor(now - timedelta(days=5), hour)
    with connect(plant_db, autocommit=True) as conn:
        pid = conn.execute(
            "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id JOIN site s "
            "ON s.id = d.site_id WHERE s.code = %s AND d.code = 'gas-00' AND p.key = 'h2_ppm'",
            (site,),
        ).fetchone()[0]
        with conn.transaction():
            write_readings(conn, [(five_h + timedelta(minutes=1), pid, 10.0, 0), (five_d, pid, 10.0, 0)])
        if timeseries.continuous_aggregates(conn):  # as the refresh policies would have done by now
            for view in ("reading_1m", "reading_1h"):
                conn.execute(
                    "CALL refresh_continuous_aggregate(%s::regclass, NULL, %s::timestamptz)",
                    (view, timeseries.floor(now, hour)),
                )
        else:
            timeseries.refresh_rollups(conn, now=now)

    def stored() -> list:
        with connect(plant_db) as conn:
            return [
                conn.execute(
                    f"SELECT value_count, value_avg FROM {view} WHERE point_id = %s "  # noqa: S608
                    "AND bucket = %s",
                    (pid, bucket),
                ).fetchone()
                for view, bucket in (
                    ("reading_1m", five_h + timedelta(minutes=1)),
                    ("reading_1h", five_h),
                    ("reading_1m", five_d),
                    ("reading_1h", five_d),
                )
            ]

    assert stored() == [(1, 10.0), (1, 10.0), (1, 10.0), (1, 10.0)]
    settings = IngestSettings(client_id=unique_code("ingest-"), session_expiry_s=300, heartbeat_s=0.5)
    runner = IngestRunner(
        database_url=plant_db, mqtt_url=broker_url, spool_dir=tmp_path / "spool", settings=settings, retention_days=400
    )
    runner.start()
    publisher = Publisher(broker_url)
    try:
        wait_for(runner.subscriber.connected.is_set, message="ingest to connect")
        late = [
            {"ts": int((five_h + timedelta(minutes=1, seconds=30)).timestamp() * 1000), "values": {"h2_ppm": 20}},
            {"ts": int((five_d + timedelta(seconds=5)).timestamp() * 1000), "values": {"h2_ppm": 40}},
        ]

        def landed() -> bool:
            publisher.publish(f"ehs/v1/{site}/gas-00/telemetry", orjson.dumps(late)).wait_for_publish(10)
            with connect(plant_db) as conn:
                return conn.execute("SELECT count(*) FROM reading WHERE point_id = %s", (pid,)).fetchone()[0] == 4

        wait_for(landed, interval=0.5, timeout=60, message="late readings stored")
        wait_for(
            lambda: stored() == [(2, 15.0), (2, 15.0), (2, 25.0), (2, 25.0)],
            timeout=30,
            message="late readings in the rollups",
        )
    finally:
        publisher.close()
        runner.stop()
