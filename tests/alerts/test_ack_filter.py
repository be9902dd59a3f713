"""amqtt hands a new subscriber the retained messages of other topics too: the devices' retained statuses reached
the alerts worker's ack handler and became ``bad_ack`` dead letters. Messages outside the ack subscription are now
ignored and counted (``foreign``); acknowledgements still arrive. On the embedded amqtt broker (the pure-Python
broker of a bare machine), started here whatever ``EHS_EMBEDDED_BROKER`` says; the installed amqtt (0.12.1) matches
retained topics correctly, so the filter itself is checked with the messages handed to paho's callback."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from alerts.interlock import ACK_FILTER, MqttInterlock
from core import mqtt as mq
from core import topics
from core.embedded import start_broker
from tests.support import wait_for

pytestmark = [pytest.mark.broker]


@pytest.fixture
def amqtt_url(tmp_path: Path) -> Iterator[str]:
    service = start_broker(tmp_path / "amqtt", prefer="amqtt")
    try:
        assert service.kind == "amqtt"
        yield service.url
    finally:
        service.stop()


def _publish(url: str, topic: str, payload: bytes, *, retain: bool) -> None:
    address = mq.BrokerAddress.parse(url)
    client = mq.new_client(address, protocol=mq.MQTTv311)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(timeout=30)
    finally:
        client.disconnect()
        client.loop_stop()


def test_retained_messages_of_other_topics_are_ignored_not_taken_for_acks(amqtt_url: str) -> None:
    site = f"s{uuid.uuid4().hex[:6]}"
    status = topics.device_topic(site, "fan-01", topics.STATUS)
    ack = topics.device_topic(site, "fan-01", topics.CMD_ACK)
    _publish(amqtt_url, status, b'{"online": true}', retain=True)
    received: list[str] = []
    lock = threading.Lock()

    def on_ack(topic: str, _payload: bytes, _props: object) -> None:
        with lock:
            received.append(topic)

    interlock = MqttInterlock(
        mq.BrokerAddress.parse(amqtt_url),
        secret="s",
        client_id=f"ack-filter-{uuid.uuid4().hex[:6]}",
        protocol=mq.MQTTv311,
        on_ack=on_ack,
    )
    interlock.start(wait=30)
    try:
        assert interlock.connected.is_set()
        _publish(amqtt_url, ack, b'{"id": "x"}', retain=False)
        wait_for(lambda: received, message="the acknowledgement")
    finally:
        interlock.stop()
    assert received == [ack]  # the retained status, if the broker handed it over, was not taken for an ack
    assert interlock.foreign in (0, 1)  # amqtt 0.12.1 matches retained topics correctly (0); older ones did not


@pytest.mark.parametrize(
    ("topic", "passed"),
    [
        ("ehs/v1/s1/fan-01/cmd/ack", True),
        ("ehs/v1/s1/fan-01/status", False),
        ("ehs/v1/s1/fan-01/telemetry", False),
        ("ehs/v1/s1/cmd/ack", False),
        ("ehs/v1/s1/a/b/cmd/ack", False),
        ("other/v1/s1/fan-01/cmd/ack", False),
    ],
)
def test_only_the_ack_subscriptions_topics_reach_the_handler(topic: str, passed: bool) -> None:
    got: list[str] = []
    interlock = MqttInterlock(
        mq.BrokerAddress.parse("mqtt://127.0.0.1:1"),
        secret="s",
        client_id="x",
        protocol=mq.MQTTv311,
        on_ack=lambda t, _p, _q: got.append(t),
    )
    interlock._on_message(None, None, SimpleNamespace(topic=topic, payload=b"{}"))
    assert (got == [topic]) is passed
    assert interlock.foreign == (0 if passed else 1)
    assert ACK_FILTER == f"{topics.PREFIX}/+/+/{topics.CMD_ACK}"
