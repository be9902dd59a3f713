"""The MQTT side of alerts (paho): signed interlock commands out, acknowledgements in, alarm events out.

Commands go to ``ehs/v1/{site}/{device}/cmd`` at QoS 1, not retained, signed with the device's own key
(``core.commands``). ``send`` never waits for the broker: ingest calls it from its stage thread, and a command
must not queue behind a database or a slow network (STYLE.md B3). paho keeps QoS 1 messages while it
reconnects; a device that does not confirm in time is the alerts worker's business (retries, then a critical
alarm). Software interlocks are a second layer behind hard-wired protection (SIS, BMS, fire panels): nothing may
depend on this path alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import orjson
import paho.mqtt.client as mqtt

from core import mqtt as mq
from core import topics
from core.commands import device_key, signed

_LOGGER = logging.getLogger(__name__)
AckHandler = Callable[[str, bytes, object], None]  # (topic, payload, MQTT 5 properties), on paho's network thread
#: The acknowledgements' subscription: ``ehs/v1/{site}/{device}/cmd/ack``.
ACK_FILTER = f"{topics.PREFIX}/+/+/{topics.CMD_ACK}"


class InterlockPort(Protocol):
    def send(self, site: str, device: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sign and publish a command; return the signed payload."""
        ...


class MqttInterlock:
    """One paho client: publishes commands and alarm events; with ``on_ack``, subscribes to acknowledgements."""

    def __init__(
        self,
        address: mq.BrokerAddress,
        *,
        secret: str | bytes,
        client_id: str,
        protocol: int | None = None,
        on_ack: AckHandler | None = None,
    ) -> None:
        self.address = address
        self.secret = secret
        self.on_ack = on_ack
        self.protocol = protocol or mq.detect_protocol(address)
        self.connected = threading.Event()
        self.sent = 0
        #: Messages outside the ack subscription, ignored: amqtt hands a new subscriber the retained messages of
        #: other topics too (the devices' retained statuses), which are not bad acknowledgements.
        self.foreign = 0
        self._keys: dict[tuple[str, str], bytes] = {}
        self._last_issued: dict[tuple[str, str], int] = {}
        self._issue_lock = threading.Lock()
        self._stopping = False
        self.client = mq.new_client(address, client_id, protocol=self.protocol)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(100_000)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, _userdata, _flags, reason_code, _props) -> None:
        if reason_code.is_failure:
            _LOGGER.error("MQTT broker refused the interlock client: %s", reason_code)
            return
        if self.on_ack is not None:
            client.subscribe(ACK_FILTER, qos=1)
        self.connected.set()
        _LOGGER.info("interlock client connected to %s", self.address.redacted())

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props) -> None:
        self.connected.clear()
        if not self._stopping:
            _LOGGER.warning("interlock client lost the broker (%s); reconnecting, commands are kept", reason_code)

    def _on_message(self, _client, _userdata, msg: mqtt.MQTTMessage) -> None:
        if self.on_ack is not None:
            try:
                topic = msg.topic
            except UnicodeDecodeError:  # not UTF-8: kept (escaped) for the dead letters
                topic = msg._topic.decode("utf-8", "backslashreplace")
            if not mqtt.topic_matches_sub(ACK_FILTER, topic):
                self.foreign += 1  # another topic's retained message (amqtt): neither an ack nor a bad one
                return
            self.on_ack(topic, msg.payload, getattr(msg, "properties", None))

    def start(self, *, wait: float | None = 10.0) -> None:
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()
        if wait and not self.connected.wait(wait):
            _LOGGER.warning("interlock client not connected after %.0f s; it keeps trying", wait)

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def key(self, site: str, device: str) -> bytes:
        key = self._keys.get((site, device))
        if key is None:
            key = self._keys[(site, device)] = device_key(self.secret, site, device)
        return key

    def send(self, site: str, device: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sign ``payload`` for the device and publish it at QoS 1 without waiting.

        A device refuses a command whose ``issued_at`` is not after the last one it accepted (replay protection,
        ``core.commands.check_command``), so two commands to one device in the same millisecond (two plan levels
        in one batch) get increasing ``issued_at``: the later one is moved on by a millisecond, with its expiry.
        """
        with self._issue_lock:
            last = self._last_issued.get((site, device))
            if last is not None and payload["issued_at"] <= last:
                shift = last + 1 - payload["issued_at"]
                payload = {
                    **payload,
                    "issued_at": payload["issued_at"] + shift,
                    "expires_at": payload["expires_at"] + shift,
                }
            self._last_issued[(site, device)] = payload["issued_at"]
        body = signed(payload, self.key(site, device))
        self.client.publish(topics.device_topic(site, device, topics.CMD), orjson.dumps(body), qos=1)
        self.sent += 1
        return body

    def resend(self, site: str, device: str, body: dict[str, Any]) -> None:
        """Publish an already signed payload again (a retry: same id, the device keeps it idempotent)."""
        self.client.publish(topics.device_topic(site, device, topics.CMD), orjson.dumps(body), qos=1)
        self.sent += 1

    def publish_alarm(self, site: str, body: bytes) -> None:
        self.client.publish(topics.alarms_topic(site), body, qos=1)
