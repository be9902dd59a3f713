"""Carbon at the demo plant's scale: the product footprint of one year of daily batches and the monthly inventory of
one year (issue 14: goal under 2 s each on the 2-core machine).

Loads a fresh database with the factor library, the demo routing (cathode and anode branches to PACK), 365 daily
batches, monthly refrigerant and diesel entries and green certificates; activity data come from an in-memory
source holding one year of hourly electricity per area and gas and steam where they are used, answering each
window with its sums, as the energy ledger does for a bucket (the energy ledger's own query time is measured by
``ehs bench energy``). Then times: every batch's footprint (each its own window, emissions and output; the
database read once for the year), the twelve monthly inventories plus the annual one, closing the months, and
rendering the twelve monthly inventory reports as XLSX and PDF. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from carbon import service
from carbon.factors import load_library
from carbon.footprint import Routing, demo_routing
from carbon.ledger import SITE, Activity

AREAS = {
    "coating": 900.0,
    "rolling": 250.0,
    "slitting": 120.0,
    "stacking": 300.0,
    "welding": 260.0,
    "injection": 150.0,
    "formation": 1400.0,
    "aging": 200.0,
    "pack": 180.0,
}  # mean kW per area
GAS = {"coating": ("natural_gas", 60.0, "Nm3")}  # NMP dryers, Nm3/h
STEAM = {"formation": ("steam", 0.4, "t")}  # t/h
YEAR = 2025
T0 = datetime(YEAR, 1, 1, tzinfo=UTC) - timedelta(hours=8)  # Asia/Shanghai midnight


class HourlySource:
    """One year of hourly activity per (key, medium); a window answers one row per series with its sum."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        hours = 366 * 24
        self.times = [T0 + timedelta(hours=h) for h in range(hours)]
        self.series: dict[tuple[str, str, str, str], list[float]] = {}
        total = [0.0] * hours
        for area, kw in AREAS.items():
            load = [kw * (0.75 + 0.5 * rng.random()) for _ in range(hours)]
            total = [a + b for a, b in zip(total, load, strict=True)]
            self._add("area", area, "electricity", "kWh", load)
            for extra in (GAS.get(area), STEAM.get(area)):
                if extra:
                    self._add(
                        "area", area, extra[0], extra[2], [extra[1] * (0.8 + 0.4 * rng.random()) for _ in range(hours)]
                    )
        self._add("site", SITE, "electricity", "kWh", [t * 1.08 for t in total])  # offices, lighting, losses
        self.rows_held = sum(len(v) for v in self.series.values())

    def _add(self, by: str, key: str, medium: str, unit: str, values: list[float]) -> None:
        prefix = [0.0]
        for v in values:
            prefix.append(prefix[-1] + v)
        self.series[(by, key, medium, unit)] = prefix

    def __call__(self, conn, *, site: str, start: datetime, end: datetime, bucket: str, by: str) -> list[Activity]:
        i, j = bisect.bisect_left(self.times, start), bisect.bisect_left(self.times, end)
        return [
            Activity(key, medium, start, prefix[j] - prefix[i], unit)
            for (b, key, medium, unit), prefix in self.series.items()
            if b == by
        ]


def demand(routing: Routing, packs: float) -> dict[str, float]:
    """Good output each process must make for ``packs`` good packs (inputs divided by yields, upstream)."""
    procs = routing.by_code()
    need = {c: 0.0 for c in procs}
    need[routing.product.pack_process] = packs
    for code in reversed(routing.order()):
        started = need[code] / procs[code].yield_
        for i in procs[code].inputs:
            need[i.process] += started * i.quantity
    return need


def _database(args: argparse.Namespace, work: Path):
    from core.embedded import start_pgserver, with_dbname
    from core.migrate import migrate

    if args.database_url:
        name = f"ehs_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def stop() -> None:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        url, where = with_dbname(args.database_url, name), "configured server, fresh database"
    else:
        service_ = start_pgserver(work / "pgdata")
        url, where, stop = service_.url, "embedded pgserver", service_.stop
    migrate(url)
    return url, where, stop


def load(conn: psycopg.Connection, batches: int) -> dict:
    conn.execute("INSERT INTO site (code, name) VALUES ('demo', '演示电池厂')")
    service.import_library(conn=conn, library=load_library(), actor="bench")
    service.set_site(conn=conn, site="demo", actor="bench", province="jiangsu", grid_region="east")
    routing = demo_routing()
    service.set_routing(conn=conn, site="demo", routing=routing, actor="bench")
    per_day = demand(routing, 200)
    for d in range(batches):
        start = T0 + timedelta(days=d % 365)
        service.add_batch(
            conn=conn,
            site="demo",
            code=f"B{YEAR}{d:04d}",
            product="pack",
            started_at=start,
            ended_at=start + timedelta(days=1),
            output=per_day,
            actor="bench",
        )
    for m in range(1, 13):
        service.add_entry(
            conn=conn,
            site="demo",
            month=date(YEAR, m, 1),
            kind="fugitive",
            code="R-410A",
            quantity=1.5,
            unit="kg",
            area="formation",
            actor="bench",
        )
        service.add_entry(
            conn=conn,
            site="demo",
            month=date(YEAR, m, 1),
            kind="fuel",
            code="diesel",
            quantity=0.8,
            unit="t",
            actor="bench",
        )
    service.add_certificates(
        conn=conn,
        site="demo",
        scheme="GEC",
        serial_prefix="B",
        serial_first=1,
        serial_last=20000,
        vintage_year=YEAR,
        period_start=date(YEAR, 1, 1),
        period_end=date(YEAR + 1, 1, 1),
        reference="bench",
        actor="bench",
    )
    conn.commit()
    return {"batches": batches}


