"""The retained status of every device reaches ingest, however many devices the broker holds status for."""

from __future__ import annotations

import queue

import pytest

from core import mqtt as mq
from core import topics
from ingest.decoders import RawMessage
from ingest.subscriber import Subscriber
from tests.support import Publisher, unique_code, wait_for

pytestmark = pytest.mark.broker

# More than Mosquitto queues for one client beyond its receive window (max_queued_messages, 1000 by default):
# at QoS 1 the rest of the retained burst would be dropped.
DEVICES = 1500


def test_retained_status_of_more_devices_than_the_broker_queues_all_arrive(broker_url: str, site: str) -> None:
    publisher = Publisher(broker_url)
    status = [topics.device_topic(site, f"dev-{i:04d}", topics.STATUS) for i in range(DEVICES)]
    try:
        for topic in status:
            publisher.publish(topic, b"online", retain=True)
        wait_for(lambda: len(publisher.acked) >= DEVICES, message="the broker to take every retained status")
        sink: queue.Queue[RawMessage] = queue.Queue()  # unbounded: this test is about the broker, not back-pressure
        subscriber = Subscriber(
            mq.BrokerAddress.parse(broker_url),
            sink,
            subscriptions=topics.SUBSCRIPTIONS,
            client_id=unique_code("status-"),
            session_expiry_s=0,
            receive_maximum=100,
        )
        seen: set[str] = set()

        def ours() -> int:
            while True:
                try:
                    msg = sink.get_nowait()
                except queue.Empty:
                    return len(seen)
                if msg.topic.startswith(f"{topics.PREFIX}/{site}/"):
                    assert msg.retain and msg.payload == b"online"
                    seen.add(msg.topic)

        subscriber.start()
        try:
            wait_for(lambda: ours() >= DEVICES, timeout=60, message=f"{DEVICES} retained statuses")
        finally:
            subscriber.stop()
        assert seen == set(status)
    finally:
        for topic in status:  # leave the shared broker as it was
            publisher.publish(topic, b"", retain=True)
        wait_for(lambda: len(publisher.acked) >= 2 * DEVICES, message="retained statuses cleared")
        publisher.close()
