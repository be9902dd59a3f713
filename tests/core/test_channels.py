"""NOTIFY payloads between processes: point ranges round-trip, and a payload never exceeds the 8000-byte limit."""

from __future__ import annotations

import random

import orjson
import pytest

from core import channels


def test_ranges_round_trip() -> None:
    ids = {1, 2, 3, 7, 9, 10, 100}
    assert channels.encode_ranges(ids) == "1-3,7,9-10,100"
    assert channels.decode_ranges("1-3,7,9-10,100") == ids
    assert channels.encode_ranges([]) == "" and channels.decode_ranges("") == set()


@pytest.mark.parametrize("bad", ["5-1", "a", "1-", "1-99999999999"])
def test_bad_ranges_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        channels.decode_ranges(bad)


def test_contiguous_plants_fit_and_scattered_ones_fall_back_to_all() -> None:
    contiguous = channels.readings_payload("b1", 100000, range(1, 10001))
    assert channels.changed_points(contiguous) == set(range(1, 10001))
    scattered = channels.readings_payload("b2", 5000, random.Random(1).sample(range(1_000_000), 5000))
    assert len(scattered.encode()) <= channels.MAX_PAYLOAD
    assert orjson.loads(scattered)["points"] == "*" and channels.changed_points(scattered) is None
