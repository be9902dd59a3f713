"""``core.model.Reading`` (issue 18, item 1): a named tuple in the ``reading`` table's column order, so that
unpacking, indexing, COPY and the spool format stay what the plain ``(ts, point_id, value, quality)`` tuples
were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.model import Quality, Reading
from ingest.decoders import Decoded
from ingest.spool import decode, encode
from tests.fuzzing import budget

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_field_order_is_the_column_order() -> None:
    # ingest.writer COPYs rows into (time, point_id, value, quality) and the spool stores them as arrays in
    # this order: changing it would write values into the wrong columns
    assert Reading._fields == ("ts", "point_id", "value", "quality")
    r = Reading(NOW, 7, 1.5, int(Quality.UNCERTAIN))
    assert tuple(r) == (NOW, 7, 1.5, 1)
    assert (r[0], r[1], r[2], r[3]) == (r.ts, r.point_id, r.value, r.quality)
    ts, point_id, value, quality = r
    assert (ts, point_id, value, quality) == (NOW, 7, 1.5, 1)
    assert r == (NOW, 7, 1.5, 1)
    assert Reading(NOW, 7, None).quality == Quality.GOOD


readings = st.lists(
    st.builds(
        Reading,
        st.integers(-(10**6), 10**6).map(lambda s: NOW + timedelta(milliseconds=s)),
        st.integers(1, 2**31 - 1),
        st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
        st.integers(0, 2),
    ),
    max_size=6,
)


@budget(200)
@given(readings)
def test_spool_bytes_are_those_of_plain_tuples(rows: list[Reading]) -> None:
    as_readings = encode(Decoded(rows=rows), [])
    assert as_readings == encode(Decoded(rows=[tuple(r) for r in rows]), [])
    back, _ = decode(as_readings)
    assert back.rows == rows
    assert all(type(r) is Reading for r in back.rows)
