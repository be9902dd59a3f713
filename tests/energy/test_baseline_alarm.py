"""Energy above the stored baseline's prediction band raises an alarm through the abnormal-consumption job, with
the relevant variables (production) built per period from the database; figures computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cli.energy_abnormal_cmd import evaluate_once
from core.model import Severity
from energy import intervals
from energy.baseline import LIMITS, Baseline, Granularity
from energy.baseline_store import set_baseline
from tests.energy.world import T0, World

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 5, 0, 10, tzinfo=TZ)  # the local days 03-03 and 03-04 are complete
DAYS = [datetime(2026, 3, 3, tzinfo=TZ), datetime(2026, 3, 4, tzinfo=TZ)]
# energy per day = 200 kWh + 0.1 kWh per cell; residual standard error 10 kWh over 30 days; zero leverage, so the
# band's half width is t(0.975, 28) x 10 = 2.0484 x 10 kWh (Student's t table)
MODEL = Baseline(
    variables=("production",),
    intercept=200.0,
    coefficients={"production": 0.1},
    granularity=Granularity.DAILY,
    n=30,
    cv_rmse_pct=5.0,
    nmbe_pct=0.0,
    r2=0.9,
    residual_std=10.0,
    xtx_inv=((0.0, 0.0), (0.0, 0.0)),
    mean_energy=300.0,
    period_start="2026-01-01",
    period_end="2026-01-30",
    limits=LIMITS[Granularity.DAILY],
)


def _world(conn, rate: float, produced: list[datetime]) -> World:
    """e-coat draws ``rate`` kWh per minute; its area (coating) made 1,000 cells on each day of ``produced``."""
    w = World(conn)
    minutes = int((NOW - T0).total_seconds() // 60)
    w.readings("e-coat", [(T0 + timedelta(minutes=m), 1000.0 + rate * m) for m in range(0, minutes + 1, 5)])
    intervals.refresh(conn, now=NOW.astimezone(UTC), site=w.site)
    for day in produced:
        conn.execute(
            """INSERT INTO energy_production (area_id, start, "end", quantity, unit, source, recorded_by)
               SELECT a.id, %s, %s, 1000, 'cells', 'api', 'test' FROM area a JOIN site s ON s.id = a.site_id
               WHERE s.code = %s AND a.code = 'coating'""",
            (day, day + timedelta(days=1), w.site),
        )
    set_baseline(conn=conn, site=w.site, model=MODEL, reason="2026 年初基线", actor="test", meter="e-coat")
    return w


def test_two_days_above_the_band_raise_an_alarm(conn) -> None:
    _world(conn, rate=0.25, produced=DAYS)  # 360 kWh a day; expected 300, upper edge 320.48
    raised = evaluate_once(conn=conn, now=NOW.astimezone(UTC))
    assert [(f.rule, f.severity) for f in raised] == [("energy.above_band", Severity.MEDIUM)]
    f = raised[0]
    assert f.subject.point == "e-coat" and f.subject.area == "coating" and f.subject.device == "em-coat"
    assert f.details["expected"] == pytest.approx(2 * 300.0)
    assert f.details["actual"] == pytest.approx(2 * 360.0)
    assert f.details["periods"] == 2
    assert f.details["since"] == DAYS[0].astimezone(UTC).isoformat()
    alarm = conn.execute("SELECT state FROM alarm WHERE rule = 'energy.above_band'").fetchone()
    assert alarm == ("active_unacked",)
    assert evaluate_once(conn=conn, now=NOW.astimezone(UTC) + timedelta(minutes=15)) == []  # edge-triggered


@pytest.mark.parametrize(
    ("rate", "produced", "why"),
    [
        (0.22, DAYS, "316.8 kWh a day is inside the band (upper edge 320.48)"),
        (0.25, DAYS[1:], "no production record for 03-03: the variable is unknown, not zero"),
    ],
)
def test_inside_the_band_or_without_the_variables_nothing_is_raised(conn, rate, produced, why) -> None:
    _world(conn, rate=rate, produced=produced)
    assert evaluate_once(conn=conn, now=NOW.astimezone(UTC)) == [], why
