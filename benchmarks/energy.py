"""Energy ledgers at scale: one site with 500 meters and one year of 15-minute counter readings.

Loads a fresh database with the plant (a site incomer, 20 process feeders under it, the other meters under the
feeders, spread over 10 process areas) and COPYs the readings into ``reading``; measures in the same run the raw
COPY ceiling of the same rows (binary COPY into a scratch table of the same shape), then the backfill: one
``energy.intervals.refresh`` turning every reading into 15-minute intervals (with cost under the Jiangsu
time-of-use tariff) and site-local days. The backfill rate is readings/s into ledgers; its ratio to the COPY
ceiling is the goal (>= 0.5). Then for ``--seconds`` it runs the month-by-process ledger (by area, daily buckets
over a random month) and the year-by-month ledger (by area, monthly buckets over the year) and prints their
p50/p95 (goal p95 <= 200 ms each). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 1, 1, tzinfo=TZ).astimezone(UTC)
AREAS = [
    "coating",
    "drying",
    "rolling",
    "slitting",
    "winding_stacking",
    "injection",
    "formation",
    "grading",
    "aging",
    "pack",
]


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
        service = start_pgserver(work / "pgdata")
        url, where, stop = service.url, "embedded pgserver", service.stop
    migrate(url)
    return url, where, stop


def plant(meters: int) -> dict:
    """The plant file of the benchmark site: ``meters`` electricity meters in a three-level tree."""
    feeders = min(20, max(1, meters // 10))
    devices: dict[str, list[dict]] = {a: [] for a in AREAS}
    entries = []
    for i in range(meters):
        area = "utilities" if i == 0 else AREAS[(i - 1) % len(AREAS)]
        code = f"em-{i:04d}"
        parent = None if i == 0 else "m-0000" if i <= feeders else f"m-{1 + (i - feeders - 1) % feeders:04d}"
        devices.setdefault(area, []).append(
            {
                "code": code,
                "name": f"电表 {i}",
                "kind": "energy_meter",
                "interval_s": 900,
                "points": [{"key": "energy_kwh", "name": "电能", "quantity": "energy"}],
            }
        )
        entries.append(
            {
                "code": f"m-{i:04d}",
                "name": f"电表 {i}",
                "medium": "electricity",
                "point": f"{code}/energy_kwh",
                "area": area,
                **({"parent": parent} if parent else {}),
            }
        )
    return {
        "sites": [
            {
                "code": "big",
                "name": "基准工厂",
                "timezone": "Asia/Shanghai",
                "areas": [
                    {"code": a, "name": a, "process": a, "devices": devices.get(a, [])} for a in [*AREAS, "utilities"]
                ],
                "meters": entries,
            }
        ]
    }


def _series(rng: np.random.Generator, n: int, kw: float) -> np.ndarray:
    """A counter (kWh) read every 15 minutes: a day shape, noise, and a start value."""
    hours = (np.arange(n) % 96) / 4.0
    shape = 0.6 + 0.4 * np.sin((hours - 6) / 24 * 2 * np.pi).clip(0)
    step = kw * 0.25 * shape * rng.uniform(0.8, 1.2, n)
    return rng.uniform(0, 1e5) + np.concatenate(([0.0], np.cumsum(step[1:])))


def _copy(conn: psycopg.Connection, table: str, point_ids: list[int], n: int, seed: int) -> float:
    """Binary COPY of every meter's readings into ``table``; returns seconds."""
    rng = np.random.default_rng(seed)
    times = [START + timedelta(minutes=15 * k) for k in range(n)]
    began = time.perf_counter()
    with (
        conn.cursor() as cur,
        cur.copy(
            f"COPY {table} (time, point_id, value, quality) FROM STDIN "  # noqa: S608
            "(FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["timestamptz", "int4", "float8", "int2"])
        for pid in point_ids:
            values = _series(rng, n, 50.0).tolist()
            for t, v in zip(times, values, strict=True):
                copy.write_row((t, pid, v, 0))
    conn.commit()
    return time.perf_counter() - began


def load(url: str, meters: int, days: int) -> dict:
    from core import storage
    from core.plant import PlantConfig, apply_plant
    from energy.tariffs import DEFAULT_TARIFF, load_tariff_file, save_tariff

    n = days * 96
    with psycopg.connect(url) as conn:
        apply_plant(conn=conn, plant=PlantConfig.model_validate(plant(meters)), source="bench")
        site_id = conn.execute("SELECT id FROM site WHERE code = 'big'").fetchone()[0]
        spec = load_tariff_file(DEFAULT_TARIFF).model_copy(update={"valid_from": START.date() - timedelta(days=1)})
        save_tariff(conn=conn, site_id=site_id, spec=spec, actor="bench")
        point_ids = [
            r[0]
            for r in conn.execute("SELECT point_id FROM meter WHERE site_id = %s ORDER BY id", (site_id,)).fetchall()
        ]
        storage.ensure_partitions(conn, [START + timedelta(days=d) for d in range(days + 1)])
        conn.execute("CREATE TABLE reading_copy_ceiling (LIKE reading INCLUDING DEFAULTS)")
        conn.execute("ALTER TABLE reading_copy_ceiling ADD PRIMARY KEY (point_id, time)")
        conn.commit()
        ceiling_s = _copy(conn, "reading_copy_ceiling", point_ids, n, seed=7)
        conn.execute("DROP TABLE reading_copy_ceiling")
        conn.commit()
        load_s = _copy(conn, "reading", point_ids, n, seed=7)
        conn.execute("ANALYZE reading")
        conn.execute("ANALYZE meter")
        conn.execute("ANALYZE area")
        conn.commit()
    return {
        "meters": meters,
        "days": days,
        "readings": meters * n,
        "copy_ceiling_s": round(ceiling_s, 2),
        "copy_ceiling_per_s": round(meters * n / ceiling_s),
        "load_s": round(load_s, 2),
    }


def backfill(url: str, readings: int, days: int) -> dict:
    from energy import intervals

    with psycopg.connect(url) as conn:
        began = time.perf_counter()
        with conn.transaction():
            done = intervals.refresh(conn, now=START + timedelta(days=days, minutes=5))
        seconds = time.perf_counter() - began
        conn.execute("ANALYZE energy_interval")
        conn.execute("ANALYZE energy_day")
        conn.commit()
    return {
        "backfill_s": round(seconds, 2),
        "backfill_readings_per_s": round(readings / seconds),
        "intervals": done.intervals,
    }


def _p(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100)[q - 1], 1) if len(values) >= 2 else round(values[0], 1)


def measure(url: str, days: int, seconds: float) -> dict:
    from energy.ledger import ledger

    rng = random.Random(3)
    months = max(1, days // 31)
    month_ms, year_ms = [], []
    rows_month = rows_year = 0
    with psycopg.connect(url) as conn:
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            m = rng.randrange(months)
            start = datetime(2025 + m // 12, 1 + m % 12, 1, tzinfo=TZ)
            end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=TZ)
            t = time.perf_counter()
            rows_month = len(ledger(conn, site="big", start=start, end=end, bucket="day", by="area"))
            month_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            rows_year = len(
                ledger(
                    conn,
                    site="big",
                    start=datetime(2025, 1, 1, tzinfo=TZ),
                    end=datetime(2026, 1, 1, tzinfo=TZ),
                    bucket="month",
                    by="area",
                )
            )
            year_ms.append((time.perf_counter() - t) * 1000)
    return {
        "month_by_process_p50_ms": _p(month_ms, 50),
        "month_by_process_p95_ms": _p(month_ms, 95),
        "year_by_month_p50_ms": _p(year_ms, 50),
        "year_by_month_p95_ms": _p(year_ms, 95),
        "queries": len(month_ms),
        "month_rows": rows_month,
        "year_rows": rows_year,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks/energy.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time of the ledger queries")
    parser.add_argument("--meters", type=int, default=500, help="meters of the site")
    parser.add_argument("--days", type=int, default=365, help="days of 15-minute readings")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("EHS_BENCH_DATABASE_URL"),
        help="server on which to create a fresh database (default: embedded pgserver)",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ehs-bench-energy-"))
    url, where, stop = _database(args, work)
    try:
        loaded = load(url, args.meters, args.days)
        filled = backfill(url, loaded["readings"], args.days)
        result = {"database": where, **loaded, **filled, **measure(url, args.days, args.seconds)}
    finally:
        stop()
    result["ratio_to_copy"] = round(result["backfill_readings_per_s"] / result["copy_ceiling_per_s"], 3)
    for line in (
        f"database  : {result['database']}",
        f"data      : {result['meters']} meters x {result['days']} days of 15-minute readings = "
        f"{result['readings']} readings",
        f"COPY      : ceiling {result['copy_ceiling_per_s']} rows/s ({result['copy_ceiling_s']} s, binary COPY of the "
        f"same rows into a scratch table)",
        f"backfill  : {result['backfill_readings_per_s']} readings/s into ledgers ({result['backfill_s']} s, "
        f"{result['intervals']} intervals + days), ratio to COPY {result['ratio_to_copy']}   (goal >= 0.5)",
        f"month     : month-by-process ledger p50 {result['month_by_process_p50_ms']} ms, p95 "
        f"{result['month_by_process_p95_ms']} ms ({result['month_rows']} rows)   (goal p95 <= 200 ms)",
        f"year      : year-by-month ledger p50 {result['year_by_month_p50_ms']} ms, p95 "
        f"{result['year_by_month_p95_ms']} ms ({result['year_rows']} rows)   (goal p95 <= 200 ms)",
    ):
        print(line)  # noqa: T201
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    main()
