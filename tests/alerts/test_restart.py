"""Restart with active alarms, through real ingest: the new process takes up the open alarms from the database,
adds no duplicate while the condition lasts, re-sends no interlock, and sees the return to normal."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import psycopg
import pytest

from core import topics
from ingest.__main__ import SafetyStages
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings
from tests.alerts.helpers import apply
from tests.support import Publisher, wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]


def _ingest(db: str, broker: str, tmp_path: Path) -> tuple[IngestRunner, SafetyStages]:
    safety = SafetyStages(database_url=db, mqtt_url=broker, secret="s", client_id=f"r-{uuid.uuid4().hex[:8]}")
    runner = IngestRunner(
        database_url=db,
        mqtt_url=broker,
        spool_dir=tmp_path / "spool",
        settings=IngestSettings(client_id=f"restart-{uuid.uuid4().hex[:8]}", session_expiry_s=60),
        evaluate=safety.evaluate,
        act=safety.act,
        tick=safety.tick,
        record_extra=safety.record,
        on_index=safety.on_index,
    )
    safety.start()
    runner.start()
    wait_for(runner.subscriber.connected.is_set, message="ingest to connect")
    return runner, safety


def _rows(db: str, sql: str) -> list[tuple]:
    with psycopg.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_open_alarms_are_taken_up_after_a_restart(
    database_url: str, broker_url: str, site: str, tmp_path: Path
) -> None:
    with psycopg.connect(database_url) as conn:
        apply(conn, site)
    topic = topics.device_topic(site, "gas-01", topics.TELEMETRY)
    publisher = Publisher(broker_url)
    runner, safety = _ingest(database_url, broker_url, tmp_path)
    try:
        publisher.publish(topic, orjson.dumps({"h2_ppm": 900.0}))
        wait_for(lambda: _rows(database_url, "SELECT 1 FROM alarm WHERE rule = 'gas.h2'"), message="the alarm")
    finally:
        runner.stop()
        safety.stop()
    commands = len(_rows(database_url, "SELECT 1 FROM interlock_command"))

    runner, safety = _ingest(database_url, broker_url, tmp_path)  # a new process, knowing nothing
    try:
        assert safety.engine is not None and safety.engine.active()  # taken up from the database
        publisher.publish(topic, orjson.dumps({"h2_ppm": 950.0}))  # still high
        publisher.publish(topic, orjson.dumps({"h2_ppm": 0.5}))
        wait_for(
            lambda: _rows(database_url, "SELECT 1 FROM alarm WHERE rule = 'gas.h2' AND NOT condition_active"),
            message="the return to normal",
        )
    finally:
        runner.stop()
        safety.stop()
        publisher.close()
    alarms = _rows(database_url, "SELECT state, activations FROM alarm WHERE rule = 'gas.h2'")
    assert alarms == [("cleared_unacked", 1)]  # one alarm, one activation: no duplicate
    assert len(_rows(database_url, "SELECT 1 FROM interlock_command")) == commands  # no interlock re-sent
