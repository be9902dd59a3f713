"""Ingest against a real broker and a real PostgreSQL: exactly once per (point, time), nothing lost on a
crash (SIGKILL) or while the database is down, bad input kept in the dead letters."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import orjson
import psycopg
import pytest

from core.migrate import migrate
from core.plant import apply_plant
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings
from tests.support import Publisher, StoppablePostgres, count, small_plant, spawn, stop_process, unique_code, wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]

T0_MS = int(time.time() * 1000) - 600_000  # ten minutes ago: timestamps are unique and well inside limits


def _runner(db_url: str, broker_url: str, spool: Path) -> IngestRunner:
    settings = IngestSettings(client_id=unique_code("ingest-"), session_expiry_s=300, heartbeat_s=0.5)
    runner = IngestRunner(database_url=db_url, mqtt_url=broker_url, spool_dir=spool, settings=settings)
    runner.start()
    wait_for(runner.subscriber.connected.is_set, message="ingest to connect")
    return runner


def _telemetry(site: str, device: str) -> str:
    return f"ehs/v1/{site}/{device}/telemetry"


def _message(i: int, per_message: int = 10) -> bytes:
    """Message i carries readings at T0 + (i * per_message + j) ms of h2, co and voc."""
    return orjson.dumps(
        [
            {"ts": T0_MS + i * per_message + j, "values": {"h2_ppm": i % 100, "co_ppm": j, "voc_ppm": 1.5}}
            for j in range(per_message)
        ]
    )


def _readings(url: str, site: str, device: str = "%") -> int:
    return count(
        url,
        "SELECT count(*) FROM reading r JOIN point p ON p.id = r.point_id "
        "JOIN device d ON d.id = p.device_id JOIN site s ON s.id = d.site_id "
        "WHERE s.code = %s AND d.code LIKE %s",
        (site, device),
    )


def _wait_subscribed(publisher: Publisher, url: str, site: str) -> None:
    """Publish probe readings (on gas-01) until one is stored: the subscription then exists."""

    def probe() -> bool:
        publisher.publish(_telemetry(site, "gas-01"), orjson.dumps({"h2_ppm": 1})).wait_for_publish(10)
        return _readings(url, site, "gas-01") > 0

    wait_for(probe, interval=0.5, timeout=60, message="ingest to subscribe")


def test_published_readings_land_exactly_once(plant_db: str, broker_url: str, site: str, tmp_path: Path) -> None:
    runner = _runner(plant_db, broker_url, tmp_path / "spool")
    publisher = Publisher(broker_url)
    try:
        infos = [publisher.publish(_telemetry(site, "gas-00"), _message(i)) for i in range(50)]
        # a redelivery: the same readings again, and once more inside one message
        infos += [publisher.publish(_telemetry(site, "gas-00"), _message(i)) for i in range(10)]
        infos.append(
            publisher.publish(
                _telemetry(site, "gas-00"),
                orjson.dumps([{"ts": T0_MS, "values": {"h2_ppm": 0}}, {"ts": T0_MS, "values": {"h2_ppm": 0}}]),
            )
        )
        for info in infos:
            info.wait_for_publish(10)
        wait_for(lambda: runner.pipeline.counters.received >= len(infos), message="all messages received")
        wait_for(
            lambda: (
                runner.pipeline.counters.transactions
                and runner.pipeline.queue_depth() == 0
                and runner.pipeline._handoff.empty()
            ),
            message="pipeline idle",
        )
        wait_for(lambda: _readings(plant_db, site) == 50 * 10 * 3, message="1500 readings")
        with psycopg.connect(plant_db) as conn:
            total, distinct = conn.execute("SELECT count(*), count(DISTINCT (point_id, time)) FROM reading").fetchone()
        assert total == distinct == 1500
        counters = runner.pipeline.counters
        decoded = 60 * 30 + 2
        wait_for(lambda: counters.readings_written + counters.readings_duplicate == decoded, message="counters")
        assert (counters.readings_written, counters.readings_duplicate) == (1500, decoded - 1500)
    finally:
        publisher.close()
        runner.stop()


def test_bad_input_goes_to_dead_letters_and_ingest_keeps_going(
    plant_db: str, broker_url: str, site: str, tmp_path: Path
) -> None:
    runner = _runner(plant_db, broker_url, tmp_path / "spool")
    publisher = Publisher(broker_url)
    bad = {
        "bad_json": (_telemetry(site, "gas-00"), b"{not json"),
        "bad_value_type": (_telemetry(site, "gas-00"), orjson.dumps({"h2_ppm": "high"})),
        "unknown_device": (_telemetry(site, "ghost-99"), orjson.dumps({"h2_ppm": 1})),
        "unknown_point": (_telemetry(site, "gas-00"), orjson.dumps({"o3_ppm": 1})),
        "out_of_range": (_telemetry(site, "gas-00"), orjson.dumps({"co_ppm": 5000})),
        "bad_time": (_telemetry(site, "gas-00"), orjson.dumps({"ts": "later", "values": {"h2_ppm": 1}})),
        "oversized": (_telemetry(site, "gas-00"), orjson.dumps({"h2_ppm": 1, "pad": "x" * 300_000})),
    }
    try:
        for topic, payload in bad.values():
            publisher.publish(topic, payload).wait_for_publish(10)
        publisher.publish(_telemetry(site, "gas-01"), orjson.dumps({"h2_ppm": 2.5})).wait_for_publish(10)
        wait_for(
            lambda: count(plant_db, "SELECT count(*) FROM dead_letter WHERE site_code = %s", (site,)) == 7,
            message="seven dead letters",
        )
        wait_for(lambda: _readings(plant_db, site) == 1, message="the good reading after the bad ones")
        with psycopg.connect(plant_db) as conn:
            rows = conn.execute(
                "SELECT reason, payload_size, length(payload), topic FROM dead_letter WHERE site_code = %s", (site,)
            ).fetchall()
        assert {r[0] for r in rows} == set(bad)
        oversized = next(r for r in rows if r[0] == "oversized")
        assert oversized[1] > 300_000 and oversized[2] == 256 * 1024
    finally:
        publisher.close()
        runner.stop()


def test_device_status_from_the_retained_topic(plant_db: str, broker_url: str, site: str, tmp_path: Path) -> None:
    publisher = Publisher(broker_url)
    status_topic = f"ehs/v1/{site}/gas-00/status"
    publisher.publish(status_topic, b"online", retain=True).wait_for_publish(10)
    runner = _runner(plant_db, broker_url, tmp_path / "spool")  # subscribes after: gets the retained status
    try:
        status = lambda: count(plant_db, "SELECT count(*) FROM device WHERE code = 'gas-00' AND status = 'online'")  # noqa: E731
        wait_for(status, message="retained online status")
        publisher.publish(status_topic, b"offline", retain=True).wait_for_publish(10)
        wait_for(lambda: count(plant_db, "SELECT count(*) FROM device_status_event") == 2, message="two events")
        assert count(plant_db, "SELECT count(*) FROM device WHERE code = 'gas-00' AND status = 'offline'") == 1
    finally:
        publisher.publish(status_topic, b"", retain=True).wait_for_publish(10)  # clear the retained message
        publisher.close()
        runner.stop()


class _Stream:
    """Publish messages at a steady pace in a thread, recording which ones the broker acknowledged."""

    def __init__(self, publisher: Publisher, topic: str, total: int, rate: float) -> None:
        self.publisher, self.topic, self.total, self.rate = publisher, topic, total, rate
        self.sent: dict[int, int] = {}  # message mid -> message number
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        for i in range(self.total):
            info = self.publisher.publish(self.topic, _message(i))
            self.sent[info.mid] = i
            time.sleep(max(0.0, start + (i + 1) / self.rate - time.monotonic()))

    def accepted(self) -> set[int]:
        return {i for mid, i in self.sent.items() if mid in self.publisher.acked}


def _expected_rows(plant_db: str, site: str, accepted: set[int]) -> None:
    expected = len(accepted) * 10 * 3
    wait_for(
        lambda: _readings(plant_db, site, "gas-00") >= expected,
        timeout=60,
        message=f"{expected} readings from {len(accepted)} accepted messages",
    )
    with psycopg.connect(plant_db) as conn:
        stored = {
            int(r[0])
            for r in conn.execute(
                "SELECT DISTINCT ((extract(epoch FROM time) * 1000)::bigint - %s) / 10 FROM reading r "
                "JOIN point p ON p.id = r.point_id JOIN device d ON d.id = p.device_id WHERE d.code = 'gas-00'",
                (T0_MS,),
            )
        }
        total, distinct = conn.execute("SELECT count(*), count(DISTINCT (point_id, time)) FROM reading").fetchone()
    assert accepted <= stored, f"missing messages: {sorted(accepted - stored)[:20]}"
    assert total == distinct, "a reading was stored twice"


@pytest.mark.e2e
def test_sigkill_mid_stream_loses_nothing(plant_db: str, broker_url: str, site: str, tmp_path: Path) -> None:
    env = {
        "EHS_DATABASE_URL": plant_db,
        "EHS_MQTT_URL": broker_url,
        "EHS_DATA_DIR": str(tmp_path),
        "EHS_INGEST_CLIENT_ID": unique_code("ingest-kill-"),
        "EHS_INGEST_SESSION_EXPIRY_S": "600",
        "EHS_INGEST_HEARTBEAT_S": "0.5",
    }
    log = tmp_path / "ingest.log"
    proc = spawn("ingest", env, log)
    publisher = Publisher(broker_url)
    try:
        _wait_subscribed(publisher, plant_db, site)  # the persistent session must exist before the stream
        stream = _Stream(publisher, _telemetry(site, "gas-00"), total=1500, rate=250.0)
        stream.thread.start()
        wait_for(lambda: _readings(plant_db, site, "gas-00") > 1000, message="ingest writing")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        time.sleep(0.5)  # messages keep arriving at the broker while ingest is dead
        proc = spawn("ingest", env, log)
        stream.thread.join(60)
        wait_for(lambda: len(stream.accepted()) == len(stream.sent), message="broker acknowledgements")
        _expected_rows(plant_db, site, stream.accepted())
        assert _readings(plant_db, site, "gas-00") == len(stream.accepted()) * 30
    finally:
        publisher.close()
        stop_process(proc)


@pytest.mark.e2e
def test_database_down_mid_stream_spools_and_replays(broker_url: str, site: str, tmp_path: Path) -> None:
    pg = StoppablePostgres(tmp_path / "pgdata")
    migrate(pg.url)
    with psycopg.connect(pg.url) as conn:
        apply_plant(conn=conn, plant=small_plant(site), source="test")
    runner = _runner(pg.url, broker_url, tmp_path / "spool")
    publisher = Publisher(broker_url)
    try:
        _wait_subscribed(publisher, pg.url, site)
        stream = _Stream(publisher, _telemetry(site, "gas-00"), total=1200, rate=200.0)
        stream.thread.start()
        wait_for(lambda: _readings(pg.url, site, "gas-00") > 300, message="ingest writing")
        pg.stop()
        wait_for(lambda: runner.pipeline.counters.spooled_batches >= 3, message="batches spooled")
        assert not runner.pipeline.counters.db_up
        assert list((tmp_path / "spool").glob("*.batch"))
        pg.start()
        stream.thread.join(60)
        wait_for(lambda: len(stream.accepted()) == len(stream.sent), message="broker acknowledgements")
        wait_for(lambda: runner.pipeline.counters.db_up, timeout=60, message="database back")
        _expected_rows(pg.url, site, stream.accepted())
        assert runner.pipeline.counters.replayed_batches >= 3
        assert not list((tmp_path / "spool").glob("*.batch"))
    finally:
        publisher.close()
        runner.stop()
        pg.close()


def test_ingest_through_the_embedded_amqtt_broker(plant_db: str, site: str, tmp_path: Path) -> None:
    """A fresh machine without mosquitto gets amqtt (MQTT 3.1.1): ingest falls back and still loses nothing."""
    from core import mqtt as mq
    from core.embedded import start_broker

    broker = start_broker(tmp_path / "amqtt", prefer="amqtt")
    try:
        assert broker.kind == "amqtt"
        runner = _runner(plant_db, broker.url, tmp_path / "spool")
        assert runner.protocol == mq.MQTTv311
        publisher = Publisher(broker.url)
        try:
            for info in [publisher.publish(_telemetry(site, "gas-00"), _message(i)) for i in range(40)]:
                info.wait_for_publish(10)
            wait_for(lambda: _readings(plant_db, site) == 40 * 30, message="1200 readings through amqtt")
        finally:
            publisher.close()
            runner.stop()
    finally:
        broker.stop()
