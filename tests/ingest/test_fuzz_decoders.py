"""Fuzzing the decoders (issue 11, item 7): arbitrary bytes, arbitrary JSON, extreme numbers and times, odd
topics and unicode. The decoder never raises and never needs its own guard (no ``decode_error``), every message
is accounted for (rows, status changes or a reasoned reject), every row is storable and in range, and every
reject becomes a storable dead-letter row. The faults these properties found have their own regression tests
at the end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given
from hypothesis import strategies as st

from core.model import PointKind
from core.registry import DeviceInfo, PlantIndex, PointInfo
from core.text import storable, storable_json
from ingest.decoders import Decoder, Limits, RawMessage, Reason, parse_time
from ingest.writer import dead_letter_row
from tests.fuzzing import budget, extreme_times, hostile_payloads, odd_levels, odd_text

NOW = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
LIMITS = Limits(max_payload_bytes=4096)
KEYS = ["h2_ppm", "smoke_bool", "energy_kwh"]


def _decoder() -> Decoder:
    points = {
        "h2_ppm": PointInfo(1, "h2_ppm", PointKind.GAUGE, 0.0, 40000.0, "h2", "ppm"),
        "smoke_bool": PointInfo(2, "smoke_bool", PointKind.GAUGE, 0.0, 1.0, "smoke", "bool"),
        "energy_kwh": PointInfo(3, "energy_kwh", PointKind.COUNTER, 0.0, 1e12, "energy", "kwh"),
    }
    device = DeviceInfo(10, "s1", "gas-01", "formation", "gas_detector", 1.0, points)
    return Decoder(PlantIndex({("s1", "gas-01"): device}, 1), LIMITS)


DECODER = _decoder()

topics_ = st.one_of(
    st.just("ehs/v1/s1/gas-01/telemetry"),
    st.just("ehs/v1/s1/gas-01/status"),
    st.builds(
        lambda s, d, c: f"ehs/v1/{s}/{d}/{c}",
        odd_levels,
        odd_levels,
        st.sampled_from(["telemetry", "status", "cmd", "cmd/ack", "alarms", ""]),
    ),
    odd_text,
)
messages = st.builds(
    lambda topic, payload, delay_us: RawMessage(topic, payload, 1, False, NOW + timedelta(microseconds=delay_us)),
    topics_,
    hostile_payloads(KEYS),
    st.integers(0, 10**6),
)


def _check(out, batch: list[RawMessage]) -> None:
    assert len(out.ends) == len(batch)
    start = (0, 0, 0)
    for end in out.ends:
        assert end != start, "a message that left no trace (no row, no status, no reject)"
        start = end
    assert start == (len(out.rows), len(out.rejects), len(out.statuses))
    for when, point_id, value, quality in out.rows:
        assert when.tzinfo is not None
        assert NOW - LIMITS.max_age <= when <= NOW + timedelta(seconds=2) + LIMITS.max_future
        device, point = DECODER.index.points[point_id]
        if value is None:
            assert quality != 0
        else:
            assert point.valid_min <= value <= point.valid_max and quality == 0
    for reject in out.rejects:
        assert reject.reason in Reason and reject.reason is not Reason.DECODE_ERROR, reject.detail
        row = dead_letter_row(reject)
        for text in (row[1], row[5], row[6], row[7]):
            if text is not None:
                assert "\x00" not in text
                text.encode("utf-8")  # no lone surrogate
        assert len(row[5]) <= 2000 and len(row[2]) <= LIMITS.max_payload_bytes


@budget(400)
@given(st.lists(messages, min_size=1, max_size=8))
def test_the_decoder_accounts_for_every_message_and_never_raises(batch: list[RawMessage]) -> None:
    _check(DECODER.decode_batch(batch), batch)


@budget(300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_on_a_device_topic(payload: bytes) -> None:
    batch = [RawMessage("ehs/v1/s1/gas-01/telemetry", payload, 1, False, NOW)]
    _check(DECODER.decode_batch(batch), batch)


@budget(300)
@given(extreme_times)
def test_parse_time_returns_a_time_in_range_or_a_reason(value: object) -> None:
    when = parse_time(value, NOW, LIMITS)
    assert isinstance(when, str) or NOW - LIMITS.max_age <= when <= NOW + LIMITS.max_future


@budget(200)
@given(
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), odd_text),
        lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(odd_text, c, max_size=3)),
        max_leaves=15,
    )
)
def test_storable_json_always_serialises(value: object) -> None:
    text = orjson.dumps(storable_json(value)).decode()
    assert "\\u0000" not in text


@budget(200)
@given(odd_text, st.integers(1, 50))
def test_storable_text_has_no_nul_no_lone_surrogate_and_is_bounded(text: str, limit: int) -> None:
    out = storable(text, limit)
    assert "\x00" not in out and len(out) <= limit
    out.encode("utf-8")


# --- faults found by fuzzing, each with its regression test ------------------------------------------------------


def test_regression_year_one_at_plus_eight_is_bad_time_not_an_overflow() -> None:
    """Issue 11's first report: ``astimezone`` raised OverflowError and killed the stage thread."""
    for ts in ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00"):
        batch = [
            RawMessage("ehs/v1/s1/gas-01/telemetry", orjson.dumps({"ts": ts, "values": {"h2_ppm": 25}}), 1, False, NOW)
        ]
        out = DECODER.decode_batch(batch)
        assert [r.reason for r in out.rejects] == [Reason.BAD_TIME] and "out of range" in out.rejects[0].detail


