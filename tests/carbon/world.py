"""A carbon test site: the factor library imported, Jiangsu settings, and activity rows the test controls."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg

from carbon import service
from carbon.factors import Factor, FactorLibrary, load_library
from carbon.ledger import SITE, Activity
from carbon.sources import RowsSource
from tests.support import unique_code

LIB = load_library()


def seed(conn: psycopg.Connection) -> str:
    """A site in Jiangsu (Asia/Shanghai) with the shipped library active; returns the site code."""
    site = unique_code("cb")
    conn.execute("INSERT INTO site (code, name) VALUES (%s, %s)", (site, "碳测试厂"))
    service.import_library(conn=conn, library=LIB, actor="test")
    service.set_site(conn=conn, site=site, actor="test", province="jiangsu", grid_region="east")
    return site


def monthly_source(year: int = 2025, kwh: dict[str, float] | None = None, site_kwh: float | None = None) -> RowsSource:
    """Hourly electricity of each area, the same every hour, through ``year``; the site meter adds 10 %."""
    kwh = kwh or {"coating": 100.0, "formation": 300.0}
    rows = []
    t = datetime(year, 1, 1, tzinfo=UTC) - timedelta(hours=8)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) - timedelta(hours=8)
    while t < end:
        for area, q in kwh.items():
            rows.append(("area", Activity(area, "electricity", t, q, "kWh")))
        rows.append(
            (
                "site",
                Activity(SITE, "electricity", t, site_kwh if site_kwh is not None else sum(kwh.values()) * 1.1, "kWh"),
            )
        )
        t += timedelta(hours=1)
    return RowsSource(rows)


def with_factor(lib: FactorLibrary, row_key: str, value: float, version: str) -> FactorLibrary:
    """The library with one factor changed, under a new version."""
    factors = tuple(replace(f, value=value) if f.row_key == row_key else f for f in lib.factors)
    return FactorLibrary(version, factors, f"{lib.sha256}-{version}")


__all__ = ["LIB", "Factor", "monthly_source", "seed", "with_factor"]