def measure(url: str, source: HourlySource, batches: int) -> dict:
    with psycopg.connect(url) as conn:
        lib = service.library(conn=conn)
        t = time.perf_counter()
        results = service.batch_footprints(
            conn=conn, site="demo", start=T0, end=T0 + timedelta(days=366), source=source, basis="market"
        )
        footprint_s = time.perf_counter() - t
        t = time.perf_counter()
        months = [
            service.compute_period(conn=conn, site="demo", period=f"{YEAR}-{m:02d}", source=source, lib=lib)
            for m in range(1, 13)
        ]
        annual = service.compute_period(conn=conn, site="demo", period=str(YEAR), source=source, lib=lib)
        inventory_s = time.perf_counter() - t
        t = time.perf_counter()
        for m in range(1, 13):
            service.close_period(conn=conn, site="demo", period=f"{YEAR}-{m:02d}", source=source, actor="bench")
        close_s = time.perf_counter() - t
        report_s, report_bytes = _reports(conn, source)
        conn.rollback()
    kwh = [r["kg_per_kwh"] for r in results]
    return {
        "footprint_batches": len(results),
        "footprint_s": round(footprint_s, 3),
        "footprint_ms_per_batch": round(1000 * footprint_s / max(len(results), 1), 2),
        "kg_per_kwh_median": round(sorted(kwh)[len(kwh) // 2], 2),
        "inventory_months": len(months),
        "inventory_s": round(inventory_s, 3),
        "annual_total_location_t": round(annual["totals"]["total_location_kg"] / 1000, 1),
        "annual_total_market_t": round(annual["totals"]["total_market_kg"] / 1000, 1),
        "close_12_months_s": round(close_s, 3),
        "report_12_months_xlsx_pdf_s": round(report_s, 3),
        "report_bytes": report_bytes,
    }


def _reports(conn: psycopg.Connection, source: HourlySource) -> tuple[float, int]:
    """The twelve monthly inventory reports (closed months: their frozen ledgers), built and rendered to XLSX
    and PDF."""
    from reports.kinds import carbon_inventory
    from reports.model import Params, month_period
    from reports.render import FORMATS

    carbon_inventory.SOURCE = source
    size = 0
    t = time.perf_counter()
    for m in range(1, 13):
        since, until = month_period(f"{YEAR}-{m:02d}", "Asia/Shanghai")
        doc = carbon_inventory.build(conn, Params("demo", since, until), datetime(YEAR + 1, 2, 1, tzinfo=UTC))
        size += len(FORMATS["xlsx"].render(doc)) + len(FORMATS["pdf"].render(doc))
    return time.perf_counter() - t, size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks/carbon.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="unused: the benchmark runs its fixed work once")
    parser.add_argument("--batches", type=int, default=365, help="daily batches of the year")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("EHS_BENCH_DATABASE_URL"),
        help="server on which to create a fresh database (default: embedded pgserver)",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ehs-bench-carbon-"))
    url, where, stop = _database(args, work)
    try:
        source = HourlySource()
        with psycopg.connect(url) as conn:
            loaded = load(conn, args.batches)
        result = {"database": where, **loaded, "activity_rows": source.rows_held, **measure(url, source, args.batches)}
    finally:
        stop()
    for line in (
        f"database   : {result['database']}; {result['activity_rows']} hourly activity values in memory",
        f"footprint  : {result['footprint_batches']} batch footprints in {result['footprint_s']} s "
        f"({result['footprint_ms_per_batch']} ms each; median {result['kg_per_kwh_median']} kgCO2e/kWh, "
        "process energy and materials)   (goal < 2 s)",
        f"inventory  : 12 monthly + 1 annual inventories in {result['inventory_s']} s   (goal < 2 s); annual "
        f"{result['annual_total_location_t']} t location-based, {result['annual_total_market_t']} t market-based",
        f"close      : 12 months closed (computed and frozen) in {result['close_12_months_s']} s",
        f"reports    : 12 monthly inventory reports as XLSX and PDF in {result['report_12_months_xlsx_pdf_s']} s "
        f"({result['report_bytes']} bytes)",
    ):
        print(line)  # noqa: T201
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    main()
