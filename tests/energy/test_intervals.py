"""Counters -> 15-minute intervals: rollover, reset, replacement, jumps, gaps, late and duplicate readings, and
conservation (the intervals of a stretch add up to the counter difference)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from energy import intervals
from energy.intervals import compute, counter_deltas
from tests.energy.world import T0, World

MIN = 60.0


def _t(minutes: float) -> float:
    return T0.timestamp() + minutes * MIN


# --- pure -------------------------------------------------------------------------------------------------


def test_linear_counter_splits_by_time_and_conserves() -> None:
    times = np.array([_t(0), _t(10), _t(25), _t(45)])
    values = np.array([100.0, 110.0, 125.0, 145.0])  # 1 kWh per minute
    r = compute(times, values, end=int(_t(45)))
    assert r.quantity.tolist() == pytest.approx([15.0, 15.0, 15.0])
    assert [intervals.QUALITY[q] for q in r.quality] == ["measured", "measured", "measured"]
    assert r.quantity.sum() == pytest.approx(45.0)


def test_rollover_near_span_is_the_wrapped_difference() -> None:
    deltas, _jump, events = counter_deltas(np.array([0.0, 60.0]), np.array([99_990.0, 5.0]), span=100_000.0)
    assert deltas.tolist() == [15.0]
    assert events[0][1] == "rollover"


def test_reset_counts_from_zero_never_negative() -> None:
    deltas, _jump, events = counter_deltas(np.array([0.0, 60.0, 120.0]), np.array([5000.0, 3.0, 8.0]), span=1e12)
    assert deltas.tolist() == [3.0, 5.0]
    assert events[0][1] == "reset"


def test_replacement_bridges_old_final_and_new_first() -> None:
    deltas, _jump, events = counter_deltas(
        np.array([0.0, 900.0]), np.array([1000.0, 2.0]), replacements=[(450.0, 1004.0, 0.0)]
    )
    assert deltas.tolist() == [6.0]  # 4 on the old meter, 2 on the new one
    assert events[0][1] == "replacement"


def test_jump_is_missing_not_a_spike() -> None:
    times = np.array([_t(0), _t(15), _t(30), _t(45)])
    values = np.array([0.0, 25.0, 1e9, 1e9 + 25])  # nominal 100/h: 1e9 in 15 min is a jump
    r = compute(times, values, end=int(_t(45)), nominal_per_h=100.0)
    assert r.quantity.max() <= 25.0
    assert intervals.QUALITY[r.quality[1]] == "missing"
    assert [e[1] for e in r.events] == ["jump"]


def test_gap_closed_by_a_reading_is_estimated_and_conserved() -> None:
    times = np.array([_t(0), _t(15), _t(135), _t(150)])  # two hours without readings
    values = np.array([0.0, 10.0, 130.0, 140.0])
    r = compute(times, values, end=int(_t(150)))
    q = [intervals.QUALITY[k] for k in r.quality]
    assert q[0] == "measured" and q[-1] == "measured"
    assert set(q[1:9]) == {"estimated"}
    assert r.quantity.sum() == pytest.approx(140.0)
    assert r.quantity[1:9].sum() == pytest.approx(120.0)


def test_after_the_last_reading_intervals_are_missing() -> None:
    times = np.array([_t(0), _t(15), _t(30)])
    r = compute(times, np.array([0.0, 5.0, 10.0]), end=int(_t(90)))
    assert [intervals.QUALITY[k] for k in r.quality] == [
        "measured",
        "measured",
        "missing",
        "missing",
        "missing",
        "missing",
    ]
    assert r.quantity[2:].sum() == 0.0


# --- database ---------------------------------------------------------------------------------------------


def _steady(minutes: int, step: int = 5, rate: float = 1.0, start: float = 0.0):
    return [(T0 + timedelta(minutes=m), start + rate * m) for m in range(0, minutes + 1, step)]


def test_refresh_writes_intervals_days_and_state(conn) -> None:
    w = World(conn)
    w.readings("e-main", _steady(120))
    done = intervals.refresh(conn, now=T0 + timedelta(minutes=123), site=w.site)
    assert done.meters == 1
    rows = w.intervals("e-main")
    assert [r[1] for r in rows] == pytest.approx([15.0] * 8)
    assert {r[2] for r in rows} == {"measured"}
    day = conn.execute("SELECT quantity, measured FROM energy_day WHERE meter_id = %s", (w.meter["e-main"],)).fetchall()
    assert day == [(pytest.approx(120.0), 8)]


def test_late_and_duplicate_readings_recompute_to_the_direct_result(conn) -> None:
    w = World(conn)
    every = _steady(180, step=5)
    early, late = every[:13] + every[20:], every[13:20]  # 65-95 min arrive late
    w.readings("e-main", early)
    intervals.refresh(conn, now=T0 + timedelta(minutes=185), site=w.site)
    gap = {r[0]: r[2] for r in w.intervals("e-main")}
    assert gap[T0 + timedelta(minutes=75)] == "estimated"
    w.readings("e-main", late + early[:5])  # late, plus duplicates of old ones
    intervals.refresh(conn, now=T0 + timedelta(minutes=186), site=w.site)
    rows = w.intervals("e-main")
    assert [r[1] for r in rows] == pytest.approx([15.0] * 12)
    assert {r[2] for r in rows} == {"measured"}


def test_incremental_refresh_equals_one_refresh(conn) -> None:
    w = World(conn)
    rows = [(T0 + timedelta(minutes=m), 3.0 * m + (m % 7)) for m in range(0, 241, 3)]
    for i in range(0, len(rows), 11):
        w.readings("e-coat", rows[i : i + 11])
        intervals.refresh(conn, now=rows[min(i + 10, len(rows) - 1)][0] + timedelta(minutes=3), site=w.site)
    incremental = w.intervals("e-coat")
    conn.execute("DELETE FROM energy_interval; DELETE FROM energy_state; DELETE FROM energy_day")
    intervals.refresh(conn, now=rows[-1][0] + timedelta(minutes=3), site=w.site)
    once = w.intervals("e-coat")
    assert [(t, q) for t, _v, q in incremental] == [(t, q) for t, _v, q in once]
    assert [v for _t, v, _q in incremental] == pytest.approx([v for _t, v, _q in once], rel=1e-12, abs=1e-9)
    assert sum(r[1] for r in incremental) == pytest.approx(rows[-1][1] - rows[0][1])


def test_rollover_and_reset_are_recorded_events(conn) -> None:
    w = World(conn, span=10_000.0)
    w.readings(
        "e-main",
        [
            (T0, 9_990.0),
            (T0 + timedelta(minutes=5), 9_995.0),
            (T0 + timedelta(minutes=10), 2.0),
            (T0 + timedelta(minutes=15), 7.0),
        ],
    )
    intervals.refresh(conn, now=T0 + timedelta(minutes=17), site=w.site)
    assert w.intervals("e-main")[0][1] == pytest.approx(17.0)
    kinds = [
        r[0] for r in conn.execute("SELECT kind FROM meter_event WHERE meter_id = %s", (w.meter["e-main"],)).fetchall()
    ]
    assert kinds == ["rollover"]


def test_recorded_replacement_recomputes_without_a_reset(conn) -> None:
    w = World(conn)
    w.readings(
        "e-dry",
        [
            (T0, 500.0),
            (T0 + timedelta(minutes=5), 505.0),
            (T0 + timedelta(minutes=10), 1.0),
            (T0 + timedelta(minutes=15), 6.0),
        ],
    )
    intervals.refresh(conn, now=T0 + timedelta(minutes=17), site=w.site)
    intervals.record_replacement(
        conn, meter_id=w.meter["e-dry"], when=T0 + timedelta(minutes=7), before=507.0, after=0.0, actor="test"
    )
    w.readings("e-dry", [(T0 + timedelta(minutes=20), 11.0)])
    intervals.refresh(conn, now=T0 + timedelta(minutes=22), site=w.site)
    assert w.intervals("e-dry")[0][1] == pytest.approx(5.0 + 2.0 + 1.0 + 5.0)


def test_days_and_months_after_a_late_reading_equal_a_full_recompute(conn) -> None:
    w = World(conn)
    rows = [(T0 + timedelta(minutes=m), 2.0 * m + (m // 45) % 3) for m in range(0, 3 * 24 * 60 + 1, 15)]
    late = rows[40:44]  # on the first local day
    w.readings("e-coat", [r for r in rows if r not in late])
    intervals.refresh(conn, now=rows[-1][0] + timedelta(minutes=3), site=w.site)
    w.readings("e-coat", late)
    intervals.refresh(conn, now=rows[-1][0] + timedelta(minutes=4), site=w.site)

    def rollups() -> list:
        return conn.execute(
            "SELECT 'd', day, quantity, measured, estimated, missing FROM energy_day WHERE "
            "meter_id = %(m)s UNION ALL SELECT 'm', day, quantity, measured, estimated, missing "
            "FROM energy_month WHERE meter_id = %(m)s ORDER BY 1, 2",
            {"m": w.meter["e-coat"]},
        ).fetchall()

    incremental = rollups()
    assert len([r for r in incremental if r[0] == "d"]) == 4 and incremental[0][4] == 0  # no estimates left
    conn.execute(
        "DELETE FROM energy_interval; DELETE FROM energy_state; DELETE FROM energy_day; DELETE FROM energy_month"
    )
    intervals.refresh(conn, now=rows[-1][0] + timedelta(minutes=4), site=w.site)
    again = rollups()
    assert [r[:2] + r[3:] for r in incremental] == [r[:2] + r[3:] for r in again]
    assert [r[2] for r in incremental] == pytest.approx([r[2] for r in again])
    assert sum(r[2] for r in again if r[0] == "d") == pytest.approx(rows[-1][1] - rows[0][1])


# --- gap filling with siblings ------------------------------------------------------------------------------

GAP_FROM, GAP_TO = 3 * 1440 + 600, 3 * 1440 + 960  # minutes after T0: a 6-hour gap on the fourth day


def _coat_step(k: int) -> float:
    """e-coat's energy in the k-th 5 minutes: a day shape (busier 02:00-12:00 UTC), and a stop on the gap's day
    that no typical day shows (minutes 660..840 after the fourth day's start draw almost nothing)."""
    minute = 5 * k
    busy = 2.0 if 120 <= minute % 1440 < 720 else 0.5
    stopped = 3 * 1440 + 660 <= minute < 3 * 1440 + 840
    return 0.05 if stopped else busy + 0.1 * ((k // 3) % 4)


def _counter_of(steps: list[float]) -> list[float]:
    return list(np.concatenate(([1000.0], 1000.0 + np.cumsum(steps))))


def _gap_fill(conn, *, with_sibling: bool) -> tuple[np.ndarray, np.ndarray]:
    """(filled, true) e-coat energy of the gap's intervals, e-dry (its sibling: same parent, same medium) drawing
    1.5 x e-coat the whole time when ``with_sibling``."""
    w = World(conn)
    n = 4 * 288  # four days of 5-minute steps
    coat = _counter_of([_coat_step(k) for k in range(n)])
    if with_sibling:
        dry = _counter_of([1.5 * _coat_step(k) for k in range(n)])
        w.readings("e-dry", [(T0 + timedelta(minutes=5 * k), v) for k, v in enumerate(dry)])
    before = [(T0 + timedelta(minutes=5 * k), coat[k]) for k in range(GAP_FROM // 5 + 1)]
    w.readings("e-coat", before)
    intervals.refresh(conn, now=T0 + timedelta(days=4, minutes=3), site=w.site)  # e-dry whole; e-coat to the gap
    w.readings("e-coat", [(T0 + timedelta(minutes=5 * k), coat[k]) for k in range(GAP_TO // 5, n + 1)])
    intervals.refresh(conn, now=T0 + timedelta(days=4, minutes=3), site=w.site)
    got = {start: (q, quality) for start, q, quality in w.intervals("e-coat")}
    starts = [T0 + timedelta(minutes=m) for m in range(GAP_FROM, GAP_TO, 15)]
    assert {got[s][1] for s in starts} == {"estimated"}
    filled = np.array([got[s][0] for s in starts])
    true = np.array([coat[(m + 15) // 5] - coat[m // 5] for m in range(GAP_FROM, GAP_TO, 15)])
    return filled, true


def test_a_gap_shaped_like_its_sibling_is_filled_closer_than_without(conn) -> None:
    with_sibling, true = _gap_fill(conn, with_sibling=True)
    alone, true_alone = _gap_fill(conn, with_sibling=False)
    assert np.array_equal(true, true_alone)
    assert with_sibling.sum() == pytest.approx(true.sum()) and alone.sum() == pytest.approx(true.sum())  # conserved
    # e-coat = e-dry / 1.5 exactly before the gap (R² = 1): the sibling's fitted values are the true shape
    assert with_sibling == pytest.approx(true, abs=1e-6)
    # alone, the time-of-day profile cannot know of the stop: the 2-hour stop is filled at the typical level
    stop = slice(4, 12)  # intervals 11:00..13:00 after the fourth day's start
    assert alone[stop].mean() > 10 * true[stop].mean()
    assert np.sqrt(np.mean((alone - true) ** 2)) > 100 * np.sqrt(np.mean((with_sibling - true) ** 2)) + 0.1
