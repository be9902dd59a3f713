"""Fuzzing the whole pipeline against a real PostgreSQL (issue 11, item 7): for every mix of good readings and
hostile messages (arbitrary bytes, arbitrary JSON, extreme numbers and times, odd topics with NUL and unicode),
every good reading is committed exactly once with its value, every message the decoder rejects is in
``dead_letter`` with a reason, nothing is spooled, no batch needs splitting (text is made storable before it
reaches SQL), no detector raises and no thread dies. The detectors and alarm stages are ingest's own."""

from __future__ import annotations

import itertools

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.decoders import RawMessage, Reason
from tests.fuzzing import budget, hostile_payloads, odd_levels, odd_text
from tests.ingest.stack import Stack, ts_ms
from tests.support import wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]

_seconds = itertools.count(1)
KEYS = ["h2_ppm", "co_ppm", "cell_temp_c", "sprinkler_on_bool"]

#: A good message: (device, [(key, value)...]) with values below every alarm threshold of the test plant.
good_messages = st.tuples(
    st.sampled_from(["gas-01", "gas-02"]),
    st.lists(
        st.tuples(st.sampled_from(["h2_ppm", "co_ppm"]), st.floats(0, 40, allow_nan=False)), min_size=1, max_size=3
    ),
)
hostile_topics = st.one_of(
    st.tuples(
        st.sampled_from(["gas-01", "gas-02", "cab-01", "fan-01", "ghost"]),
        st.sampled_from(["telemetry", "telemetry", "status"]),
    ).map(lambda t: ("site", *t)),
    st.tuples(st.sampled_from(["site", "other"]), odd_levels, st.sampled_from(["telemetry", "status", "cmd/ack"])),
    odd_text.map(lambda t: ("raw", t, "")),
)


def _topic(stack: Stack, where: tuple) -> str:
    kind, device, channel = where
    if kind == "raw":
        return device
    return f"ehs/v1/{stack.site if kind == 'site' else 'other'}/{device}/{channel}"


def _point_ids(stack: Stack) -> dict[tuple[str, str], int]:
    return {
        (code, key): p.id
        for (site, code), d in stack.runner.index.devices.items()
        if site == stack.site
        for key, p in d.points.items()
    }


@budget(60)
@given(
    st.lists(good_messages, max_size=6),
    st.lists(st.tuples(hostile_topics, hostile_payloads(KEYS)), max_size=8),
    st.randoms(use_true_random=False),
)
def test_fuzz_good_readings_land_once_and_every_bad_message_is_a_dead_letter(
    stack: Stack, goods: list, hostile: list, rnd
) -> None:
    if not stack.pipeline.running:
        stack.pipeline.start()
    points = _point_ids(stack)
    expected: dict[tuple[int, int], float] = {}
    messages: list[tuple[RawMessage, bool]] = []
    for device, values in goods:
        items = []
        for key, value in values:
            ms = ts_ms(next(_seconds))
            items.append({"ts": ms, "values": {key: value}})
            expected[(points[(device, key)], ms)] = value
        messages.append((stack.message(device, items), True))
    for where, payload in hostile:
        messages.append((stack.raw(_topic(stack, where), payload), False))
    rnd.shuffle(messages)
    before = len(stack.acked)
    stack.put(*(m for m, _ in messages))
    wait_for(lambda: len(stack.acked) >= before + len(messages), message="every message acknowledged")

    counters = stack.pipeline.counters
    assert stack.pipeline.running and all(t.is_alive() for t in stack.pipeline._threads)
    assert (counters.spooled_batches, counters.isolated_batches, counters.detector_errors) == (0, 0, 0)
    with psycopg.connect(stack.db) as conn:
        if expected:
            found = conn.execute(
                "SELECT point_id, (extract(epoch FROM time) * 1000)::bigint, value FROM reading "
                "WHERE (point_id, time) IN (SELECT p, to_timestamp(t / 1000.0) FROM unnest(%s::int[], %s::bigint[]) "
                "AS u(p, t))",
                ([p for p, _ in expected], [t for _, t in expected]),
            ).fetchall()
            assert {(p, t): v for p, t, v in found} == expected and len(found) == len(expected)
        for msg, good in messages:
            if good:
                continue
            oracle = stack.runner.decoder.decode_batch([msg])
            reasons = {r.reason.value for r in oracle.rejects}
            assert Reason.DECODE_ERROR.value not in reasons
            stored = {
                r
                for (r,) in conn.execute(
                    "SELECT reason FROM dead_letter WHERE received_at = %s AND payload = %s",
                    (msg.received_at, msg.payload[: 256 * 1024]),
                )
            }
            assert stored == reasons, (msg.topic, msg.payload[:80])
