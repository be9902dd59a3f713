"""Write what the listener received in one transaction: readings (binary COPY, duplicates dropped by the key
(point, time) as ``ingest.writer`` does), their HJ 212 flags, dead letters with the peer, device status, and the
relay outbox rows that carry the relayable readings to ingest (``ingest.hj212.relay``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import errors

from core.model import Reading
from ingest.decoders import Decoded, StatusChange
from ingest.writer import announce, mark_late, write_readings, write_statuses

_MAX_DETAIL = 2000


@dataclass(frozen=True, slots=True)
class DeadFrame:
    received_at: datetime
    topic: str
    payload: bytes
    reason: str
    detail: str
    peer: str
    site: str | None = None
    device: str | None = None


@dataclass(slots=True)
class Work:
    """What one frame (or one connection event) asks to be stored, and the replies due once it is."""

    rows: list[Reading] = field(default_factory=list)
    flags: list[tuple[int, datetime, str]] = field(default_factory=list)
    dead: list[DeadFrame] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    replies: list[bytes] = field(default_factory=list)
    #: the connection to answer on (an asyncio transport-like object with ``write``/``is_closing``)
    answer_to: object | None = None
    #: the frame as received, for a dead letter if the database refuses what it asks to store
    raw: bytes = b""
    #: telemetry messages (site, device, topic, payload) that carry the readings to ingest: stored in
    #: ``hj212_relay_outbox`` with the readings, published later by the relay loop (``ingest.hj212.relay``)
    relay: list[tuple[str, str, str, bytes]] = field(default_factory=list)


def storable(text: str) -> str:
    """Text PostgreSQL accepts: NUL and lone surrogates escaped, length bounded."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "..."


def _write_flags(conn: psycopg.Connection, flags: list[tuple[int, datetime, str]]) -> None:
    if not flags:
        return
    try:
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy("COPY reading_flag (point_id, time, flag) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["int4", "timestamptz", "text"])
            for item in flags:
                copy.write_row(item)
    except errors.UniqueViolation:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO reading_flag (point_id, time, flag) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", flags
            )


def write_dead(conn: psycopg.Connection, dead: list[DeadFrame]) -> None:
    if not dead:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO dead_letter (received_at, topic, payload, payload_size, reason, detail, site_code, "
            "device_code, peer) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    d.received_at,
                    storable(d.topic),
                    d.payload[:8192],
                    len(d.payload),
                    d.reason,
                    storable(d.detail),
                    d.site,
                    d.device,
                    storable(d.peer),
                )
                for d in dead
            ],
        )


def write_relay(conn: psycopg.Connection, messages: list[tuple[str, str, str, bytes]]) -> None:
    """Queue telemetry messages (site, device, topic, payload) in the relay outbox (the caller's transaction)."""
    if not messages:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO hj212_relay_outbox (site, device, topic, payload) VALUES (%s, %s, %s, %s)", messages
        )


def write_work(
    conn: psycopg.Connection,
    items: list[Work],
    *,
    batch_id: str,
    late_before: datetime | None = None,
    notify: bool = True,
) -> int:
    """Store the items inside the caller's transaction; return how many readings were new."""
    rows = [row for item in items for row in item.rows]
    written = write_readings(conn, rows)
    # a re-sent value keeps the flag it was first stored with, like its reading
    _write_flags(conn, [f for item in items for f in item.flags])
    write_dead(conn, [d for item in items for d in item.dead])
    statuses = [s for item in items for s in item.statuses]
    if statuses:
        write_statuses(conn, Decoded(statuses=statuses))
    mark_late(conn, rows, late_before)
    write_relay(conn, [m for item in items for m in item.relay])
    if notify and written:
        announce(conn, batch_id, rows)
    return written