def test_regression_nul_in_a_point_key_is_escaped_in_the_dead_letter() -> None:
    out = DECODER.decode_batch(
        [RawMessage("ehs/v1/s1/gas-01/telemetry", b'{"h2\\u0000ppm": 1, "h2_ppm": 2}', 1, False, NOW)]
    )
    assert [r[2] for r in out.rows] == [2.0]
    [reject] = out.rejects
    assert reject.reason is Reason.UNKNOWN_POINT and "\\x00" in dead_letter_row(reject)[5]


def test_regression_a_huge_unknown_key_is_bounded_in_the_detail() -> None:
    payload = orjson.dumps({"k" * 100_000: 1})
    out = DECODER.decode_batch([RawMessage("ehs/v1/s1/gas-01/telemetry", payload, 1, False, NOW)])
    assert len(out.rejects[0].detail) < 200


def test_regression_a_decoder_bug_costs_only_its_message(monkeypatch) -> None:
    decoder = _decoder()
    original = decoder._decode_item

    def buggy(item, msg, device, rows, problems):
        if isinstance(item, dict) and item.get("h2_ppm") == 13:
            rows.append((NOW, 1, 13.0, 0))  # a partial result that must be undone
            raise ZeroDivisionError("bug")
        return original(item, msg, device, rows, problems)

    monkeypatch.setattr(decoder, "_decode_item", buggy)
    batch = [RawMessage("ehs/v1/s1/gas-01/telemetry", orjson.dumps({"h2_ppm": v}), 1, False, NOW) for v in (1, 13, 2)]
    out = decoder.decode_batch(batch)
    assert [r[2] for r in out.rows] == [1.0, 2.0]
    [reject] = out.rejects
    assert reject.reason is Reason.DECODE_ERROR and reject.detail == "ZeroDivisionError: bug"
    assert out.ends == [(1, 0, 0), (1, 1, 0), (2, 1, 0)]


def test_regression_storable_json_takes_integers_beyond_64_bits() -> None:
    """Found by ``test_storable_json_always_serialises``: orjson refuses integers beyond 64 bits."""
    assert orjson.loads(orjson.dumps(storable_json({"n": -(2**63) - 1, "m": [2**64]}))) == {
        "n": -(2.0**63),
        "m": [2.0**64],
    }
