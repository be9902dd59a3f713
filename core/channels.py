"""PostgreSQL NOTIFY channels between the processes, and their payloads (the contract of the live feed).

NOTIFY is transactional: a notification is delivered when (and only if) the transaction that sent it commits,
so a listener only ever hears of committed data. A payload must stay below 8000 bytes (PostgreSQL's limit).

``readings_committed`` (ingest, one per batch transaction)::

    {"v": 1, "batch": "<batch id>", "n": 60000, "points": "101-350,400,420-431"}

``points`` lists the ids of the points that got readings, as sorted ranges; ``"*"`` when the list would not
fit (listeners then treat every point as changed). Values are not carried: a listener reads the latest values
of the points it cares about, which keeps ingest's cost to one small NOTIFY per batch.

``alarm_changed`` (the alarm engine, one per alarm event, in the transaction that writes the event)::

    {"alarm_id": 17, "event_id": 230, "kind": "raise", "state": "active_unacked", "site": "cz01",
     "area": "formation", "rule": "formation.cell_overtemp", "source": "cz01/formation/form-cab-01/cell_temp_c",
     "priority": 4, "drill": false, "at": "2026-01-01T08:00:00.123+00:00"}

``kind`` is the alarm event (``raise``, ``clear``, ``ack``, ``shelve``... or ``comment``, ``command``, ``flood``),
``priority`` 1 (low) to 4 (critical), ``drill`` true for every record of a drill. The API routes on ``site`` (the
site code: required) and, for callers limited to some processes (regulators),
on ``area`` (the area code, or null); every key is passed to WebSocket clients unchanged. ``at`` (the event
time, RFC 3339) is optional and lets clients and ``benchmarks/api.py`` measure delivery delay. Keep it under
8000 bytes.

``config_changed`` (core.plant.apply_plant): the new config revision id as text.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

READINGS = "readings_committed"
ALARMS = "alarm_changed"
CONFIG = "config_changed"

#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_PAYLOAD = 7999
ALL_POINTS = "*"


def encode_ranges(ids: Iterable[int]) -> str:
    """Sorted ids as ranges: ``{1, 2, 3, 7}`` -> ``"1-3,7"``."""
    parts: list[str] = []
    start = prev = None
    for i in sorted(set(ids)):
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = i
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)


def decode_ranges(text: str) -> set[int]:
    """The inverse of ``encode_ranges``; raises ValueError on anything else."""
    ids: set[int] = set()
    for part in filter(None, text.split(",")):
        lo, sep, hi = part.partition("-")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first or last - first > 10_000_000:
            raise ValueError(f"bad range {part!r}")
        ids.update(range(first, last + 1))
    return ids


def readings_payload(batch: str, count: int, point_ids: Iterable[int]) -> str:
    """The ``readings_committed`` payload, falling back to ``"*"`` when the ranges would not fit."""
    ranges = encode_ranges(point_ids)
    body = {"v": 1, "batch": batch[:64], "n": count, "points": ranges}
    text = orjson.dumps(body).decode()
    if len(text.encode()) > MAX_PAYLOAD:
        body["points"] = ALL_POINTS
        text = orjson.dumps(body).decode()
    return text


def changed_points(payload: str) -> set[int] | None:
    """The point ids of a ``readings_committed`` payload; None means every point."""
    body = orjson.loads(payload)
    points = body["points"]
    return None if points == ALL_POINTS else decode_ranges(points)
