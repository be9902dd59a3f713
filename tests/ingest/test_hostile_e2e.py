"""Under attack, through the real broker and a real PostgreSQL (issue 11, "What done looks like" and item 7):
a stream of hostile messages on every device topic of a site while good readings flow and an incident is played.
Every good reading is committed, the rules still raise their alarms and ingest still publishes the interlock
commands, every hostile message is in the dead letters, and ingest's threads are alive. Then the same as a
property: any mix of hostile and good messages, published on the broker."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import topics
from ingest.__main__ import SafetyStages
from ingest.decoders import RawMessage
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings
from tests.alerts.helpers import apply
from tests.alerts.test_interlock_broker import Spy
from tests.fuzzing import budget, hostile_payloads, nested
from tests.support import Publisher, count, wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]

DEVICES = ["gas-01", "gas-02", "cab-01", "fan-01", "spr-01", "spr-sim"]

#: One of each kind of hostile input the issue names (and a few more).
HOSTILE = [
    b'{"ts": "0001-01-01T00:00:00+08:00", "values": {"temp_c": 25}}',
    b'{"ts": "9999-12-31T23:59:59-08:00", "values": {"h2_ppm": 1}}',
    b'{"ts": 99999999999999999999, "values": {"h2_ppm": 1}}',
    b'{"ts": -62135596800001, "values": {"h2_ppm": 1}}',
    b'{"h2_ppm\\u0000": 1}',
    b'{"\\u0000": "\\u0000"}',
    b'{"h2_ppm": "\\u0000"}',
    b'{"h2_ppm": NaN}',
    b'{"h2_ppm": Infinity}',
    b'{"h2_ppm": 1e400}',
    b'{"h2_ppm": 123456789012345678901234567890}',
    b'{"h2_ppm": "\\ud800"}',
    b'{"values": [1, 2]}',
    b'{"values": {"h2_ppm": {"deep": [1]}}}',
    b'[1, "two", null, {"ts": true}]',
    b"\xff\xfe\x00garbage",
    b"",
    nested(5000),
    b'{"h2_ppm": 1, "pad": "' + b"x" * 300_000 + b'"}',
]


@pytest.fixture
def ingest(database_url: str, broker_url: str, site: str, tmp_path: Path) -> Iterator[dict]:
    with psycopg.connect(database_url) as conn:
        apply(conn, site)
    tag = uuid.uuid4().hex[:8]
    safety = SafetyStages(
        database_url=database_url, mqtt_url=broker_url, secret="test-secret", client_id=f"ingest-{tag}"
    )
    runner = IngestRunner(
        database_url=database_url,
        mqtt_url=broker_url,
        spool_dir=tmp_path / "spool",
        settings=IngestSettings(client_id=f"ingest-{tag}", session_expiry_s=60),
        evaluate=safety.evaluate,
        act=safety.act,
        tick=safety.tick,
        record_extra=safety.record,
        on_index=safety.on_index,
    )
    spy = Spy(broker_url, site)
    safety.start()
    runner.start()
    publisher = Publisher(broker_url)
    try:
        wait_for(runner.subscriber.connected.is_set, message="ingest to connect")
        _wait_subscribed(publisher, database_url, site)
        yield {"runner": runner, "db": database_url, "spy": spy, "publisher": publisher, "site": site}
    finally:
        publisher.close()
        runner.stop()
        safety.stop()
        spy.close()


def _wait_subscribed(publisher: Publisher, db: str, site: str) -> None:
    def probe() -> bool:
        publisher.publish(
            topics.device_topic(site, "fan-01", topics.TELEMETRY), orjson.dumps({"fan_running_bool": 0})
        ).wait_for_publish(10)
        return count(db, "SELECT count(*) FROM reading") > 0

    wait_for(probe, interval=0.5, timeout=60, message="ingest to subscribe")


def _dead(db: str, topic: str, payload: bytes, after_id: int) -> int:
    return count(
        db,
        "SELECT count(*) FROM dead_letter WHERE topic = %s AND payload = %s AND id > %s",
        (topic, payload[: 256 * 1024], after_id),
    )


def _max_dead(db: str) -> int:
    return count(db, "SELECT coalesce(max(id), 0) FROM dead_letter")


def test_under_attack_good_readings_alarms_and_interlocks_go_on(ingest: dict) -> None:
    db, site, publisher, spy = ingest["db"], ingest["site"], ingest["publisher"], ingest["spy"]
    runner = ingest["runner"]
    start_id = _max_dead(db)
    t0 = int(time.time() * 1000) - 120_000
    good_total = 300
    stop = threading.Event()

    def good_stream() -> None:
        for i in range(good_total):
            publisher.publish(
                topics.device_topic(site, "gas-02", topics.TELEMETRY),
                orjson.dumps({"ts": t0 + i, "values": {"co_ppm": 1.0 + i % 10}}),
            ).wait_for_publish(10)
            time.sleep(0.002)

    attack = [
        (topics.device_topic(site, device, channel), payload)
        for device in DEVICES
        for channel in (topics.TELEMETRY, topics.STATUS)
        for payload in HOSTILE
        if channel == topics.TELEMETRY or len(payload) < 1000
    ]

    def hostile_stream() -> None:
        for topic, payload in attack:
            if stop.is_set():
                return
            publisher.publish(topic, payload).wait_for_publish(10)

    threads = [threading.Thread(target=good_stream), threading.Thread(target=hostile_stream)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # the incident is played while the attack goes on
    publisher.publish(
        topics.device_topic(site, "gas-01", topics.TELEMETRY), orjson.dumps({"h2_ppm": 900.0})
    ).wait_for_publish(10)
    publisher.publish(
        topics.device_topic(site, "cab-01", topics.TELEMETRY), orjson.dumps({"cell_temp_c": 75.0})
    ).wait_for_publish(10)
    for thread in threads:
        thread.join(120)

    [fan] = wait_for(
        lambda: [c for c in spy.to("fan-01") if c["action"] == "exhaust_fan.on"][:1],
        timeout=30,
        message="the exhaust fan's interlock on the broker",
    )
    wait_for(
        lambda: [c for c in spy.to("cab-01") if c["action"] == "charge.stop"],
        timeout=30,
        message="the cabinet's charge stop on the broker",
    )
    wait_for(
        lambda: count(db, "SELECT count(*) FROM alarm WHERE rule IN ('gas.h2', 'cell.hot')") == 2,
        message="both alarms recorded",
    )
    wait_for(
        lambda: count(db, "SELECT count(*) FROM interlock_command WHERE id = %s", (fan["id"],)) == 1,
        message="the fan's command recorded",
    )
    wait_for(
        lambda: (
            count(
                db,
                "SELECT count(*) FROM reading r JOIN point p ON p.id = r.point_id "
                "WHERE p.key = 'co_ppm' AND r.time >= to_timestamp(%s / 1000.0)",
                (t0,),
            )
            == good_total
        ),
        timeout=60,
        message="every good reading",
    )
    missing = [(t, p[:60]) for t, p in attack if _dead(db, t, p, start_id) == 0]
    wait_for(
        lambda: not [1 for t, p in attack if _dead(db, t, p, start_id) == 0],
        timeout=60,
        message=f"every hostile message in the dead letters (missing at first: {len(missing)})",
    )
    counters = runner.pipeline.counters
    assert runner.pipeline.running and all(t.is_alive() for t in runner.pipeline._threads)
    assert (counters.spooled_batches, counters.detector_errors, counters.isolated_batches) == (0, 0, 0)
    assert count(db, "SELECT count(*) FROM dead_letter WHERE reason = 'decode_error'") == 0


KEYS = ["h2_ppm", "co_ppm", "cell_temp_c"]


@budget(6)
@given(
    st.lists(st.tuples(st.sampled_from(DEVICES + ["ghost"]), hostile_payloads(KEYS)), min_size=1, max_size=10),
    st.integers(1, 10),
)
def test_fuzz_through_the_broker(ingest: dict, hostile: list, goods: int) -> None:
    db, site, publisher, runner = ingest["db"], ingest["site"], ingest["publisher"], ingest["runner"]
    start_id = _max_dead(db)
    base = int(time.time() * 1000) - 60_000 + (int(time.monotonic() * 1000) % 50_000)
    sent = []
    for i, (device, payload) in enumerate(hostile):
        topic = topics.device_topic(site, device, topics.TELEMETRY)
        publisher.publish(topic, payload).wait_for_publish(10)
        sent.append((topic, payload))
        if i < goods:
            publisher.publish(
                topics.device_topic(site, "gas-02", topics.TELEMETRY),
                orjson.dumps({"ts": base + i, "values": {"co_ppm": 2.0}}),
            ).wait_for_publish(10)
    wait_for(
        lambda: (
            count(
                db,
                "SELECT count(*) FROM reading r JOIN point p ON p.id = r.point_id JOIN device d ON "
                "d.id = p.device_id WHERE d.code = 'gas-02' AND r.time = ANY(%s)",
                ([datetime.fromtimestamp((base + i) / 1000, UTC) for i in range(min(goods, len(hostile)))],),
            )
            == min(goods, len(hostile))
        ),
        timeout=30,
        message="the good readings",
    )
    for topic, payload in sent:
        oracle = runner.decoder.decode_batch([RawMessage(topic, payload, 1, False, datetime.now(UTC))])
        if oracle.rejects:
            wait_for(
                lambda t=topic, p=payload: _dead(db, t, p, start_id) > 0,
                timeout=30,
                message=f"the dead letter of {payload[:60]!r}",
            )
    assert runner.pipeline.running and runner.pipeline.counters.detector_errors == 0
