"""The MQTT side of ingest: a persistent QoS 1 session whose messages are acknowledged only after commit
(retained device status is subscribed at QoS 0: see ``core.topics.SUBSCRIPTIONS``).

``on_message`` does one thing: put the message on the bounded queue. When the queue is full it blocks the
network thread, which stops reading the socket and pushes back through TCP to the broker: nothing is dropped
here. The MQTT 5 Receive Maximum we announce is only a first line: Mosquitto 2.0.11 honours it until the first
acknowledgements and then sends whatever it has queued (measured here), so the pipeline's own bounds (this
queue, and a handoff of a few batches) are what keep ingest's memory flat.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from core import mqtt as mq
from core.clock import Clock, SystemClock
from ingest.decoders import RawMessage

_LOGGER = logging.getLogger(__name__)


class Subscriber:
    def __init__(
        self,
        address: mq.BrokerAddress,
        sink: queue.Queue[RawMessage],
        *,
        subscriptions: tuple[tuple[str, int], ...],
        client_id: str,
        protocol: int = mq.MQTTv5,
        receive_maximum: int = 8000,
        session_expiry_s: int = 7 * 24 * 3600,
        shared_group: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.address = address
        self.sink = sink
        self.subscriptions = (
            tuple((f"$share/{shared_group}/{t}", qos) for t, qos in subscriptions) if shared_group else subscriptions
        )
        self.protocol = protocol
        self.receive_maximum = receive_maximum
        self.session_expiry_s = session_expiry_s
        self.clock = clock or SystemClock()
        self.connected = threading.Event()
        #: Monotonic time since when the broker is lost (None while connected): long silence is an alarm.
        self.disconnected_since: float | None = time.monotonic()
        self._stopping = threading.Event()
        self._network: Callable[[], bool] = lambda: True
        # Packet ids are only meaningful within one connection: after a reconnect the broker redelivers
        # whatever was not acknowledged, so acknowledgements for an older connection are dropped.
        self._generation = 0
        self.client = mq.new_client(address, client_id, protocol=protocol, manual_ack=True, clean=False)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # paho callbacks run on the network thread: keep them short.
    def _on_connect(self, client, _userdata, flags, reason_code, _props) -> None:
        if reason_code.is_failure:
            _LOGGER.error("MQTT broker refused ingest: %s", reason_code)
            return
        self._generation += 1
        client.subscribe(list(self.subscriptions))
        _LOGGER.info("ingest connected to %s (session present: %s)", self.address.redacted(), flags.session_present)
        self.disconnected_since = None
        self.connected.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props) -> None:
        self.connected.clear()
        if self.disconnected_since is None:
            self.disconnected_since = time.monotonic()
        if not self._stopping.is_set():
            _LOGGER.warning("ingest lost the MQTT broker (%s); reconnecting", reason_code)

    def _on_message(self, _client, _userdata, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # not UTF-8: kept (escaped) for the dead letters
            topic = msg._topic.decode("utf-8", "backslashreplace")
        raw = RawMessage(
            topic,
            msg.payload,
            msg.qos,
            msg.retain,
            self.clock.now(),
            msg.mid,
            self._generation,
            getattr(msg, "properties", None),
        )
        while True:
            try:
                self.sink.put(raw, timeout=1.0)
                return
            except queue.Full:
                if self._stopping.is_set():
                    return

    def start(self) -> None:
        """Connect (retrying in the background until the broker answers) and start the network loop."""
        kwargs = {}
        if self.protocol == mq.MQTTv5:
            kwargs = {
                "clean_start": False,
                "properties": mq.connect_properties(
                    session_expiry_s=self.session_expiry_s, receive_maximum=self.receive_maximum
                ),
            }
        self.client.connect_async(self.address.host, self.address.port, keepalive=30, **kwargs)
        self.client.loop_start()
        self._network = mq.network_probe(self.client)

    def disconnected_s(self) -> float:
        """Seconds without the broker (0 while connected)."""
        since = self.disconnected_since
        return 0.0 if since is None else round(time.monotonic() - since, 1)

    def network_alive(self) -> bool:
        """False when paho's network thread ended while we did not ask it to (nothing would arrive any more)."""
        return self._network() or self._stopping.is_set()

    def ack(self, messages: list[RawMessage]) -> None:
        """Acknowledge messages once what they carried is committed or spooled."""
        generation = self._generation
        for msg in messages:
            if msg.qos > 0 and msg.generation == generation:
                self.client.ack(msg.mid, msg.qos)

    def stop(self) -> None:
        self._stopping.set()
        self.client.disconnect()
        self.client.loop_stop()
