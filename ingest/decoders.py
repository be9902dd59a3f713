"""Decode MQTT messages into reading rows and rejects; pure functions, no I/O (STYLE.md B3).

Telemetry payload forms (ARCHITECTURE.md, MQTT contract): ``{"temp_c": 25.1, ...}`` (time = arrival),
``{"ts": T, "values": {...}}``, or a JSON array of such objects; ``T`` is epoch milliseconds or RFC 3339;
``seq`` is optional. Values are numbers, booleans (stored 1/0) or null (stored as a bad-quality reading).
Anything else becomes a ``Reject`` with a reason; the good part of a message is still kept. Each message is
decoded on its own: whatever it makes the decoder raise costs only that message (a ``decode_error`` reject).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import orjson

from core import identity, topics
from core.model import Quality, Reading
from core.registry import DeviceInfo, PlantIndex

#: One reading row in COPY column order: (time, point_id, value, quality); an alias kept for older imports.
Row = Reading

_GOOD = int(Quality.GOOD)
_BAD = int(Quality.BAD)
_RESERVED = frozenset(("ts", "seq", "values"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Reason(StrEnum):
    BAD_TOPIC = "bad_topic"
    OVERSIZED = "oversized"
    BAD_JSON = "bad_json"
    BAD_SHAPE = "bad_shape"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_POINT = "unknown_point"
    BAD_VALUE_TYPE = "bad_value_type"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIME = "bad_time"
    BAD_STATUS = "bad_status"
    WRONG_SENDER = "wrong_sender"
    #: The decoder raised on this message (a bug): the message is kept with the exception.
    DECODE_ERROR = "decode_error"
    #: A detector raised while judging this message: its readings are stored, the message is kept here.
    DETECTOR_ERROR = "detector_error"
    #: The database refused what this message decoded to (its data, not an outage).
    DB_REFUSED = "db_refused"


@dataclass(slots=True)
class RawMessage:
    """One MQTT message as received; ``mid`` is kept to acknowledge it after commit."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    received_at: datetime
    mid: int = 0
    generation: int = 0
    properties: object = None  # MQTT 5 properties as paho gives them (the sender check reads them)


@dataclass(frozen=True, slots=True)
class Reject:
    """A rejected message (or part of one) for the dead-letter table."""

    topic: str
    payload: bytes
    payload_size: int
    received_at: datetime
    reason: Reason
    detail: str
    site: str | None = None
    device: str | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    device_id: int
    status: str
    at: datetime


@dataclass(slots=True)
class Decoded:
    """What one batch of messages decodes to."""

    rows: list[Reading] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    #: After each message, in order: how many rows, rejects and statuses the batch held (message i owns
    #: ``ends[i-1]`` to ``ends[i]``), so that a failure can be traced back to the message that caused it.
    ends: list[tuple[int, int, int]] = field(default_factory=list)

    def part(self, start: tuple[int, int, int], end: tuple[int, int, int]) -> Decoded:
        """The rows, rejects and statuses between two ``ends`` marks."""
        return Decoded(self.rows[start[0] : end[0]], self.rejects[start[1] : end[1]], self.statuses[start[2] : end[2]])


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 256 * 1024
    #: Device clocks may run ahead a little; beyond this a timestamp is refused (bad_time).
    max_future: timedelta = timedelta(minutes=5)
    #: Gateways forward buffered data after an outage; older than this is refused (bad_time).
    max_age: timedelta = timedelta(days=30)
    #: The MQTT 5 user property in which the broker names the sender (core.identity); None: not checked.
    sender_property: str | None = None
    #: Service accounts that may relay telemetry for any device (core.identity, ``relays``).
    relay_senders: frozenset[str] = frozenset()


