"""Report benchmark: the time to generate each report for one month of a demo-like world.

The world: the demo plant (examples/demo-plant.yaml with its rule pack and response plans) applied to a fresh
database; one month (March 2026) of readings for every point at ``--interval-s`` (default 60 s; the demo's
devices send every 2-10 s, so a real month holds 6-30 times more rows, which only the device-health report
counts); ``--alarms`` alarms spread over the month through the alarm engine (raised, acknowledged by a person,
cleared; the response plans' interlock commands answered by the devices), one flood of 12 alarms, a bypass,
devices going offline and dead letters. Then each report is built (database queries) and rendered to PDF, XLSX
and CSV, timed separately, for the whole site and month; the incident report for one alarm and for the flood.

Prints the figures, then one JSON line with ``<kind>_s`` (build + all formats) per report.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from benchmarks.common import REPO_ROOT

SITE = "cz01"
MONTH_START = datetime(2026, 2, 28, 16, 0, tzinfo=UTC)  # 2026-03-01 00:00 in Shanghai
DAYS = 31


def _database(args: argparse.Namespace):
    """A fresh, migrated database: on the configured server, else an embedded pgserver."""
    import tempfile
    from pathlib import Path

    from core.embedded import start_pgserver, with_dbname
    from core.migrate import migrate

    if args.database_url:
        name = f"ehs_bench_reports_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = with_dbname(args.database_url, name)

        def stop() -> None:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        where = "configured server, fresh database"
    else:
        service = start_pgserver(Path(tempfile.mkdtemp(prefix="ehs-bench-reports-")) / "pgdata")
        url, stop, where = service.url, service.stop, "embedded pgserver"
    migrate(url)
    return url, stop, where


def _readings(conn: psycopg.Connection, interval_s: int) -> int:
    points = conn.execute(
        "SELECT p.id, coalesce(p.nominal, 1) FROM point p JOIN device d ON d.id = p.device_id "
        "JOIN site s ON s.id = d.site_id WHERE s.code = %s ORDER BY p.id",
        (SITE,),
    ).fetchall()
    steps = DAYS * 86400 // interval_s
    rng = random.Random(7)
    n = 0
    with conn.cursor().copy("COPY reading (time, point_id, value, quality) FROM STDIN") as copy:
        for pid, nominal in points:
            for i in range(steps):
                copy.write_row(
                    (MONTH_START + timedelta(seconds=i * interval_s), pid, nominal * (1 + rng.uniform(-0.05, 0.05)), 0)
                )
                n += 1
    return n


def _alarms(conn: psycopg.Connection, count: int) -> dict[str, int]:
    from alerts import commands as machine
    from alerts import config_store, flows, service, store
    from alerts.models import Actor
    from core.model import Finding, Severity, SubjectRef

    rng = random.Random(11)
    plans = config_store.load_config(conn=conn).section.response_plans  # the rules that start response plans
    plan_rules = sorted(
        {(p.site or SITE, p.area, rule) for p in plans for lv in p.levels for rule in lv.rules if "*" not in rule}
    )
    points = conn.execute(
        "SELECT a.code, d.code, p.key FROM point p JOIN device d ON d.id = p.device_id JOIN "
        "area a ON a.id = d.area_id JOIN site s ON s.id = d.site_id WHERE s.code = %s",
        (SITE,),
    ).fetchall()
    by_area: dict[str, list[tuple[str, str]]] = {}
    for area, device, key in points:
        by_area.setdefault(area, []).append((device, key))
    operator = Actor("user:bench-operator", "operator")

    def finding(rule: str, area: str, device: str, key: str, severity: Severity, at: datetime) -> Finding:
        return Finding(
            rule=rule,
            detector="bench",
            subject=SubjectRef(SITE, area, device, key),
            severity=severity,
            ts=at,
            value=1.0,
            message=rule,
            details={"finding_id": f"f-{uuid.uuid4().hex}", "name": rule, "name_en": rule},
        )

    made = {"alarms": 0, "commands": 0}
    for i in range(count):
        at = MONTH_START + timedelta(seconds=(i + rng.random()) * DAYS * 86400 / count)
        _site, area, rule = rng.choice(plan_rules)
        device, key = rng.choice(by_area.get(area) or [(d, k) for _, d, k in points])
        f = finding(rule, area, device, key, rng.choice([Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]), at)
        service.apply_findings(conn=conn, findings=[f], now=at)
        alarm_id = conn.execute(
            "SELECT id FROM alarm WHERE rule = %s AND source = %s ORDER BY id DESC LIMIT 1", (rule, f.subject.key)
        ).fetchone()[0]
        made["alarms"] += 1
        for command in store.fetch(
            conn, "SELECT * FROM interlock_command WHERE alarm_id = %s AND status = 'pending'", (alarm_id,)
        ):
            conn.execute("UPDATE interlock_command SET created_at = %s WHERE id = %s", (at, command["id"]))
            machine.mark_issued(
                conn=conn,
                command=command,
                now=at,
                payload={"id": str(command["id"]), "expires_at": int((at + timedelta(minutes=1)).timestamp() * 1000)},
            )
            for n, status in enumerate(("accepted", "done") if rng.random() > 0.05 else ("rejected",), 1):
                flows.apply_ack(
                    conn=conn,
                    site=command["site"],
                    device=command["device"],
                    ack={"id": str(command["id"]), "status": status},
                    now=at + timedelta(seconds=n),
                )
            made["commands"] += 1
        conn.execute("UPDATE notification_outbox SET created_at = %s WHERE alarm_id = %s", (at, alarm_id))
        if rng.random() < 0.9:
            service.acknowledge(conn=conn, alarm_id=alarm_id, actor=operator, now=at + timedelta(minutes=3))
        service.apply_findings(
            conn=conn,
            now=at + timedelta(minutes=12),
            findings=[
                Finding(
                    rule=rule,
                    detector="bench",
                    subject=f.subject,
                    severity=Severity.NORMAL,
                    ts=at + timedelta(minutes=12),
                    message="normal",
                    details={"finding_id": f"f-{uuid.uuid4().hex}"},
                )
            ],
        )
    flood_at = MONTH_START + timedelta(days=20, hours=3)
    area = "wastewater" if "wastewater" in by_area else sorted(by_area)[0]
    for n in range(12):
        device, key = by_area[area][n % len(by_area[area])]
        service.apply_findings(
            conn=conn,
            now=flood_at + timedelta(seconds=20 * n),
            findings=[
                finding(f"bench.flood.{n}", area, device, key, Severity.MEDIUM, flood_at + timedelta(seconds=20 * n))
            ],
        )
    made["flood"] = conn.execute("SELECT max(id) FROM alarm_flood").fetchone()[0]
    made["alarm"] = conn.execute("SELECT min(id) FROM alarm WHERE plan_level IS NOT NULL").fetchone()[0]
    conn.execute(
        "INSERT INTO device_status_event (device_id, time, status) SELECT d.id, %s, 'offline' FROM device d "
        "ORDER BY d.id LIMIT 5",
        (MONTH_START + timedelta(days=9),),
    )
    conn.execute(
        "INSERT INTO dead_letter (received_at, topic, payload, payload_size, reason, site_code, device_code) "
        "SELECT %s + g * interval '1 hour', 'ehs/v1/cz01/x/telemetry', 'x', 1, 'out_of_range', 'cz01', "
        "d.code FROM generate_series(1, 40) g, (SELECT code FROM device ORDER BY id LIMIT 3) d",
        (MONTH_START,),
    )
    return made


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=0, help="(accepted for `ehs bench`; not used)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("EHS_BENCH_DATABASE_URL"),
        help="server on which to create a fresh database (default: embedded pgserver)",
    )
    parser.add_argument("--interval-s", type=int, default=60, help="seconds between readings of a point")
    parser.add_argument("--alarms", type=int, default=300, help="alarms over the month")
    args = parser.parse_args(argv)

    from cli.plantfile import apply_full, load_full
    from core import timeseries
    from reports.kinds.incident import window
    from reports.model import Params, month_period
    from reports.registry import KINDS
    from reports.render import FORMATS

    url, stop, where = _database(args)
    try:
        t0 = time.perf_counter()
        with psycopg.connect(url) as conn:
            apply_full(conn=conn, full=load_full(REPO_ROOT / "examples" / "demo-plant.yaml"), source="bench")
            readings = _readings(conn, args.interval_s)
            conn.commit()
        with psycopg.connect(url, autocommit=True) as conn:  # the rollups device_health reads (as the worker keeps)
            timeseries.refresh_rollups(conn, now=datetime(2026, 4, 3, tzinfo=UTC))
        with psycopg.connect(url) as conn:
            made = _alarms(conn, args.alarms)
            conn.commit()
            conn.execute("ANALYZE")
        print(
            f"world: demo plant, {readings} readings (every {args.interval_s} s, {DAYS} days), "  # noqa: T201
            f"{made['alarms']} alarms, {made['commands']} interlock commands, a flood of 12; database: {where}; "
            f"built in {time.perf_counter() - t0:.1f} s"
        )
        since, until = month_period("2026-03", "Asia/Shanghai")
        now = until + timedelta(days=1)
        figures: dict[str, float] = {}
        cases = [
            ("alarm_month", Params(site=SITE, since=since, until=until)),
            ("interlocks", Params(site=SITE, since=since, until=until)),
            ("device_health", Params(site=SITE, since=since, until=until)),
            ("energy_month", Params(site=SITE, since=since, until=until)),
        ]
        with psycopg.connect(url) as conn:
            for key, subject in (
                ("incident", {"alarm_id": made["alarm"]}),
                ("incident_flood", {"flood_id": made["flood"]}),
            ):
                site, start, stop_at = window(conn, now=now, **subject)
                cases.append((key, Params(site=site, since=start, until=stop_at, **subject)))
            for key, params in cases:
                kind = "incident" if key.startswith("incident") else key
                t = time.perf_counter()
                doc = KINDS[kind].build(conn, params, now)
                build_s = time.perf_counter() - t
                parts = {"build": build_s}
                sizes, pages = {}, 0
                for name, fmt in FORMATS.items():
                    t = time.perf_counter()
                    content = fmt.render(doc)
                    parts[name] = time.perf_counter() - t
                    sizes[name] = len(content)
                    if name == "pdf":
                        pages = content.count(b"/Type /Page\n")
                total = sum(parts.values())
                figures[f"{key}_s"] = round(total, 3)
                figures[f"{key}_build_s"] = round(build_s, 3)
                figures[f"{key}_pdf_s"] = round(parts["pdf"], 3)
                print(
                    f"{key:15} build {build_s:6.2f} s  pdf {parts['pdf']:5.2f} s ({pages} pages, "  # noqa: T201
                    f"{sizes['pdf'] // 1024} KiB)  xlsx {parts['xlsx']:5.2f} s  csv {parts['csv']:5.2f} s  "
                    f"total {total:6.2f} s  rows {sum(len(t.rows) for t in doc.tables())}"
                )
        figures.update(readings=readings, alarms=made["alarms"], interval_s=args.interval_s)
        print(json.dumps(figures))  # noqa: T201
    finally:
        stop()


if __name__ == "__main__":
    main()
