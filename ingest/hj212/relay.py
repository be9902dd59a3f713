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

Delivery (a transactional outbox): the messages are written to ``hj212_relay_outbox`` in the same transaction
as the frame's readings, and the 9014 answer waits for that commit only, never for the broker. A relay loop in
the listener process (``send_pending``) claims unsent rows oldest first (``FOR UPDATE SKIP LOCKED``: two
listeners on one database never claim the same row), publishes them QoS 1 and marks them ``sent_at`` only after
the broker's PUBACK; a row not confirmed keeps ``sent_at`` empty, counts an attempt and its error, and the loop
backs off and tries again. A crash, a restart or a broker outage between the commit and the PUBACK leaves the
rows unsent, and the next start sends them. Delivery is at least once: a row confirmed by the broker but not
yet marked (a crash in between) is sent again, and that copy is harmless, because ingest keys readings on
(point, time) and a rule sees the same value at the same time again. Sent rows are deleted after
``relay_retention_days``. The listener's heartbeat shows the backlog (``relay_unsent``, ``relay_oldest_unsent_s``)
and it logs an ERROR past ``relay_backlog_alarm_s``; the alerts worker raises the system alarm
``hj212.relay_backlog`` per site from the outbox itself (``alerts.watchdog.watch_relay``), so a dead listener's
backlog is an alarm too. The broker account needs write access to ``ehs/v1/+/+/telemetry``
(deploy/mosquitto/acl, user ``ehs-hj212``), and ingest accepts it as a sender for any device when the broker
names senders (``EHS_INGEST_RELAY_SENDERS``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import orjson
import psycopg

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
        try:
            protocol = mq.detect_protocol(self.address)
        except (ConnectionError, OSError) as exc:  # a broker down now must not keep the listener from starting
            _LOGGER.error("HJ 212 relay: %s; assuming MQTT 5 until it answers", exc)
            protocol = mq.MQTTv5
        self.client = mq.new_client(self.address, client_id or f"ehs-hj212-relay-{os.getpid()}", protocol=protocol)
        self.client.max_queued_messages_set(100_000)

    def start(self) -> None:
        """Connect; a broker that is down now does not stop the listener: the client keeps trying, and the
        outbox holds the readings meanwhile."""
        try:
            mq.connect_blocking(self.client, self.address)
        except (TimeoutError, ConnectionError, OSError) as exc:
            _LOGGER.error(
                "HJ 212 relay: broker %s not reachable (%s); readings wait in the outbox until it is",
                self.address.redacted(),
                exc,
            )
            self.client.connect_async(self.address.host, self.address.port, keepalive=30)
            self.client.loop_start()
            return
        _LOGGER.info("HJ 212 readings relayed to ingest through %s", self.address.redacted())

    def is_connected(self) -> bool:
        return self.client.is_connected()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, messages: list[tuple[str, bytes]], timeout_s: float) -> int:
        """Publish every message; return how many the broker did not confirm within ``timeout_s``."""
        return sum(not ok for ok in self.publish_each(messages, timeout_s))

    def publish_each(self, messages: list[tuple[str, bytes]], timeout_s: float) -> list[bool]:
        """Publish every message; for each, whether the broker confirmed it (PUBACK) within ``timeout_s``."""
        infos = []
        for topic, payload in messages:
            try:
                infos.append(self.client.publish(topic, payload, qos=1))
            except (ValueError, RuntimeError) as exc:  # the client's queue is full
                _LOGGER.warning("HJ 212 relay: %s not queued: %s", topic, exc)
                infos.append(None)
        deadline = time.monotonic() + timeout_s
        confirmed = []
        for info in infos:
            if info is None:
                confirmed.append(False)
                continue
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                confirmed.append(info.is_published())
            except (ValueError, RuntimeError):  # not connected now
                confirmed.append(False)
        return confirmed


# --- the outbox ------------------------------------------------------------------------------------------------


class Publisher(Protocol):
    def is_connected(self) -> bool: ...

    def publish_each(self, messages: list[tuple[str, bytes]], timeout_s: float) -> list[bool]: ...


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass of ``send_pending`` did."""

    claimed: int = 0
    sent: int = 0
    error: str | None = None


def send_pending(conn: psycopg.Connection, publisher: Publisher, *, batch: int, timeout_s: float) -> Pass:
    """Claim up to ``batch`` unsent outbox rows, oldest first, publish them and mark the confirmed ones sent.

    The rows stay locked (``FOR UPDATE SKIP LOCKED``) until their marks commit, so another listener skips them.
    The pass runs in a transaction of its own (``conn`` in autocommit mode, as the listener's are)."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT id, topic, payload FROM hj212_relay_outbox WHERE sent_at IS NULL ORDER BY id LIMIT %s "
            "FOR UPDATE SKIP LOCKED",
            (batch,),
        ).fetchall()
        if not rows:
            return Pass()
        if not publisher.is_connected():
            error = "broker not connected"
            confirmed = [False] * len(rows)
        else:
            error = f"no PUBACK within {timeout_s:g} s"
            confirmed = publisher.publish_each([(topic, bytes(payload)) for _id, topic, payload in rows], timeout_s)
        sent = [row[0] for row, ok in zip(rows, confirmed, strict=True) if ok]
        failed = [row[0] for row, ok in zip(rows, confirmed, strict=True) if not ok]
        if sent:
            conn.execute(
                "UPDATE hj212_relay_outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL "
                "WHERE id = ANY(%s)",
                (sent,),
            )
        if failed:
            conn.execute(
                "UPDATE hj212_relay_outbox SET attempts = attempts + 1, last_error = %s WHERE id = ANY(%s)",
                (error, failed),
            )
    return Pass(len(rows), len(sent), error if failed else None)


def backlog(conn: psycopg.Connection) -> tuple[int, float]:
    """Unsent rows and the age in seconds of the oldest (0 when none)."""
    count, age = conn.execute(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 "
        "FROM hj212_relay_outbox WHERE sent_at IS NULL"
    ).fetchone()
    return int(count), float(age)


def purge_sent(conn: psycopg.Connection, *, older_than: timedelta) -> int:
    """Delete sent rows older than ``older_than``; return how many."""
    return conn.execute(
        "DELETE FROM hj212_relay_outbox WHERE sent_at IS NOT NULL AND sent_at < now() - %s", (older_than,)
    ).rowcount
