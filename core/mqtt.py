"""MQTT connection helpers shared by every process: URL parsing, protocol detection, client factory.

paho-mqtt 2 with the VERSION2 callback API. MQTT 5 is used where the broker has it (Mosquitto), because it
lets a subscriber announce its Receive Maximum: ingest acknowledges only after commit, and with MQTT 3.1.1 a
broker's in-flight limit (Mosquitto: 20) would throttle it. The embedded amqtt broker speaks 3.1.1 only.
"""

from __future__ import annotations

import logging
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_LOGGER = logging.getLogger(__name__)

MQTTv5 = mqtt.MQTTv5
MQTTv311 = mqtt.MQTTv311


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse ``mqtt://user:password@host:port`` (``mqtts://`` for TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {parts.scheme!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or (8883 if tls else 1883),
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
            tls,
        )

    def redacted(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def new_client(
    address: BrokerAddress,
    client_id: str | None = None,
    *,
    protocol: int = MQTTv5,
    manual_ack: bool = False,
    clean: bool = True,
) -> mqtt.Client:
    """Create a configured (not yet connected) paho client."""
    kwargs = {} if protocol == MQTTv5 else {"clean_session": clean}
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"ehs-{uuid.uuid4().hex[:12]}",
        protocol=protocol,
        manual_ack=manual_ack,
        **kwargs,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


def connect_properties(*, session_expiry_s: int = 0, receive_maximum: int | None = None) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    return props


def detect_protocol(address: BrokerAddress, *, timeout: float = 5.0) -> int:
    """Return MQTTv5 if the broker accepts an MQTT 5 connection, else MQTTv311."""
    result: dict[str, object] = {}
    done = threading.Event()
    client = new_client(address, protocol=MQTTv5)

    def on_connect(_client, _userdata, _flags, reason_code, _props) -> None:
        result["rc"] = reason_code
        done.set()

    def on_disconnect(_client, _userdata, _flags, reason_code, _props) -> None:
        result.setdefault("rc", reason_code)
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(address.host, address.port, keepalive=10)
    except OSError as exc:
        raise ConnectionError(f"cannot reach the MQTT broker at {address.redacted()}: {exc}") from exc
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    rc = result.get("rc")
    # A 3.1.1 broker answers an MQTT 5 CONNECT with "unsupported protocol version" (0x84) or just closes.
    if rc is None or getattr(rc, "value", None) == 0x84:
        return MQTTv311
    if rc.is_failure:
        raise ConnectionError(f"the MQTT broker at {address.redacted()} refused the connection: {rc}")
    return MQTTv5


def connect_blocking(client: mqtt.Client, address: BrokerAddress, *, timeout: float = 10.0, **kwargs) -> None:
    """Connect and start the network loop; return once the broker has answered CONNACK successfully."""
    ready = threading.Event()
    failure: list[object] = []
    previous = client.on_connect

    def on_connect(c, userdata, flags, reason_code, props) -> None:
        if reason_code.is_failure:
            failure.append(reason_code)
        if previous is not None:
            previous(c, userdata, flags, reason_code, props)
        ready.set()

    client.on_connect = on_connect
    client.connect(address.host, address.port, keepalive=30, **kwargs)
    client.loop_start()
    if not ready.wait(timeout):
        client.loop_stop()
        raise TimeoutError(f"no CONNACK from {address.redacted()} within {timeout:.0f} s")
    client.on_connect = previous
    if failure:
        client.loop_stop()
        raise ConnectionError(f"the MQTT broker at {address.redacted()} refused the connection: {failure[0]}")


def network_probe(client: mqtt.Client) -> Callable[[], bool]:
    """After ``loop_start``: a check that is False once that network thread has ended (an exception in a callback,
    or a stop nobody asked for): nothing is sent or received any more."""
    thread = getattr(client, "_thread", None)  # paho 2 keeps its loop thread there
    return thread.is_alive if thread is not None else lambda: True
