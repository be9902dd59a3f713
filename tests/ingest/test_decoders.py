"""Every payload form of the MQTT contract decodes; every kind of bad input becomes a reasoned reject."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from core.model import PointKind, Quality, Reading
from core.registry import DeviceInfo, PlantIndex, PointInfo
from ingest.decoders import Decoder, Limits, RawMessage, Reason

NOW = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
TOPIC = "ehs/v1/s1/gas-01/telemetry"


@pytest.fixture
def decoder() -> Decoder:
    points = {
        "h2_ppm": PointInfo(1, "h2_ppm", PointKind.GAUGE, 0.0, 40000.0, "h2", "ppm"),
        "smoke_bool": PointInfo(2, "smoke_bool", PointKind.GAUGE, 0.0, 1.0, "smoke", "bool"),
        "energy_kwh": PointInfo(3, "energy_kwh", PointKind.COUNTER, 0.0, 1e12, "energy", "kwh"),
    }
    device = DeviceInfo(10, "s1", "gas-01", "formation", "gas_detector", 1.0, points)
    return Decoder(PlantIndex({("s1", "gas-01"): device}, 1), Limits(max_payload_bytes=4096))


def decode(decoder: Decoder, payload: bytes | object, topic: str = TOPIC):
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return decoder.decode_batch([RawMessage(topic, body, 1, False, NOW, 1)])


def test_flat_object_uses_arrival_time(decoder: Decoder) -> None:
    out = decode(decoder, {"h2_ppm": 1.5, "energy_kwh": 1200})
    assert sorted(out.rows) == [(NOW, 1, 1.5, 0), (NOW, 3, 1200.0, 0)]
    assert out.rejects == []
    assert all(type(row) is Reading for row in out.rows)  # issue 18: the decoder makes Readings


def test_ts_and_values_with_epoch_milliseconds(decoder: Decoder) -> None:
    out = decode(decoder, {"ts": NOW_MS - 1500, "seq": 7, "values": {"h2_ppm": 2}})
    assert out.rows == [(NOW - timedelta(milliseconds=1500), 1, 2.0, 0)]


@pytest.mark.parametrize("text", ["2026-03-01T07:59:00Z", "2026-03-01T15:59:00+08:00", "2026-03-01T07:59:00.000+00:00"])
def test_ts_rfc3339_in_any_offset(decoder: Decoder, text: str) -> None:
    out = decode(decoder, {"ts": text, "values": {"h2_ppm": 2}})
    assert out.rows == [(NOW - timedelta(minutes=1), 1, 2.0, 0)]


def test_array_of_objects_mixing_both_forms(decoder: Decoder) -> None:
    out = decode(
        decoder, [{"ts": NOW_MS - 2000, "values": {"h2_ppm": 1}}, {"ts": NOW_MS - 1000, "h2_ppm": 2, "seq": 3}]
    )
    assert [r[2] for r in sorted(out.rows)] == [1.0, 2.0]
    assert out.rejects == []


def test_booleans_stored_as_one_and_zero_and_null_as_bad_quality(decoder: Decoder) -> None:
    out = decode(decoder, {"smoke_bool": True, "h2_ppm": None})
    assert sorted(out.rows, key=lambda r: r[1]) == [(NOW, 1, None, int(Quality.BAD)), (NOW, 2, 1.0, 0)]
    assert decode(decoder, {"smoke_bool": False}).rows == [(NOW, 2, 0.0, 0)]


def _only_reject(out):
    assert len(out.rejects) == 1, out.rejects
    return out.rejects[0]


def test_not_json(decoder: Decoder) -> None:
    reject = _only_reject(decode(decoder, b"{h2_ppm: 1"))
    assert reject.reason is Reason.BAD_JSON
    assert reject.payload == b"{h2_ppm: 1" and reject.site == "s1" and reject.device == "gas-01"


@pytest.mark.parametrize(
    "payload",
    [
        42,
        "text",
        [],
        [1, 2],
        {"values": [1]},
        {"ts": NOW_MS, "values": {}},
        {"seq": "x", "h2_ppm": 1},
        {"values": {"h2_ppm": 1}, "extra": 1},
    ],
)
def test_wrong_shapes(decoder: Decoder, payload: object) -> None:
    out = decode(decoder, payload)
    assert out.rows == []
    assert {r.reason for r in out.rejects} == {Reason.BAD_SHAPE}


@pytest.mark.parametrize("value", ["12", [1], {"v": 1}])
def test_wrong_value_types_keep_the_good_values(decoder: Decoder, value: object) -> None:
    out = decode(decoder, {"h2_ppm": value, "energy_kwh": 5})
    assert out.rows == [(NOW, 3, 5.0, 0)]
    reject = _only_reject(out)
    assert reject.reason is Reason.BAD_VALUE_TYPE and "h2_ppm" in reject.detail


def test_unknown_device(decoder: Decoder) -> None:
    reject = _only_reject(decode(decoder, {"h2_ppm": 1}, topic="ehs/v1/s1/ghost/telemetry"))
    assert reject.reason is Reason.UNKNOWN_DEVICE and reject.device == "ghost"


def test_unknown_point_names_the_keys(decoder: Decoder) -> None:
    out = decode(decoder, {"h2_ppm": 1, "o3_ppm": 2, "noise_db": 3})
    assert len(out.rows) == 1
    reject = _only_reject(out)
    assert reject.reason is Reason.UNKNOWN_POINT and "o3_ppm" in reject.detail and "noise_db" in reject.detail


@pytest.mark.parametrize("value", [-0.1, 40000.5, 1e300])
def test_out_of_range_value(decoder: Decoder, value: float) -> None:
    reject = _only_reject(decode(decoder, {"h2_ppm": value}))
    assert reject.reason is Reason.OUT_OF_RANGE and "h2_ppm" in reject.detail


def test_range_limits_are_inclusive(decoder: Decoder) -> None:
    assert len(decode(decoder, {"h2_ppm": 0}).rows) == 1
    assert len(decode(decoder, {"h2_ppm": 40000}).rows) == 1


@pytest.mark.parametrize(
    "ts", ["yesterday", "2026-03-01T07:59:00", True, None, {"a": 1}, NOW_MS + 3_600_000, NOW_MS - 40 * 86_400_000, 1e30]
)
def test_bad_time(decoder: Decoder, ts: object) -> None:
    out = decode(decoder, {"ts": ts, "values": {"h2_ppm": 1}})
    assert out.rows == []
    assert _only_reject(out).reason is Reason.BAD_TIME


def test_oversized_payload_is_kept_up_to_the_cap(decoder: Decoder) -> None:
    payload = orjson.dumps({"h2_ppm": 1, "pad": "x" * 5000})
    reject = _only_reject(decode(decoder, payload))
    assert reject.reason is Reason.OVERSIZED
    assert reject.payload_size == len(payload) and len(reject.payload) == 4096


@pytest.mark.parametrize(
    "topic", ["ehs/v1/s1/gas-01", "ehs/v2/s1/gas-01/telemetry", "other/topic", "ehs/v1/s1/gas-01/cmd"]
)
def test_bad_topic(decoder: Decoder, topic: str) -> None:
    assert _only_reject(decode(decoder, {"h2_ppm": 1}, topic=topic)).reason is Reason.BAD_TOPIC


def test_status_topic(decoder: Decoder) -> None:
    out = decode(decoder, b"offline", topic="ehs/v1/s1/gas-01/status")
    assert [(s.device_id, s.status) for s in out.statuses] == [(10, "offline")]
    assert _only_reject(decode(decoder, b"sleeping", topic="ehs/v1/s1/gas-01/status")).reason is Reason.BAD_STATUS


def test_a_batch_keeps_going_after_bad_messages(decoder: Decoder) -> None:
    messages = [
        RawMessage(TOPIC, b"\xff\xfe", 1, False, NOW, 1),
        RawMessage(TOPIC, orjson.dumps({"h2_ppm": 3}), 1, False, NOW, 2),
    ]
    out = decoder.decode_batch(messages)
    assert out.rows == [(NOW, 1, 3.0, 0)] and len(out.rejects) == 1
