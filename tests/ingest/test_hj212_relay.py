"""HJ 212 readings reach the rules: a frame over TCP -> the listener commits it and relays it as the device's
telemetry -> the ingest process that owns the site evaluates it like any MQTT reading -> a graded alarm. Real
PostgreSQL, real broker, real TCP (issue 15's gap: the rules ran only on MQTT readings)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.plantfile import FullPlant, MainFile, SafetySections, apply_full
from core.identity import sender_refusal
from core.plant import PlantConfig
from core.registry import load_index
from ingest.__main__ import SafetyStages
from ingest.decoders import Decoded, Decoder, RawMessage
from ingest.hj212.listener import Hj212Listener
from ingest.hj212.registry import load_loggers
from ingest.hj212.relay import MqttRelay, telemetry_of
from ingest.hj212.settings import Hj212Settings
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings
from tests.ingest.hj212_support import LoggerClient, logger_device, mn_of, upload
from tests.support import wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]
SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = {
    "rules": [
        {
            "id": "ww.cod",
            "name": "总排口 COD 高",
            "name_en": "Outfall COD high",
            "type": "limit",
            "select": {"key": "cod_mg_l"},
            "high": [{"at": 100, "severity": "high"}, {"at": 500, "severity": "critical"}],
        },
    ]
}


def _full(site: str) -> FullPlant:
    main = MainFile.model_validate(
        {
            "sites": [
                {
                    "code": site,
                    "name": f"测试厂 {site}",
                    "areas": [
                        {
                            "code": "wastewater",
                            "name": "污水站",
                            "process": "wastewater",
                            "devices": [logger_device(0), logger_device(1)],
                        }
                    ],
                }
            ],
            **RULES,
        }
    )
    plant = PlantConfig.model_validate(main.model_dump(include=set(PlantConfig.model_fields)))
    return FullPlant(
        plant, SafetySections.model_validate(main.model_dump(include=set(SafetySections.model_fields), by_alias=True))
    )


@pytest.fixture
def ingest(database_url: str, broker_url: str, site: str, tmp_path: Path) -> Iterator[IngestRunner]:
    with psycopg.connect(database_url) as conn:
        apply_full(conn=conn, full=_full(site), source="test")
    tag = uuid.uuid4().hex[:8]
    safety = SafetyStages(
        database_url=database_url, mqtt_url=broker_url, secret="test-secret", client_id=f"ingest-{tag}"
    )
    safety.standby_notifier = False
    runner = IngestRunner(
        database_url=database_url,
        mqtt_url=broker_url,
        spool_dir=tmp_path / "spool",
        settings=IngestSettings(client_id=f"ingest-{tag}", sites=[site]),
        evaluate=safety.evaluate,
        act=safety.act,
        tick=safety.tick,
        record_extra=safety.record,
        on_index=safety.on_index,
    )
    safety.start()
    runner.start()
    wait_for(runner.subscriber.connected.is_set, message="ingest to connect")
    yield runner
    runner.stop()
    safety.stop()


def _alarm(url: str, site: str) -> tuple | None:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT severity, priority, value, state, device, point FROM alarm "
            "WHERE rule = 'ww.cod' AND site = %s AND closed_at IS NULL",
            (site,),
        ).fetchone()


def test_an_hj212_frame_above_a_rule_raises_a_graded_alarm_and_flagged_values_raise_none(
    ingest: IngestRunner, database_url: str, broker_url: str, site: str
) -> None:
    relay = MqttRelay(broker_url, client_id=f"hj212-relay-{uuid.uuid4().hex[:8]}")
    relay.start()
    now = datetime.now(SHANGHAI).replace(tzinfo=None, microsecond=0)

    async def scenario() -> Hj212Listener:
        listener = Hj212Listener(
            database_url=database_url, relay=relay, settings=Hj212Settings(host="127.0.0.1", port=0, heartbeat_s=0.2)
        )
        await listener.start()
        try:
            client = await LoggerClient.connect(listener.port)
            # first a value during calibration (flag C): stored, never judged (it would be critical)
            await client.send(
                upload(mn_of(0), "2011", [{"w01018-Rtd": 900.0, "w01018-Flag": "C"}], when=now - timedelta(minutes=2))
            )
            assert (await client.receive()).cn == "9014"
            # then a real reading above the high limit, and one of the other logger below it
            await client.send(
                upload(
                    mn_of(0),
                    "2011",
                    [{"w01018-Rtd": 350.0, "w01018-Flag": "N"}, {"w01001-Rtd": 7.1, "w01001-Flag": "N"}],
                    when=now - timedelta(minutes=1),
                )
            )
            assert (await client.receive()).cn == "9014"
            other = await LoggerClient.connect(listener.port)
            await other.send(upload(mn_of(1), "2011", [{"w01018-Rtd": 40.0, "w01018-Flag": "N"}], when=now))
            assert (await other.receive()).cn == "9014"
            await client.close()
            await other.close()
        finally:
            await listener.stop()
        return listener

    try:
        listener = asyncio.run(scenario())
    finally:
        relay.stop()
    assert listener.counters["relayed"] == 2 and not listener.counters["relay_unconfirmed"]
    severity, priority, value, state, device, point = wait_for(
        lambda: _alarm(database_url, site), message="the COD alarm"
    )
    # graded like an MQTT reading: high, not critical (the calibration value never reached the rule)
    assert (severity, priority, value, state) == (3, 3, 350.0, "active_unacked")
    assert (device, point) == ("ww-logger-000", "cod_mg_l")
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT r.value, f.flag FROM reading r JOIN point p ON p.id = r.point_id JOIN device d ON "
            "d.id = p.device_id LEFT JOIN reading_flag f ON f.point_id = r.point_id AND f.time = r.time "
            "WHERE d.code = 'ww-logger-000' AND p.key = 'cod_mg_l' ORDER BY r.time"
        ).fetchall()
        other = conn.execute(
            "SELECT count(*) FROM alarm WHERE site = %s AND device = 'ww-logger-001'", (site,)
        ).fetchone()[0]
        dead = conn.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
    assert stored == [(900.0, "C"), (350.0, None)]  # stored once each, the flag kept (ingest's copy dropped)
    assert other == 0 and dead == 0


def test_only_the_relay_account_may_speak_for_devices_and_only_on_telemetry() -> None:
    class Props:
        def __init__(self, sender: str) -> None:
            self.UserProperty = [("sender", sender)]

    relays = frozenset({"ehs-hj212"})
    assert sender_refusal("cz01", "ww-1", Props("ehs-hj212"), "sender", relays=relays) is None
    assert sender_refusal("cz01", "ww-1", Props("ehs-hj212"), "sender") is not None
    assert sender_refusal("cz01", "ww-1", Props("cz01/other"), "sender", relays=frozenset({"cz01/other"}))
    assert sender_refusal("cz01", "ww-1", Props("cz01/ww-1"), "sender", relays=relays) is None


_VALUE = st.floats(-1e6, 1e6, allow_nan=False)
_FLAG = st.sampled_from(["N", "T", "C", "M", "F", "D", "S", "B"])


@settings(max_examples=40, deadline=None)
@given(
    items=st.lists(
        st.tuples(
            st.sampled_from(["cod_mg_l", "ph_ph", "flow_l_s", "pump_rs_code", "unmapped"]),
            st.integers(0, 60 * 48),
            _VALUE | st.none(),
            _FLAG,
        ),
        max_size=250,
    )
)
def test_relayed_telemetry_decodes_in_ingest_to_exactly_the_relayable_readings(hj212_index, items) -> None:
    """Whatever a logger reports, what the relay publishes is contract telemetry that ingest's own decoder takes
    without a dead letter, and it carries exactly the recent N/T-flagged readings of mapped points."""
    index, logger, decoder = hj212_index
    now = datetime.now(UTC).replace(microsecond=0)
    by_key = {v: k for k, v in logger.keys.items()}
    rows, flags, expected = [], [], {}
    ranges = {f.point_id: (f.valid_min, f.valid_max) for f in logger.fields.values()}
    kept = []
    for key, minutes_ago, value, flag in items:
        point = by_key.get(key, -1)
        low, high = ranges.get(point, (float("-inf"), float("inf")))
        if value is not None and not low <= value <= high:
            continue  # the listener refuses these before any row is made
        kept.append((key, minutes_ago, value, flag))
        when = now - timedelta(minutes=minutes_ago)
        rows.append((when, point, value, 0))
        if flag != "N":
            flags.append((point, when, flag))
    seen: dict[tuple[int, datetime], tuple] = {}
    for row, (key, minutes_ago, value, flag) in zip(rows, kept, strict=True):
        seen[(row[1], row[0])] = (key, minutes_ago, value, flag)  # a later duplicate wins, as in a dict
    flagged = {(p, t): f for p, t, f in flags}
    for (point, when), (_key, minutes_ago, value, _flag) in seen.items():
        if (
            point in logger.keys
            and value is not None
            and minutes_ago <= 24 * 60
            and flagged.get((point, when), "N") in ("N", "T")
            and index.devices
        ):
            expected[(point, when)] = value
    messages = telemetry_of(rows, flags, logger, now=now, max_age=timedelta(hours=24))
    out = Decoded()
    for topic, payload in messages:
        assert len(orjson.loads(payload)) >= 1
        decoder.decode_one(RawMessage(topic, payload, 1, False, now), out)
    assert not out.rejects, out.rejects
    assert {(p, t): v for t, p, v, _q in out.rows} == expected
    assert len(out.rows) == len(expected)


@pytest.fixture(scope="module")
def hj212_index(pg_admin_url: str, template_db: str):
    """The plant index and logger of a real database holding the HJ 212 plant (once for the property test)."""
    from tests.conftest import _create_database, _drop_database

    name = f"ehs_test_{uuid.uuid4().hex[:10]}"
    url = _create_database(pg_admin_url, name, template=template_db)
    site = f"r{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(url) as conn:
            apply_full(conn=conn, full=_full(site), source="test")
            index = load_index(conn)
            logger = load_loggers(conn).loggers[mn_of(0)]
        yield index, logger, Decoder(index)
    finally:
        _drop_database(pg_admin_url, name)


def test_mqtt_relay_reports_what_the_broker_did_not_confirm(broker_url: str) -> None:
    topic = f"ehs/v1/x{uuid.uuid4().hex[:6]}/d/telemetry"
    relay = MqttRelay(broker_url, client_id=f"hj212-relay-{uuid.uuid4().hex[:8]}")
    assert relay.publish([(topic, b"[]")], timeout_s=0.2) == 1  # never connected: nothing confirmed
    relay.start()
    try:
        assert relay.publish([(topic, b"[]"), (topic, b"[]")], timeout_s=30) == 0
    finally:
        relay.stop()
