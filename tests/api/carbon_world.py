"""Carbon records in the API test world (site s1 of tests/api/conftest.py): the factor library, Jiangsu settings,
the demo routing, a batch, a closed period, a reduction project and one measured by meter e-main's energy
baseline (set here); activity data from an empty source."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone

import pandas as pd
import psycopg

from carbon import service
from carbon.factors import load_library
from carbon.footprint import demo_routing
from carbon.sources import RowsSource
from energy import baseline_store
from energy.baseline import Baseline, fit_baseline
from tests.api.conftest import SITE

_SEQ = itertools.count(1)
SOURCE = RowsSource([])
BATCH = "B-seed"
CST = timezone(timedelta(hours=8))


def seed(url: str) -> None:
    with psycopg.connect(url) as conn:
        if conn.execute(
            "SELECT 1 FROM carbon_routing r JOIN site s ON s.id = r.site_id WHERE s.code = %s", (SITE,)
        ).fetchone():
            return
        service.import_library(conn=conn, library=load_library(), actor="test")
        service.set_site(conn=conn, site=SITE, actor="test", province="jiangsu", grid_region="east")
        service.set_routing(conn=conn, site=SITE, routing=demo_routing(), actor="test")
        service.add_batch(
            conn=conn,
            site=SITE,
            code=BATCH,
            product="pack",
            started_at=datetime(2025, 6, 1, tzinfo=UTC),
            ended_at=datetime(2025, 6, 2, tzinfo=UTC),
            output={"pack": 10},
            actor="test",
        )
        service.close_period(conn=conn, site=SITE, period="2025-06", source=SOURCE, actor="test")
        service.add_project(
            conn=conn,
            site=SITE,
            code="vfd",
            name="空压机变频",
            baseline_tco2e_per_year=100,
            started_on=date(2025, 1, 1),
            actor="test",
        )
        baseline_store.set_baseline(
            conn=conn, site=SITE, meter="e-main", model=meter_baseline(), reason="2024", actor="test"
        )
        service.add_project(
            conn=conn,
            site=SITE,
            code="led",
            name="照明改造",
            baseline_tco2e_per_year=10,
            started_on=date(2025, 1, 1),
            actor="test",
            baseline_meter="e-main",
        )


def meter_baseline() -> Baseline:
    """Meter e-main's monthly baseline over 2024: energy = 1000 + 2 x output kWh, with ±5 kWh in pairs of months
    of equal output (the noise is orthogonal to the constant and to output: least squares gives exactly 1000, 2)."""
    starts = pd.DatetimeIndex([datetime(2024, m, 1, tzinfo=CST) for m in range(1, 13)])
    output = [100, 100, 200, 200, 300, 300, 400, 400, 500, 500, 600, 600]
    noise = [5, -5] * 6
    energy = pd.Series([1000 + 2 * x + e for x, e in zip(output, noise, strict=True)], index=starts)
    return fit_baseline(energy, pd.DataFrame({"output": output}, index=starts), granularity="monthly")


def n() -> int:
    return next(_SEQ)


def period() -> str:
    k = n() % 24
    return f"{2024 + k // 12}-{k % 12 + 1:02d}"
