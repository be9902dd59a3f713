"""API benchmark: ``GET /api/v1/latest`` for 10,000 points, and live delivery to 200 WebSocket clients.

A fresh database gets a plant of 1,000 devices x 10 points with readings. The API runs as its own process
(``uvicorn api.main:create_app --factory``, one worker). First one client signs in and calls
``/api/v1/latest`` back to back for ``--seconds``: latency percentiles. Then a client process opens ``--clients``
WebSocket connections, each subscribed to 50 points and to alarm events, while this process commits readings
the way ingest does (one transaction per batch with its NOTIFY; every point once a second) and sends hand-made
``alarm_changed`` notifications. Delivery delay = the client's receive time minus the reading's time (set just
before its commit) or the alarm event's ``at``: commit, NOTIFY, the coalescing interval, the latest-values
query, sending and the client's parsing are all inside it. One machine, one clock.

Prints the figures, then one JSON line (ARCHITECTURE.md, Performance targets).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

REPO_ROOT = Path(__file__).resolve().parents[1]
SITE = "bench"
POINTS_PER_CLIENT = 50
#: Seconds for the clients to connect before readings flow, and to receive the last ones after.
SETTLE_S, DRAIN_S = 10.0, 3.0


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1]}


# --- WebSocket client process ------------------------------------------------------------------------------


async def _client(url: str, token: str, points: list[int], stop_at: float, out: dict) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, compression=None, max_size=None, open_timeout=60) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        await ws.send(json.dumps({"type": "subscribe", "points": points, "alarms": "*"}))
        snapshot = True  # the first readings are the current values: not deliveries
        while (left := stop_at - time.time()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), left)
            except TimeoutError:
                break
            now = time.time()
            message = json.loads(raw)
            if message["type"] == "subscribed":
                out["connected"] += 1
            elif message["type"] == "readings" and snapshot:
                snapshot = False
            elif message["type"] == "readings":
                for item in message["items"]:
                    out["readings"].append((now - datetime.fromisoformat(item["time"]).timestamp()) * 1000)
            elif message["type"] == "alarm":
                out["alarms"].append((now - datetime.fromisoformat(message["event"]["at"]).timestamp()) * 1000)
            elif message["type"] in ("gap", "error"):
                out["problems"].append(message)


def ws_clients(args: argparse.Namespace) -> None:
    """Run ``--clients`` connections until ``--seconds`` have passed; print one JSON line of delays."""
    points = json.loads(Path(args.points_file).read_text())
    out: dict = {"readings": [], "alarms": [], "problems": [], "connected": 0}
    stop_at = time.time() + args.seconds

    async def main() -> None:
        tasks = []
        for i in range(args.clients):
            mine = points[(i * POINTS_PER_CLIENT) % len(points) :][:POINTS_PER_CLIENT]
            tasks.append(asyncio.create_task(_client(args.ws_url, args.token, mine, stop_at, out)))
            await asyncio.sleep(0.005)  # do not open 200 connections in one burst
        results = await asyncio.gather(*tasks, return_exceptions=True)
        out["failed"] = [repr(r) for r in results if isinstance(r, BaseException)]

    asyncio.run(main())
    print(
        json.dumps(
            {
                "connected": out["connected"],
                "failed": out["failed"][:5],
                "problems": out["problems"][:5],  # noqa: T201
                "readings": out["readings"],
                "alarms": out["alarms"],
            }
        )
    )


# --- the benchmark -------------------------------------------------------------------------------------------


def _seed(url: str, devices: int, points: int) -> list[int]:
    from benchmarks.ingest import _plant
    from core.migrate import migrate
    from core.plant import apply_plant
    from ingest.writer import copy_rows

    migrate(url)
    with psycopg.connect(url) as conn:
        apply_plant(conn=conn, plant=_plant(devices, points), source="benchmark")
        ids = [r[0] for r in conn.execute("SELECT id FROM point ORDER BY id").fetchall()]
        start = datetime.now(UTC) - timedelta(minutes=10)
        rows = [(start + timedelta(seconds=s * 60), pid, 20.0 + s, 0) for s in range(10) for pid in ids]
        copy_rows(conn, "reading", rows)
        conn.execute("ANALYZE")
    return ids


def _admin_token(url: str, base: str) -> str:
    from api.policy import Role, console
    from api.users import create_user

    password = secrets.token_urlsafe(18)
    with psycopg.connect(url) as conn, conn.transaction():
        create_user(
            conn=conn,
            actor=console("benchmark"),
            username="bench-admin",
            role=Role.ADMIN,
            sites=[],
            all_sites=True,
            password=password,
        )
    reply = httpx.post(f"{base}/api/v1/auth/token", data={"username": "bench-admin", "password": password}, timeout=30)
    reply.raise_for_status()
    return reply.json()["access_token"]


def _measure_latest(base: str, token: str, seconds: float, expected: int) -> tuple[list[float], int]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        first = client.get("/api/v1/latest")
        first.raise_for_status()
        rows = len(first.json())
        if rows != expected:
            raise RuntimeError(f"/api/v1/latest returned {rows} rows, expected {expected}")
        for _ in range(20):  # warm-up: pool connections, plans, caches
            client.get("/api/v1/latest")
        latencies = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            reply = client.get("/api/v1/latest")
            reply.raise_for_status()
            _ = reply.content
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies, rows


def _feed(url: str, ids: list[int], stop: threading.Event, counts: dict) -> None:
    """Commit readings like ingest (one transaction + NOTIFY per batch, every point once a second), and alarms."""
    from core import channels
    from ingest.writer import announce, write_readings

    batches_per_s = 10
    per_batch = max(1, len(ids) // batches_per_s)
    with psycopg.connect(url, autocommit=True) as conn:
        n = 0
        next_at = time.monotonic()
        while not stop.is_set():
            chunk = ids[(n % batches_per_s) * per_batch :][:per_batch]
            with conn.transaction():
                now = datetime.now(UTC)
                rows = [(now, pid, 20.0 + (n % 50), 0) for pid in chunk]
                write_readings(conn, rows)
                announce(conn, f"bench-{n}", rows)
            counts["readings"] += len(rows)
            if n % 5 == 0:
                event = {
                    "alarm_id": n,
                    "event_id": n,
                    "site": SITE,
                    "area": "formation",
                    "kind": "raise",
                    "state": "active_unacked",
                    "priority": "high",
                    "at": datetime.now(UTC).isoformat(),
                    "actor": "benchmark",
                    "drill": True,
                }
                conn.execute("SELECT pg_notify(%s, %s)", (channels.ALARMS, json.dumps(event)))
                counts["alarms"] += 1
            n += 1
            next_at += 1 / batches_per_s
            stop.wait(max(0.0, next_at - time.monotonic()))


def _serve(port: int, env: dict[str, str]) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=REPO_ROOT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            _stop(server)
            raise RuntimeError("the API did not start")
        time.sleep(0.1)


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(5)


def run(args: argparse.Namespace) -> dict:
    from core.embedded import free_port, start_pgserver, with_dbname

    work = Path(tempfile.mkdtemp(prefix="ehs-bench-api-"))
    services, server = [], None
    admin_url, name = args.database_url, None
    try:
        if admin_url:
            name = f"ehs_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url, db_kind = with_dbname(admin_url, name), "configured server, fresh database"
        else:
            pg = start_pgserver(work / "pgdata")
            services.append(pg)
            url, db_kind = pg.url, "embedded pgserver"
        ids = _seed(url, args.devices, args.points)
        port = free_port("127.0.0.1")
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "EHS_DATABASE_URL": url,
            "EHS_SECRET_KEY": secrets.token_urlsafe(32),
            "EHS_API_AUTH_RATE_LIMIT": "1000/minute",
            "EHS_API_WS_MAX_CLIENTS": str(args.clients + 10),
            "EHS_API_WS_READING_INTERVAL_S": str(args.interval),
            "EHS_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO_ROOT),
        }
        # the database path first (EHS_API_LATEST_FROM_CACHE=false), then the default server
        server = _serve(port, {**env, "EHS_API_LATEST_FROM_CACHE": "false"})
        token = _admin_token(url, base)
        db_latencies, _ = _measure_latest(base, token, min(args.seconds, 10.0), len(ids))
        _stop(server)
        server = _serve(port, env)
        latencies, rows = _measure_latest(base, token, args.seconds, len(ids))

        points_file = work / "points.json"
        points_file.write_text(json.dumps(ids))
        stop, counts = threading.Event(), {"readings": 0, "alarms": 0}
        clients = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.api",
                "--ws-clients",
                "--ws-url",
                f"ws://127.0.0.1:{port}/api/v1/ws",
                "--token",
                token,
                "--points-file",
                str(points_file),
                "--clients",
                str(args.clients),
                "--seconds",
                str(SETTLE_S + args.seconds + DRAIN_S),
            ],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(SETTLE_S)  # connections and snapshots before measuring
        feeder = threading.Thread(target=_feed, args=(url, ids, stop, counts), daemon=True)
        feeder.start()
        time.sleep(args.seconds)
        stop.set()  # the clients keep listening for DRAIN_S more
        feeder.join(10)
        out, _ = clients.communicate(timeout=DRAIN_S + 120)
        live = json.loads(out.strip().splitlines()[-1])
        latest, from_db = _percentiles(latencies), _percentiles(db_latencies)
        delivery, alarms = _percentiles(live["readings"]), _percentiles(live["alarms"])
        return {
            "latest_p50_ms": round(latest["p50"], 1),
            "latest_p95_ms": round(latest["p95"], 1),
            "latest_p99_ms": round(latest["p99"], 1),
            "latest_rows": rows,
            "latest_requests": len(latencies),
            "latest_db_p50_ms": round(from_db["p50"], 1),
            "latest_db_p95_ms": round(from_db["p95"], 1),
            "latest_db_p99_ms": round(from_db["p99"], 1),
            "ws_clients": live["connected"],
            "ws_delivery_p50_ms": round(delivery["p50"], 1),
            "ws_delivery_p99_ms": round(delivery["p99"], 1),
            "ws_alarm_p50_ms": round(alarms["p50"], 1),
            "ws_alarm_p99_ms": round(alarms["p99"], 1),
            "ws_readings_received": len(live["readings"]),
            "ws_alarms_received": len(live["alarms"]),
            "alarms_sent": counts["alarms"],
            "readings_committed": counts["readings"],
            "reading_interval_s": args.interval,
            "ws_failed": live["failed"],
            "ws_problems": live["problems"],
            "database": db_kind,
        }
    finally:
        if server is not None:
            _stop(server)
        if name:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for service in services:
            service.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks/api.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time of each part")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--points", type=int, default=10, help="points per device")
    parser.add_argument("--clients", type=int, default=200, help="WebSocket clients")
    parser.add_argument("--interval", type=float, default=0.5, help="EHS_API_WS_READING_INTERVAL_S")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("EHS_BENCH_DATABASE_URL"),
        help="server on which to create a fresh database (default: embedded pgserver)",
    )
    parser.add_argument("--ws-clients", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ws-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--points-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ws_clients:
        ws_clients(args)
        return
    result = run(args)
    lines = [
        f"plant      : {args.devices * args.points:,} points with readings; API: one uvicorn worker; "
        f"{result['database']}",
        f"latest     : {result['latest_rows']:,} rows per call, {result['latest_requests']} calls in "
        f"{args.seconds:.0f} s: p50 {result['latest_p50_ms']} ms, p95 {result['latest_p95_ms']} ms, "
        f"p99 {result['latest_p99_ms']} ms (target p95 <= 50 ms; served from the live cache)",
        f"  database : p50 {result['latest_db_p50_ms']} ms, p95 {result['latest_db_p95_ms']} ms, "
        f"p99 {result['latest_db_p99_ms']} ms (EHS_API_LATEST_FROM_CACHE=false: one query per call)",
        f"live       : {result['ws_clients']} WebSocket clients x {POINTS_PER_CLIENT} points + alarms; "
        f"{result['readings_committed']:,} readings committed (every point once a second), coalescing interval "
        f"{args.interval} s",
        f"  readings : {result['ws_readings_received']:,} delivered, delay p50 {result['ws_delivery_p50_ms']} ms, "
        f"p99 {result['ws_delivery_p99_ms']} ms (reading time -> client)",
        f"  alarms   : {result['ws_alarms_received']:,} delivered of {result['alarms_sent'] * result['ws_clients']:,} "
        f"sent x clients, delay p50 {result['ws_alarm_p50_ms']} ms, p99 {result['ws_alarm_p99_ms']} ms",
    ]
    if result["ws_failed"] or result["ws_problems"]:
        lines.append(f"  problems : {result['ws_failed']} {result['ws_problems']}")
    for line in lines:
        print(line)  # noqa: T201
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    main()
