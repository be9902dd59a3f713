"""The optional sender check (core.identity): where the broker names a message's sender in an MQTT 5 user
property, telemetry and acknowledgements whose topic is another device's are rejected with the reason (dead
letter), never silently; without the setting nothing changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from alerts import commands as machine
from alerts import flows
from alerts.settings import AlertSettings
from alerts.worker import AlertsWorker
from core import mqtt as mq
from core.identity import device_username, sender_refusal
from ingest.decoders import Decoder, Limits, RawMessage, Reason
from tests.alerts.helpers import apply
from tests.alerts.test_interlock_broker import FAST, OP, SECRET
from tests.ingest.test_decoders import NOW, TOPIC
from tests.ingest.test_decoders import decoder as decoder  # noqa: F401 - the fixture
from tests.support import wait_for

PROPERTY = "ehs-sender"


def _props(*senders: str) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    if senders:
        props.UserProperty = [(PROPERTY, s) for s in senders]
    return props


def _decode(decoder: Decoder, props: Properties | None, sender_property: str | None):
    decoder.limits = Limits(max_payload_bytes=4096, sender_property=sender_property)
    return decoder.decode_batch([RawMessage(TOPIC, orjson.dumps({"h2_ppm": 1.0}), 1, False, NOW, 1, 0, props)])


def test_ingest_keeps_the_senders_own_telemetry_and_rejects_another_devices(decoder: Decoder) -> None:
    assert len(_decode(decoder, _props("s1/gas-01"), PROPERTY).rows) == 1
    for props, why in (
        (_props("s2/gas-01"), "not by 's1/gas-01'"),
        (_props(), "missing"),
        (None, "missing"),
        (_props("s1/gas-01", "s1/gas-01"), "more than once"),
    ):
        out = _decode(decoder, props, PROPERTY)
        assert out.rows == [] and [r.reason for r in out.rejects] == [Reason.WRONG_SENDER]
        assert why in out.rejects[0].detail
    assert len(_decode(decoder, _props("s2/gas-01"), None).rows) == 1  # unchecked unless configured


@given(st.text(min_size=0, max_size=40))
def test_any_other_sender_is_refused(sender: str) -> None:
    why = sender_refusal("s1", "gas-01", _props(sender), PROPERTY)
    assert (why is None) == (sender == device_username("s1", "gas-01"))


@pytest.mark.db
@pytest.mark.broker
def test_alerts_refuses_an_acknowledgement_from_another_sender(database_url: str, broker_url: str, site: str) -> None:
    with psycopg.connect(database_url) as conn:
        apply(conn, site, FAST)
    worker = AlertsWorker(
        database_url=database_url,
        mqtt_url=broker_url,
        secret=SECRET,
        protocol=mq.MQTTv5,
        settings=AlertSettings(
            client_id=f"alerts-{uuid.uuid4().hex[:8]}", tick_s=0.1, notify=False, sender_property=PROPERTY
        ),
    )
    device = mq.new_client(mq.BrokerAddress.parse(broker_url), f"dev-{uuid.uuid4().hex[:8]}", protocol=mq.MQTTv5)
    device.connect(mq.BrokerAddress.parse(broker_url).host, mq.BrokerAddress.parse(broker_url).port)
    device.loop_start()
    worker.start()
    try:
        with psycopg.connect(database_url) as conn:
            command_id = flows.request_command(
                conn=conn,
                site=site,
                device="fan-01",
                action="exhaust_fan.on",
                actor=OP,
                reason="test",
                now=datetime.now(UTC),
            )["id"]

        def status() -> str:
            with psycopg.connect(database_url) as conn:
                return machine.get_command(conn=conn, command_id=command_id)["status"]

        wait_for(lambda: status() == "issued", message="the command sent")
        topic = f"ehs/v1/{site}/fan-01/cmd/ack"
        forged = orjson.dumps({"id": str(command_id), "status": "failed", "detail": "forged", "state": {}})
        real = orjson.dumps({"id": str(command_id), "status": "done", "detail": "", "state": {}})
        # as a broker that names the sender would deliver them: first from fan-01 of another site, then its own
        device.publish(topic, forged, qos=1, properties=_props(f"{site}x/fan-01")).wait_for_publish(10)
        device.publish(topic, real, qos=1, properties=_props(f"{site}/fan-01")).wait_for_publish(10)
        wait_for(lambda: status() == "done", message="the sender's own acknowledgement applied")
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT reason, detail FROM dead_letter WHERE topic = %s", (topic,)).fetchall()
        assert rows == [("bad_ack", f"sent by '{site}x/fan-01', not by '{site}/fan-01'")]
    finally:
        worker.stop()
        device.disconnect()
        device.loop_stop()
