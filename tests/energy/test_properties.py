"""Property tests against the real database: the offline and production importers and the tariff parser take
anything and either store valid rows or refuse with line and field, never crash; energy is conserved for any
counter series (rollovers, resets and gaps included)."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from energy import intervals
from energy.intervals import compute, counter_deltas
from energy.offline import ImportRefused, import_offline, import_production
from energy.tariffs import TariffSpec
from tests.energy.world import T0, World
from tests.fuzzing import budget, odd_text

CELL = st.one_of(
    odd_text,
    st.sampled_from(
        [
            "e-main",
            "e-coat",
            "w-main",
            "coating",
            "cells",
            "kwh",
            "-1",
            "1e400",
            "nan",
            "2026-03-01T08:00:00+08:00",
            "2026-03-01T08:00:00",
            "12.5",
            "9999-01-01T00:00:00Z",
        ]
    ),
    st.floats(allow_nan=True).map(str),
    st.integers(-10, 10**13).map(str),
)


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    def q(v: str) -> str:
        return '"' + v.replace('"', '""') + '"'

    return "\n".join([",".join(header), *[",".join(q(v) for v in row) for row in rows]]).encode(
        "utf-8", "surrogatepass"
    )


@budget(40)
@given(
    rows=st.lists(st.lists(CELL, min_size=0, max_size=4), max_size=6),
    header=st.sampled_from([["meter", "time", "value"], ["time", "meter", "value"], ["meter", "value"]]),
)
def test_offline_import_stores_or_refuses_with_a_line(database_url: str, rows, header) -> None:
    with psycopg.connect(database_url) as conn, conn.transaction(force_rollback=True):
        w = World(conn)
        site_id = conn.execute("SELECT id FROM site WHERE code = %s", (w.site,)).fetchone()[0]
        before = conn.execute("SELECT count(*) FROM reading").fetchone()[0]
        try:
            result = import_offline(conn, site_id=site_id, data=_csv(header, rows), filename="f.csv", actor="t")
        except ImportRefused as exc:
            assert exc.problems and all(
                p.startswith("line ") or "rows" in p or "file" in p or "UTF-8" in p for p in exc.problems
            )
            assert conn.execute("SELECT count(*) FROM reading").fetchone()[0] == before
            return
        assert result.rows == len([r for r in rows if any(v.strip() for v in r)])
        assert conn.execute("SELECT count(*) FROM reading").fetchone()[0] - before == result.stored


@budget(30)
@given(rows=st.lists(st.lists(CELL, min_size=5, max_size=5), min_size=1, max_size=4))
def test_production_import_stores_or_refuses_with_a_line(database_url: str, rows) -> None:
    with psycopg.connect(database_url) as conn, conn.transaction(force_rollback=True):
        w = World(conn)
        site_id = conn.execute("SELECT id FROM site WHERE code = %s", (w.site,)).fetchone()[0]
        try:
            n = import_production(
                conn,
                site_id=site_id,
                filename="p.csv",
                actor="t",
                data=_csv(["area", "start", "end", "quantity", "unit"], rows),
            )
        except ImportRefused as exc:
            assert all(p.startswith("line ") or "rows" in p or "UTF-8" in p for p in exc.problems)
            return
        assert n >= 1
        assert conn.execute("SELECT count(*) FROM energy_production").fetchone()[0] >= 1


@budget(60)
@given(
    spec=st.fixed_dictionaries(
        {
            "code": st.sampled_from(["t", "T", "", "a b"]),
            "name": odd_text,
            "medium": st.sampled_from(["electricity", "x"]),
            "valid_from": st.sampled_from(["2024-01-01", "2024-13-01", "x"]),
            "prices": st.dictionaries(
                st.sampled_from(["peak", "flat", "valley", "critical", "x"]), st.floats(allow_nan=True), max_size=4
            ),
            "periods": st.lists(
                st.fixed_dictionaries(
                    {
                        "season": odd_text,
                        "months": st.lists(st.integers(-1, 14), max_size=3),
                        "from": st.sampled_from(["00:00", "08:00", "08:07", "24:00", "x"]),
                        "to": st.sampled_from(["08:00", "12:00", "24:00", "25:00"]),
                        "band": st.sampled_from(["peak", "flat", "valley", "critical", "x"]),
                    }
                ),
                max_size=3,
            ),
        }
    )
)
def test_tariff_parser_accepts_or_refuses_with_a_field(spec) -> None:
    try:
        t = TariffSpec.model_validate(spec)
    except ValidationError as exc:
        assert exc.errors()
        return
    assert set(t.prices) >= {p.band for p in t.periods}


COUNTER = st.lists(st.tuples(st.integers(1, 400), st.floats(-50, 200, allow_nan=False)), min_size=2, max_size=40)


@budget(80)
@given(steps=COUNTER, span=st.sampled_from([None, 10_000.0]))
def test_intervals_conserve_the_counter_rise(steps, span) -> None:
    """Whatever the counter does, the intervals sum to the sum of the (corrected) pair deltas and are >= 0."""
    times = np.cumsum([0.0, *[60.0 * s for s, _ in steps]]) + T0.timestamp()
    values = np.cumsum([5000.0, *[v for _, v in steps]])
    if span is not None:
        values = np.mod(values, span)
    values = np.maximum(values, 0.0)
    deltas, jump, _events = counter_deltas(times, values, span=span)
    assert (deltas >= 0).all()
    r = compute(times, values, end=int(times[-1]), span=span)
    assert (r.quantity >= 0).all()
    assert math.isclose(r.quantity.sum(), deltas.sum(), rel_tol=1e-9, abs_tol=1e-6)


@pytest.mark.parametrize("late_at", [3, 10, 17])
def test_late_batches_give_the_same_intervals_as_in_order(conn, late_at: int) -> None:
    w = World(conn)
    rows = [(T0 + timedelta(minutes=7 * i), 11.0 * i + (i % 4)) for i in range(30)]
    late = rows[late_at : late_at + 5]
    w.readings("e-main", [r for r in rows if r not in late])
    intervals.refresh(conn, now=rows[-1][0] + timedelta(minutes=3), site=w.site)
    w.readings("e-main", late)
    intervals.refresh(conn, now=rows[-1][0] + timedelta(minutes=4), site=w.site)
    got = w.intervals("e-main")
    conn.execute("DELETE FROM energy_interval; DELETE FROM energy_state; DELETE FROM energy_day")
    intervals.refresh(conn, now=rows[-1][0] + timedelta(minutes=4), site=w.site)
    again = w.intervals("e-main")
    assert [(t, q) for t, _v, q in got] == [(t, q) for t, _v, q in again]
    assert [v for _t, v, _q in got] == pytest.approx([v for _t, v, _q in again], rel=1e-12, abs=1e-9)