def parse_time(value: object, now: datetime, limits: Limits) -> datetime | str:
    """Return the UTC datetime of ``ts``, or a text saying why it is not acceptable."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return f"ts must be epoch milliseconds or RFC 3339, not {type(value).__name__}"
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            return f"ts {value[:40]!r} is not RFC 3339"
        if when.tzinfo is None:
            return f"ts {value[:40]!r} has no UTC offset"
        try:
            when = when.astimezone(UTC)  # year 1 at +08:00 is before the first representable instant
        except (OverflowError, ValueError):
            return f"ts {value[:40]!r} is out of range"
    else:
        if not math.isfinite(value):
            return "ts is not a finite number"
        try:
            when = _EPOCH + timedelta(milliseconds=value)
        except (OverflowError, ValueError):
            return f"ts {value:.6g} is out of range"
    if when > now + limits.max_future:
        return f"ts {when.isoformat()} is in the future (arrived {now.isoformat()})"
    if when < now - limits.max_age:
        return f"ts {when.isoformat()} is older than {limits.max_age.days} days"
    return when


class Decoder:
    """Decode batches against the current plant index (swap the index when the configuration changes)."""

    def __init__(self, index: PlantIndex, limits: Limits = Limits()) -> None:
        self.index = index
        self.limits = limits
        self._topics: dict[str, topics.Topic | None] = {}

    def _topic(self, topic: str) -> topics.Topic | None:
        parsed = self._topics.get(topic, False)
        if parsed is False:
            if len(self._topics) > 100_000:
                self._topics.clear()
            parsed = self._topics[topic] = topics.parse(topic)
        return parsed

    def decode_batch(self, messages: list[RawMessage]) -> Decoded:
        out = Decoded()
        ends = out.ends
        for msg in messages:
            marks = (len(out.rows), len(out.rejects), len(out.statuses))
            try:
                self.decode_one(msg, out)
            except Exception as exc:  # noqa: BLE001 - a decoder bug costs this message only
                del out.rows[marks[0] :], out.rejects[marks[1] :], out.statuses[marks[2] :]
                out.rejects.append(error_reject(msg, Reason.DECODE_ERROR, exc, self.limits.max_payload_bytes))
            ends.append((len(out.rows), len(out.rejects), len(out.statuses)))
        return out

    def decode_one(self, msg: RawMessage, out: Decoded) -> None:
        """Append the rows, rejects and status changes of one message to ``out``."""
        size = len(msg.payload)
        parsed = self._topic(msg.topic)

        def reject(reason: Reason, detail: str) -> None:
            out.rejects.append(
                Reject(
                    msg.topic,
                    msg.payload[: self.limits.max_payload_bytes],
                    size,
                    msg.received_at,
                    reason,
                    detail,
                    parsed and parsed.site,
                    parsed and parsed.device,
                )
            )

        if parsed is None or parsed.channel not in (topics.TELEMETRY, topics.STATUS):
            return reject(Reason.BAD_TOPIC, "topic is not ehs/v1/{site}/{device}/telemetry|status")
        if size > self.limits.max_payload_bytes:
            return reject(Reason.OVERSIZED, f"payload of {size} bytes exceeds {self.limits.max_payload_bytes}")
        relays = self.limits.relay_senders if parsed.channel == topics.TELEMETRY else frozenset()
        if why := identity.sender_refusal(
            parsed.site, parsed.device, msg.properties, self.limits.sender_property, relays=relays
        ):
            return reject(Reason.WRONG_SENDER, why)
        device = self.index.devices.get((parsed.site, parsed.device))
        if device is None:
            return reject(Reason.UNKNOWN_DEVICE, f"no device {parsed.device!r} in site {parsed.site!r}")
        if parsed.channel == topics.STATUS:
            status = msg.payload.strip().decode("utf-8", "replace").lower()
            if status not in ("online", "offline"):
                return reject(Reason.BAD_STATUS, "status must be 'online' or 'offline'")
            out.statuses.append(StatusChange(device.id, status, msg.received_at))
            return None
        try:
            body = orjson.loads(msg.payload)
        except orjson.JSONDecodeError as exc:
            return reject(Reason.BAD_JSON, f"not JSON: {exc}")
        items = body if isinstance(body, list) else [body]
        if not items:
            return reject(Reason.BAD_SHAPE, "empty array")
        problems: dict[Reason, list[str]] = {}
        for item in items:
            self._decode_item(item, msg, device, out.rows, problems)
        for reason, details in problems.items():
            shown = "; ".join(details[:20]) + (f"; and {len(details) - 20} more" if len(details) > 20 else "")
            reject(reason, shown)
        return None

    def _decode_item(
        self, item: object, msg: RawMessage, device: DeviceInfo, rows: list[Reading], problems: dict[Reason, list[str]]
    ) -> None:
        if not isinstance(item, dict):
            problems.setdefault(Reason.BAD_SHAPE, []).append(f"expected an object, got {type(item).__name__}")
            return
        if "values" in item:
            values = item["values"]
            if not isinstance(values, dict):
                problems.setdefault(Reason.BAD_SHAPE, []).append("'values' must be an object")
                return
            extra = set(item) - _RESERVED
            if extra:
                problems.setdefault(Reason.BAD_SHAPE, []).append(
                    f"unexpected keys beside 'values': {', '.join(sorted(extra))}"
                )
                return
        else:
            values = {k: v for k, v in item.items() if k not in _RESERVED}
        if "seq" in item and (isinstance(item["seq"], bool) or not isinstance(item["seq"], int)):
            problems.setdefault(Reason.BAD_SHAPE, []).append("'seq' must be an integer")
            return
        if "ts" in item:
            when = parse_time(item["ts"], msg.received_at, self.limits)
            if isinstance(when, str):
                problems.setdefault(Reason.BAD_TIME, []).append(when)
                return
        else:
            when = msg.received_at
        if not values:
            problems.setdefault(Reason.BAD_SHAPE, []).append("no values")
            return
        points = device.points
        append = rows.append
        for key, value in values.items():
            point = points.get(key)
            if point is None:
                problems.setdefault(Reason.UNKNOWN_POINT, []).append(key[:80])
                continue
            kind = type(value)
            if kind is float or kind is int or kind is bool:
                value = float(value)
                if value < point.valid_min or value > point.valid_max:
                    problems.setdefault(Reason.OUT_OF_RANGE, []).append(
                        f"{key}={value:g} outside [{point.valid_min:g}, {point.valid_max:g}]"
                    )
                    continue
                append(Reading(when, point.id, value, _GOOD))
            elif value is None:
                append(Reading(when, point.id, None, _BAD))
            else:
                problems.setdefault(Reason.BAD_VALUE_TYPE, []).append(
                    f"{key} is {kind.__name__}, expected a number, boolean or null"
                )


def error_reject(msg: RawMessage, reason: Reason, exc: BaseException, max_payload_bytes: int = 256 * 1024) -> Reject:
    """A dead letter for a message some stage raised on: the exception's class and a bounded excerpt."""
    parsed = topics.parse(msg.topic) if isinstance(msg.topic, str) else None
    return Reject(
        msg.topic,
        bytes(msg.payload[:max_payload_bytes]),
        len(msg.payload),
        msg.received_at,
        reason,
        f"{type(exc).__name__}: {str(exc)[:400]}",
        parsed and parsed.site,
        parsed and parsed.device,
    )
