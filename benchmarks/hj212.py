"""HJ 212 benchmark: frames parsed per second, and TCP frame -> reading committed with many concurrent loggers.

1. Parse: the codec (length, CRC16, data segment, CP items) over realistic real-time and hourly frames, in this
   process, for a few seconds.
2. End to end: the listener runs as its own process (``python -m ingest.hj212``) on a fresh database holding
   ``--loggers`` data loggers (7 mapped points each). One load process opens a TCP connection per logger and
   each logger sends real-time (2011) frames with Flag A=1 the way loggers do: send, wait for the 9014 data
   answer, send the next. The listener sends 9014 only after the transaction holding the frame's readings has
   committed, so every answer is a committed frame; its latency is frame -> reading committed.

Prints the figures, then one JSON line (ARCHITECTURE.md, Performance targets).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from benchmarks.common import REPO_ROOT, process_tree_cpu

TZ = ZoneInfo("Asia/Shanghai")
PW = "123456"
FACTORS = [
    ("w01018", 42.5),
    ("w21003", 3.21),
    ("w21011", 0.32),
    ("w21001", 11.4),
    ("w21017", 2.05),
    ("w01001", 7.31),
    ("w00000", 12.75),
]
KEYS = ["cod_mg_l", "ammonia_mg_l", "tp_mg_l", "tn_mg_l", "fluoride_mg_l", "ph_ph", "flow_l_s"]
QUANTITIES = ["cod", "ammonia", "total_phosphorus", "total_nitrogen", "fluoride", "ph", "flow"]


def mn_of(i: int) -> str:
    return f"0100BENCH{i:015d}"


def _plant(loggers: int):
    from core.plant import PlantConfig

    return PlantConfig.model_validate(
        {
            "sites": [
                {
                    "code": "bench",
                    "name": "基准测试",
                    "areas": [
                        {
                            "code": "wastewater",
                            "name": "污水站",
                            "process": "wastewater",
                            "devices": [
                                {
                                    "code": f"logger-{i:04d}",
                                    "name": f"数采仪 {i}",
                                    "kind": "data_logger",
                                    "interval_s": 60,
                                    "points": [
                                        {"key": k, "name": k, "quantity": q}
                                        for k, q in zip(KEYS, QUANTITIES, strict=True)
                                    ],
                                    "hj212": {
                                        "mn": mn_of(i),
                                        "password": PW,
                                        "st": "32",
                                        "fields": [
                                            {"field": f"{code}-Rtd", "point": key}
                                            for (code, _), key in zip(FACTORS, KEYS, strict=True)
                                        ],
                                    },
                                }
                                for i in range(loggers)
                            ],
                        }
                    ],
                }
            ]
        }
    )


def _realtime(i: int, when: datetime, k: int):
    from ingest.hj212 import Message, build_frame, cp_groups
    from ingest.hj212.segment import new_qn

    items = [{"DataTime": when}] + [
        {f"{code}-Rtd": round(value + (k % 7) / 10, 2), f"{code}-Flag": "N"} for code, value in FACTORS
    ]
    return build_frame(Message(st="32", cn="2011", mn=mn_of(i), pw=PW, qn=new_qn(when), flag=5, cp=cp_groups(items)))


def parse_rate(seconds: float) -> tuple[float, float, float]:
    """Frames parsed per second (real-time and hourly frames alternating), mean frame bytes, MB/s."""
    from ingest.hj212 import parse_frame

    base = datetime(2026, 1, 1, 8, 0)
    frames = [_realtime(i % 50, base + timedelta(seconds=i), i) for i in range(500)]
    frames += [
        b"##0325QN=20160801090000001;ST=32;CN=2061;PW=123456;MN=010000A8900016F000169DC0;Flag=5;CP=&&"
        b"DataTime=20160801080000;w00000-Cou=63.0,w00000-Min=16.4,w00000-Avg=17.5,w00000-Max=20.1,"
        b"w00000-Flag=N;w01001-Min=7.1,w01001-Avg=7.5,w01001-Max=7.8,w01001-Flag=N;w01018-Cou=63.0,"
        b"w01018-Min=40.1,w01018-Avg=40.1,w01018-Max=40.1,w01018-Flag=N&&B7C1\r\n"
    ] * 500
    size = sum(len(f) for f in frames) / len(frames)
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for frame in frames:
            parse_frame(frame)
        count += len(frames)
    rate = count / (time.perf_counter() - started)
    return rate, size, rate * size / 1e6


# --- load process -------------------------------------------------------------------------------------------


def _fast_realtime(mn: str, when: datetime, k: int) -> bytes:
    """The same frame as ``_realtime`` by string formatting (the load generator must stay cheap)."""
    from ingest.hj212 import wrap

    stamp = when.strftime("%Y%m%d%H%M%S")
    items = ";".join(f"{code}-Rtd={value + (k % 7) / 10:.2f},{code}-Flag=N" for code, value in FACTORS)
    return wrap(f"QN={stamp}000;ST=32;CN=2011;PW={PW};MN={mn};Flag=5;CP=&&DataTime={stamp};{items}&&")


async def _logger(
    i: int, port: int, stop_at: float, start: datetime, latencies: list[float], counts: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    mn = mn_of(i)
    k = 0
    try:
        while time.monotonic() < stop_at:
            frame = _fast_realtime(mn, start + timedelta(seconds=k), k)
            sent = time.perf_counter()
            writer.write(frame)
            answer = await reader.readuntil(b"\r\n")  # the run as a whole has a time-out
            if b"CN=9014" not in answer:
                raise RuntimeError(f"logger {i}: unexpected answer {answer[:80]!r}")
            latencies.append(time.perf_counter() - sent)
            counts[0] += 1
            k += 1
    finally:
        writer.close()


async def _load(loggers: int, port: int, seconds: float) -> dict:
    start = (datetime.now(TZ) - timedelta(days=20)).replace(tzinfo=None, microsecond=0)
    latencies: list[float] = []
    counts = [0]
    cpu = time.process_time()
    began = time.monotonic()
    stop_at = began + seconds
    await asyncio.wait_for(
        asyncio.gather(*(_logger(i, port, stop_at, start, latencies, counts) for i in range(loggers))), seconds + 120
    )
    elapsed = time.monotonic() - began
    latencies.sort()
    return {
        "frames": counts[0],
        "seconds": elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
        "cpu_s": time.process_time() - cpu,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _database(args: argparse.Namespace):
    """A fresh migrated database on the configured server, else on an embedded pgserver."""
    from core.embedded import start_pgserver, with_dbname
    from core.migrate import migrate

    if args.database_url:
        name = f"ehs_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = with_dbname(args.database_url, name)

        def drop() -> None:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        migrate(url)
        return url, "configured server, fresh database", drop
    import tempfile
    from pathlib import Path

    service = start_pgserver(Path(tempfile.mkdtemp(prefix="ehs-bench-hj212-")) / "pgdata")
    migrate(service.url)
    return service.url, "embedded pgserver", service.stop


def run(args: argparse.Namespace) -> dict:
    from core.plant import apply_plant

    parse_s = min(args.seconds, 5.0)
    parsed, frame_bytes, mb_s = parse_rate(parse_s)
    url, database, cleanup = _database(args)
    try:
        with psycopg.connect(url) as conn:
            apply_plant(conn=conn, plant=_plant(args.loggers), source="benchmark")
        port = _free_port()
        env = {
            **os.environ,
            "EHS_DATABASE_URL": url,
            "EHS_HJ212_PORT": str(port),
            "EHS_HJ212_HOST": "127.0.0.1",
            "EHS_HJ212_HEARTBEAT_S": "0.5",
            "EHS_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO_ROOT),
        }
        listener = subprocess.Popen([sys.executable, "-m", "ingest.hj212"], env=env, cwd=REPO_ROOT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or listener.poll() is not None:
                        raise RuntimeError("the HJ 212 listener did not start") from None
                    time.sleep(0.1)
            cpu_before = process_tree_cpu([listener.pid])
            load = asyncio.run(_load(args.loggers, port, args.seconds))
            listener_cpu = process_tree_cpu([listener.pid]) - cpu_before
            peak = _peak_rss_mb(listener.pid)
            time.sleep(1.0)  # one more heartbeat with the final counters
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT counters FROM service_heartbeat WHERE service = 'hj212'").fetchone()
            counters = row[0] if row else {}
        finally:
            listener.terminate()
            listener.wait(30)
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM reading").fetchone()[0]
            flags = conn.execute("SELECT count(*) FROM reading_flag").fetchone()[0]
            dead = conn.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
    finally:
        cleanup()
    per_frame = len(FACTORS)
    return {
        "parse_frames_per_s": round(parsed),
        "parse_mb_per_s": round(mb_s, 1),
        "frame_bytes": round(frame_bytes),
        "loggers": args.loggers,
        "e2e_frames_per_s": round(load["frames"] / load["seconds"]),
        "e2e_readings_per_s": round(load["frames"] * per_frame / load["seconds"]),
        "readings_per_frame": per_frame,
        "frame_to_commit_p50_ms": round(load["p50_ms"], 1),
        "frame_to_commit_p99_ms": round(load["p99_ms"], 1),
        "frames_answered": load["frames"],
        "readings_stored": stored,
        "flags_stored": flags,
        "dead_letters": dead,
        "listener_peak_rss_mb": round(peak, 1),
        "listener_cpu_s": round(listener_cpu, 1),
        "load_cpu_s": round(load["cpu_s"], 1),
        "seconds": round(load["seconds"], 2),
        "database": database,
        "transactions": counters.get("transactions"),
        "commit_ms_mean": round(counters.get("commit_ms_total", 0) / max(counters.get("transactions", 0), 1), 1),
        "frames_per_transaction": round(
            counters.get("committed_frames", 0) / max(counters.get("transactions", 0), 1), 1
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks/hj212.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time of the end-to-end part")
    parser.add_argument("--loggers", type=int, default=500, help="concurrent loggers, one TCP connection each")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("EHS_BENCH_DATABASE_URL"),
        help="server on which to create a fresh database (default: embedded pgserver)",
    )
    args = parser.parse_args(argv)
    result = run(args)
    lines = [
        f"parse      : {result['parse_frames_per_s']:,} frames/s ({result['parse_mb_per_s']} MB/s, mean frame "
        f"{result['frame_bytes']} bytes; real-time and hourly frames, one core)",
        f"end-to-end : {result['e2e_frames_per_s']:,} frames/s = {result['e2e_readings_per_s']:,} readings/s "
        f"committed and answered (9014), {result['loggers']} concurrent loggers each waiting for its answer",
        f"latency    : frame -> committed and answered p50 {result['frame_to_commit_p50_ms']} ms, "
        f"p99 {result['frame_to_commit_p99_ms']} ms",
        f"stored     : {result['readings_stored']:,} readings ({result['frames_answered']:,} frames answered x "
        f"{result['readings_per_frame']}), {result['flags_stored']:,} flags other than N, "
        f"{result['dead_letters']} dead letters",
        f"listener   : {result['transactions']} transactions, {result['frames_per_transaction']} frames and "
        f"{result['commit_ms_mean']} ms each; peak "
        f"RSS {result['listener_peak_rss_mb']} MB, {result['listener_cpu_s']} CPU s; load "
        f"generator {result['load_cpu_s']} CPU s; {result['database']}",
    ]
    for line in lines:
        print(line)  # noqa: T201
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    main()
