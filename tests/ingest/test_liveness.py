"""Liveness that tells the truth, with real processes: a stuck ingest pipeline makes ``python -m ingest`` exit
non-zero with the stuck part named in its heartbeat, the alerts worker (another real process) raises the critical
``service.silent`` alarm for it and clears it when a fresh ingest is back; a killed alerts worker is reported the
same way by ingest."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import psycopg
import pytest

from alerts.watchdog import SILENT_RULE
from core import topics
from tests.alerts.helpers import apply
from tests.alerts.notify_support import DING_SECRET, DING_TOKEN, SECRET, add_channel, stand_ins
from tests.alerts.providers import text_of
from tests.alerts.test_notify import safety
from tests.support import Publisher, spawn, stop_process, unique_code, wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]

FAST = {
    "EHS_INGEST_HEARTBEAT_S": "0.5",
    "EHS_INGEST_STUCK_S": "3",
    "EHS_INGEST_WATCH_STALE_S": "3",
    "EHS_ALERTS_HEARTBEAT_S": "0.5",
    "EHS_ALERTS_WATCH_STALE_S": "3",
    "EHS_ALERTS_PUBLISH_ALARMS": "false",
    "EHS_SECRET_KEY": "liveness-test",
}


def _env(db: str, broker: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"EHS_DATABASE_URL": db, "EHS_MQTT_URL": broker, "EHS_DATA_DIR": str(tmp_path), **FAST, **extra}


def _silent_alarm(db: str, device: str) -> tuple | None:
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT condition_active, severity, message, state FROM alarm WHERE rule = %s AND device = %s",
            (SILENT_RULE, device),
        ).fetchone()


def _heartbeats(db: str, service: str) -> list[dict]:
    with psycopg.connect(db) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT counters FROM service_heartbeat WHERE service = %s ORDER BY updated_at DESC", (service,)
            ).fetchall()
        ]


def _readings(db: str) -> int:
    with psycopg.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM reading").fetchone()[0]


def test_stuck_ingest_exits_and_is_reported_by_the_alerts_worker(
    database_url: str, broker_url: str, site: str, tmp_path: Path
) -> None:
    with psycopg.connect(database_url) as conn:
        apply(conn, site)
    ingest_env = _env(
        database_url, broker_url, tmp_path, EHS_INGEST_CLIENT_ID=unique_code("live-"), EHS_INGEST_SESSION_EXPIRY_S="300"
    )
    alerts = spawn(
        "alerts",
        _env(database_url, broker_url, tmp_path, EHS_ALERTS_CLIENT_ID=unique_code("live-a-")),
        tmp_path / "alerts.log",
    )
    ingest = spawn("ingest", ingest_env, tmp_path / "ingest.log")
    publisher = Publisher(broker_url)
    topic = topics.device_topic(site, "gas-01", topics.TELEMETRY)
    blocker = psycopg.connect(database_url)
    try:

        def probe() -> bool:
            publisher.publish(topic, orjson.dumps({"h2_ppm": 1.0})).wait_for_publish(10)
            return _readings(database_url) > 0

        wait_for(probe, interval=0.5, timeout=60, message="ingest to store a reading")
        assert _silent_alarm(database_url, "ingest") is None  # healthy: no alarm
        # the database stops taking readings (a lock nobody releases): the record thread hangs in its COPY
        blocker.execute("LOCK TABLE reading IN EXCLUSIVE MODE")
        publisher.publish(topic, orjson.dumps({"h2_ppm": 2.0})).wait_for_publish(10)
        assert ingest.wait(60) == 3  # non-zero: the supervisor restarts it
        last = _heartbeats(database_url, "ingest")[0]
        assert "record" in last["stuck"] and last["liveness"]["record"]["state"] == "stuck"
        alarm = wait_for(
            lambda: (a := _silent_alarm(database_url, "ingest")) and a[0] and a,
            message="the service.silent alarm raised by the alerts worker",
        )
        assert alarm[1] == 4 and "record" in alarm[2]  # critical, and it says which part
        blocker.rollback()
        ingest = spawn("ingest", ingest_env, tmp_path / "ingest.log")  # what a supervisor does
        wait_for(
            lambda: (a := _silent_alarm(database_url, "ingest")) and not a[0],
            message="the alarm to return to normal once a fresh ingest beats",
        )
        wait_for(lambda: _readings(database_url) >= 2, message="the held reading, redelivered and stored")
        assert alerts.poll() is None
    finally:
        blocker.close()
        publisher.close()
        stop_process(ingest)
        stop_process(alerts)
    assert "ingest is stuck: record" in (tmp_path / "ingest.log").read_text()


def test_killed_alerts_worker_is_reported_by_ingest_which_then_notifies(
    database_url: str, broker_url: str, site: str, tmp_path: Path
) -> None:
    with psycopg.connect(database_url) as conn:
        apply(conn, site, safety())  # every alarm notifies the operators' group bots
        add_channel(conn, "ding", "dingtalk", f"dingtalk://{DING_SECRET}@{DING_TOKEN}/")
    with stand_ins(enforce_limits=False) as p:
        notify = {"EHS_SECRET_KEY": SECRET, "EHS_ALERTS_NOTIFY_ENDPOINTS": json.dumps({"dingtalk": p.base})}
        alerts_env = _env(database_url, broker_url, tmp_path, EHS_ALERTS_CLIENT_ID=unique_code("live-a-"), **notify)
        alerts = spawn("alerts", alerts_env, tmp_path / "alerts.log")
        ingest = spawn(
            "ingest",
            _env(database_url, broker_url, tmp_path, EHS_INGEST_CLIENT_ID=unique_code("live-"), **notify),
            tmp_path / "ingest.log",
        )
        try:
            wait_for(
                lambda: _heartbeats(database_url, "alerts") and _heartbeats(database_url, "ingest"),
                message="both heartbeats",
            )
            alerts.kill()  # SIGKILL: it cannot say goodbye
            alerts.wait(10)
            alarm = wait_for(
                lambda: (a := _silent_alarm(database_url, "alerts")) and a[0] and a,
                message="ingest to raise service.silent for the alerts worker",
            )
            assert alarm[1] == 4 and "no heartbeat" in alarm[2]
            # nobody else is left to send it: ingest's standby notifier does
            wait_for(
                lambda: any(
                    "Safety service silent" in text_of(m) or "安全服务无响应" in text_of(m)
                    for m in p.messages("dingtalk")
                ),
                message="the silence alarm at the group bot",
            )
            alerts = spawn("alerts", alerts_env, tmp_path / "alerts.log")
            wait_for(lambda: not _silent_alarm(database_url, "alerts")[0], message="the alarm to return to normal")
            assert ingest.poll() is None
        finally:
            stop_process(alerts)
            stop_process(ingest)
    # a clean stop removes the heartbeat: only a death leaves one behind (the killed worker's)
    assert len(_heartbeats(database_url, "alerts")) == 1 and _heartbeats(database_url, "ingest") == []
    text = (tmp_path / "ingest.log").read_text()
    assert "this ingest process sends notifications until one is back" in text
    assert "an alerts worker is back: the standby notifier stops" in text


def test_a_runner_reports_its_parts_and_a_dead_network_thread(plant_db: str, broker_url: str, tmp_path: Path) -> None:
    from ingest.runner import IngestRunner
    from ingest.settings import IngestSettings

    runner = IngestRunner(
        database_url=plant_db,
        mqtt_url=broker_url,
        spool_dir=tmp_path / "spool",
        settings=IngestSettings(client_id=unique_code("parts-"), heartbeat_s=0.5),
    )
    runner.start()
    try:
        wait_for(runner.subscriber.connected.is_set, message="ingest to connect")
        wait_for(
            lambda: {"stages", "record", "housekeeping", "mqtt"} <= set(runner.liveness.report()),
            message="every part reporting",
        )
        assert runner.failing() == []
        runner.subscriber.client.loop_stop()  # paho's network thread ends without being asked to
        assert runner.failing() == ["mqtt"] and runner.failures() == ["mqtt (thread ended)"]
        wait_for(
            lambda: _heartbeats(plant_db, "ingest") and _heartbeats(plant_db, "ingest")[0]["stuck"] == ["mqtt"],
            message="the heartbeat naming the dead part",
        )
    finally:
        runner.stop()
