"""Hazardous-waste ledger at scale: five years of a large plant (one million ledger records), container lookup and
monthly declaration latency.

Loads a fresh database with ``--records`` ledger rows (about a quarter as many containers, each through
generation, into storage, out of storage and sent out, spread over five years, with real batch codes) by COPY,
then measures for ``--seconds``: the container lookup the PWA makes after a scan (the container, its waste type
and its ledger history, ``GET /api/v1/hazwaste/containers/{id}``'s queries) and the monthly declaration figures of
a random month (``hazwaste.exports.monthly_declaration``). Goals (issue 16): lookup p95 <= 100 ms, declaration
p95 <= 2 s. The last line is one JSON object.
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

import psycopg

TYPES = [
    ("electrolyte", "900-404-06", 40),
    ("nmp", "900-404-06", 20),
    ("carbon", "900-039-49", 90),
    ("packaging", "900-041-49", 30),
    ("test-liquid", "900-047-49", 60),
    ("adhesive", "900-014-13", 50),
    ("oil", "900-249-08", 120),
    ("boards", "900-045-49", 150),
]
STAGES = ("generation", "storage_in", "storage_out", "sent_disposal")
PREFIX = {"generation": "HWCS", "storage_in": "HWRK", "storage_out": "HWCK", "sent_disposal": "HWWWCZ"}
TZ = ZoneInfo("Asia/Shanghai")


def _database(args: argparse.Namespace, work: Path):
    """A fresh migrated database: on the configured server, else an embedded pgserver. Returns (url, stop)."""
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


def _catalogue(conn: psycopg.Connection) -> tuple[int, dict[str, int], list[int]]:
    from core.plant import PlantConfig, apply_plant
    from hazwaste.catalogue import HazwasteSection, apply_section

    apply_plant(
        conn=conn, plant=PlantConfig.model_validate({"sites": [{"code": "big", "name": "大型电池厂"}]}), source="bench"
    )
    apply_section(
        conn=conn,
        section=HazwasteSection.model_validate(
            {
                "hazwaste": [
                    {
                        "site": "big",
                        "waste_types": [{"code": c, "name": c, "waste_code": w} for c, w, _ in TYPES],
                        "facilities": [
                            {"code": f"WH-{i}", "name": f"危废库 {i}", "kind": "warehouse", "capacity_kg": 500000}
                            for i in range(1, 5)
                        ],
                    }
                ]
            }
        ),
    )
    site = conn.execute("SELECT id FROM site WHERE code = 'big'").fetchone()[0]
    types = dict(conn.execute("SELECT code, id FROM hw_waste_type WHERE site_id = %s", (site,)).fetchall())
    stores = [r[0] for r in conn.execute("SELECT id FROM hw_facility WHERE site_id = %s ORDER BY id", (site,))]
    return site, types, stores


def load(conn: psycopg.Connection, records: int, now: datetime, seed: int = 1) -> dict[str, float]:
    """COPY ``records`` ledger rows (and their containers) spread over the five years before ``now``."""
    rng = random.Random(seed)
    site, types, stores = _catalogue(conn)
    n = round(records / (len(STAGES) - 0.08))  # the newest containers have not gone through every stage
    span = timedelta(days=5 * 365)
    seq: dict[tuple[str, str], int] = {}
    containers, rows = [], []
    cid = 0
    while len(rows) < records:
        cid += 1
        code, _, median_days = TYPES[rng.randrange(len(TYPES))]
        t = now - span + span * min(cid / n, 1) - timedelta(minutes=rng.randrange(1, 600))
        kg = round(rng.uniform(5, 900), 1)
        store = rng.choice(stores)
        times = [t, t + timedelta(hours=rng.uniform(1, 8))]
        times.append(times[1] + timedelta(days=median_days * rng.lognormvariate(0, 0.4)))
        times.append(times[2] + timedelta(hours=rng.uniform(1, 6)))
        done = [s for s, at in zip(STAGES, times, strict=True) if at <= now]
        last_batch, first_stored = None, None
        for stage, at in zip(done, times, strict=False):
            day = at.astimezone(TZ).strftime("%Y%m%d")
            k = seq[(PREFIX[stage], day)] = seq.get((PREFIX[stage], day), 0) + 1
            batch = f"{PREFIX[stage]}{day}{k:03d}"
            facility = store if stage in ("storage_in", "storage_out") else None
            rows.append((site, cid, stage, batch, at, types[code], kg, facility, "张三", last_batch, "bench"))
            last_batch = batch
            first_stored = first_stored or (at if stage == "storage_in" else None)
        stage = done[-1]
        containers.append(
            (
                cid,
                site,
                f"C{cid:07d}",
                types[code],
                "drum",
                200.0,
                stage,
                store if stage == "storage_in" else None,
                kg,
                last_batch,
                times[len(done) - 1],
                first_stored,
            )
        )
    started = time.perf_counter()
    with conn.cursor() as cur:
        with cur.copy(
            "COPY hw_container (id, site_id, code, waste_type_id, container_type, volume_l, stage, "
            "facility_id, weight_kg, last_batch, last_at, first_stored_at) FROM STDIN"
        ) as copy:
            for row in containers:
                copy.write_row(row)
        with cur.copy(
            "COPY hw_ledger (site_id, container_id, stage, batch_code, at, waste_type_id, quantity_kg, "
            "facility_id, handler, source_batch, recorded_by) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute("SELECT setval('hw_container_id_seq', %s)", (cid,))
    copy_s = time.perf_counter() - started
    conn.commit()
    conn.execute("ANALYZE hw_container")
    conn.execute("ANALYZE hw_ledger")
    conn.commit()
    return {
        "site": site,
        "containers": cid,
        "records": len(rows),
        "copy_s": round(copy_s, 1),
        "copy_rows_per_s": round((len(rows) + n) / copy_s),
    }


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def measure(url: str, site: int, containers: int, seconds: float, now: datetime, seed: int = 2) -> dict:
    from hazwaste import exports, ledger

    rng = random.Random(seed)
    lookups: list[float] = []
    declarations: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.perf_counter() + seconds * 0.5
        while time.perf_counter() < deadline or len(lookups) < 200:
            cid = rng.randint(1, containers)
            t = time.perf_counter()
            row = ledger.get_container(conn=conn, container_id=cid, site_ids=[site])
            history = ledger.history(conn=conn, container_id=cid)
            lookups.append((time.perf_counter() - t) * 1000)
            assert row is not None and history
        deadline = time.perf_counter() + seconds * 0.5
        while time.perf_counter() < deadline or len(declarations) < 10:
            months_back = rng.randint(1, 59)
            month = (now.astimezone(TZ).replace(day=1) - timedelta(days=28 * months_back)).strftime("%Y-%m")
            start, end = exports.period_bounds(month, "Asia/Shanghai")
            t = time.perf_counter()
            figures = exports.monthly_declaration(conn=conn, site_id=site, start=start, end=end)
            declarations.append((time.perf_counter() - t) * 1000)
            assert figures
        # one periodic compliance evaluation (what the alerts worker runs every few minutes), stage model included
        from hazwaste import compliance

        t = time.perf_counter()
        with conn.transaction(force_rollback=True):
            found = compliance.conditions(conn=conn, now=now)
        evaluation_s = round(time.perf_counter() - t, 2)
    return {
        "evaluation_s": evaluation_s,
        "evaluation_conditions": len(found),
        "lookups": len(lookups),
        "lookup_p50_ms": _p(lookups, 0.5),
        "lookup_p95_ms": _p(lookups, 0.95),
        "lookup_p99_ms": _p(lookups, 0.99),
        "declarations": len(declarations),
        "declaration_p50_ms": _p(declarations, 0.5),
        "declaration_p95_ms": _p(declarations, 0.95),
        "declaration_mean_ms": round(statistics.fmean(declarations), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks/hazwaste.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time (half lookups, half declarations)")
    parser.add_argument("--records", type=int, default=1_000_000, help="ledger records to load")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("EHS_BENCH_DATABASE_URL"),
        help="server on which to create a fresh database (default: embedded pgserver)",
    )
    args = parser.parse_args(argv)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    work = Path(tempfile.mkdtemp(prefix="ehs-bench-hazwaste-"))
    url, where, stop = _database(args, work)
    try:
        with psycopg.connect(url) as conn:
            loaded = load(conn, args.records, now)
        result = {"database": where, **loaded, **measure(url, loaded["site"], loaded["containers"], args.seconds, now)}
    finally:
        stop()
    for line in (
        f"database    : {result['database']}",
        f"loaded      : {result['records']} ledger records, {result['containers']} containers over 5 years, COPY "
        f"{result['copy_s']} s ({result['copy_rows_per_s']} rows/s)",
        f"lookup      : {result['lookups']} container lookups (container + history); p50 {result['lookup_p50_ms']} ms,"
        f" p95 {result['lookup_p95_ms']} ms, p99 {result['lookup_p99_ms']} ms   (goal p95 <= 100 ms)",
        f"declaration : {result['declarations']} monthly declarations; p50 {result['declaration_p50_ms']} ms, "
        f"p95 {result['declaration_p95_ms']} ms   (goal p95 <= 2000 ms)",
        f"evaluation  : one compliance evaluation with the stage model {result['evaluation_s']} s, "
        f"{result['evaluation_conditions']} conditions",
    ):
        print(line)  # noqa: T201
    result.pop("site")
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    main()
