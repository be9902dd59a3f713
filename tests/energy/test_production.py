"""Production from output counters per local day, and energy per unit of output in the overview."""

from __future__ import annotations

from datetime import timedelta

import pytest

from energy import jobs
from energy.summary import summary
from tests.energy.world import T0, World


def test_output_counter_becomes_daily_production_and_per_unit_energy(conn) -> None:
    w = World(conn)
    minutes = range(0, 24 * 60 + 1, 15)  # T0 = 08:00 local: two local days
    w.readings("cells", [(T0 + timedelta(minutes=m), 100.0 + m) for m in minutes])
    w.readings("e-coat", [(T0 + timedelta(minutes=m), 2.0 * m) for m in minutes])
    done = jobs.refresh(conn, now=T0 + timedelta(days=1, minutes=5), site=w.site)
    assert done.production_days == 2
    days = conn.execute("SELECT quantity, unit, source FROM energy_production ORDER BY start").fetchall()
    assert [d[0] for d in days] == pytest.approx([16 * 60, 8 * 60])  # until local midnight, then the rest
    assert {(d[1], d[2]) for d in days} == {("cells", "counter")}
    # a counter reset does not count negative
    w.readings("cells", [(T0 + timedelta(days=1, minutes=15), 3.0), (T0 + timedelta(days=1, minutes=30), 18.0)])
    jobs.refresh(conn, now=T0 + timedelta(days=1, minutes=35), site=w.site)
    assert conn.execute("SELECT sum(quantity) FROM energy_production").fetchone()[0] == pytest.approx(1440 + 18)
    over = summary(conn, site=w.site, now=T0 + timedelta(hours=20))  # 04:00 local, day two
    coating = next(a for a in over["month"]["by_area"] if a["area"] == "coating")
    assert coating["output"] == pytest.approx(1440 + 18)
    assert coating["per_unit_kgce"] == pytest.approx(coating["kgce"] / coating["output"])
    assert coating["by_medium"]["electricity"] == pytest.approx(2.0 * 24 * 60)
