"""HJ 212 readings onto the one path of a reading: the contract's telemetry topic of their device.

The rules and detectors run in the ingest process that owns the site (ARCHITECTURE.md, scale-out: every reading
of a site reaches the one process that evaluates it, so stateful rules stay whole). So the listener does not
evaluate anything itself: once a frame's readings are committed, it publishes them, QoS 1, as
``ehs/v1/{site}/{device}/telemetry`` ``[{"ts": epoch ms, "values": {point key: value}}, ...]`` (the contract's
shape), and ingest decodes, evaluates, acts and records them like any device's. Ingest stores them again and
the key (point, time) drops the copy, so the reading table is unchanged; the flag stays the listener's.

What is relayed: values whose HJ 212 flag says they measure the process: N (normal) and T (above the analyzer's
range: the real value is higher still, exactly what a limit rule must see). Values flagged F (stopped), M
(maintenance), S (set by hand), D (fault), C (calibration) or B (communication) are stored with their flag but
not judged: a calibration gas or a frozen value would raise false alarms or clear true ones; the compliance
evaluation counts them as invalid data. History older than ``relay_max_age_h`` is stored, not relayed (a logger
re-sending last month after an outage must not raise alarms for it now; ingest refuses old data too).

Delivery: the listener waits for the broker's PUBACKs before it sends the 9014 answers, up to ``relay_timeout_s``;
a frame whose relay is not confirmed by then is answered anyway (its readings are stored, the regulator's data
comes first) and counted (``relay_unconfirmed``) and logged; the MQTT client keeps trying to deliver it while
the process runs. The broker account needs write access to ``ehs/v1/+/+/telemetry`` (deploy/mosquitto/acl,
user ``ehs-hj212``), and ingest accepts it as a sender for any device when the broker names senders
(``EHS_INGEST_RELAY_SENDERS``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

import orjson

from core import mqtt as mq
from core import topics
from core.model import Reading
from ingest.hj212.registry import LoggerInfo

_LOGGER = logging.getLogger(__name__)
#: Flags of values that measure the process (see the module's text).
RELAYED_FLAGS = frozenset({"N", "T"})
#: Values per MQTT message at most (a gateway's batch; an HJ 212 frame holds far fewer).
MAX_VALUES = 100


def telemetry_of(
    rows: Iterable[Reading],
    flags: Iterable[tuple[int, datetime, str]],
    logger: LoggerInfo,
    *,
    now: datetime,
    max_age: timedelta,
) -> list[tuple[str, bytes]]:
    """The telemetry messages (topic, payload) that carry the relayable ``rows`` of one logger. Pure."""
    flagged = {(point_id, when): flag for point_id, when, flag in flags}
    by_time: dict[datetime, dict[str, float]] = {}
    for when, point_id, value, _quality in rows:
        if value is None or when < now - max_age:
            continue
        if flagged.get((point_id, when), "N") not in RELAYED_FLAGS:
            continue
        key = logger.keys.get(point_id)
        if key is None:
            continue
        by_time.setdefault(when, {})[key] = value
    if not by_time:
        return []
    topic = topics.device_topic(logger.site, logger.device, topics.TELEMETRY)
    items = [{"ts": round(when.timestamp() * 1000), "values": values} for when, values in sorted(by_time.items())]
    messages, chunk, count = [], [], 0
    for item in items:
        if chunk and count + len(item["values"]) > MAX_VALUES:
            messages.append((topic, orjson.dumps(chunk)))
            chunk, count = [], 0
        chunk.append(item)
        count += len(item["values"])
    messages.append((topic, orjson.dumps(chunk)))
    return messages


class MqttRelay:
    """Publish relayed telemetry on the broker, QoS 1, and wait for the PUBACKs (blocking: call from a thread)."""

    def __init__(self, mqtt_url: str, *, client_id: str | None = None) -> None:
        self.address = mq.BrokerAddress.parse(mqtt_url)
        self.client = mq.new_client(
            self.address, client_id or f"ehs-hj212-relay-{os.getpid()}", protocol=mq.detect_protocol(self.address)
        )
        self.client.max_queued_messages_set(100_000)

    def start(self) -> None:
        mq.connect_blocking(self.client, self.address)
        _LOGGER.info("HJ 212 readings relayed to ingest through %s", self.address.redacted())

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, messages: list[tuple[str, bytes]], timeout_s: float) -> int:
        """Publish every message; return how many the broker did not confirm within ``timeout_s``."""
        infos = []
        for topic, payload in messages:
            try:
                infos.append(self.client.publish(topic, payload, qos=1))
            except (ValueError, RuntimeError) as exc:  # the client's queue is full
                _LOGGER.warning("HJ 212 relay: %s not queued: %s", topic, exc)
                infos.append(None)
        deadline = time.monotonic() + timeout_s
        unconfirmed = 0
        for info in infos:
            if info is None:
                unconfirmed += 1
                continue
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                confirmed = info.is_published()
            except (ValueError, RuntimeError):  # not connected now: paho sends it after reconnecting
                confirmed = False
            unconfirmed += not confirmed
        return unconfirmed
