"""Ingest benchmark: published -> committed readings per second, against the raw COPY ceiling.

A separate publisher process sends a synthetic plant's telemetry (default 1,000 devices x 10 points, each
message one device with 10 timestamps = 100 readings, the gateway shape of ARCHITECTURE.md) at QoS 1 to a
real Mosquitto, as fast as the broker accepts it, for ``--seconds``. Ingest runs as its own process
(``python -m ingest``) into a fresh database. Then the same rows are COPYed straight into the same (emptied)
table through the same writer, in transactions of the same size, to measure the ceiling.

Prints the figures, then one JSON line (ARCHITECTURE.md, Performance targets).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from benchmarks.common import (
    REPO_ROOT,
    add_server_arguments,
    ingest_counters,
    ingest_env,
    payload_templates,
    process_tree_cpu,
    publishing_client,
    server_pids,
    servers,
    start_ingest,
)
from core import storage

SITE = "bench"


def _plant(devices: int, points: int):
    from core.plant import PlantConfig

    return PlantConfig.model_validate(
        {
            "sites": [
                {
                    "code": SITE,
                    "name": "基准测试",
                    "areas": [
                        {
                            "code": "formation",
                            "name": "化成",
                            "process": "formation",
                            "devices": [
                                {
                                    "code": f"dev-{d:04d}",
                                    "name": f"设备 {d}",
                                    "kind": "formation_cabinet",
                                    "interval_s": 1,
                                    "points": [
                                        {
                                            "key": f"t{p}_temp_c",
                                            "name": f"温度 {p}",
                                            "quantity": "temperature",
                                            "range": [-50, 1200],
                                        }
                                        for p in range(points)
                                    ],
                                }
                                for d in range(devices)
                            ],
                        }
                    ],
                }
            ]
        }
    )


# --- publisher process ------------------------------------------------------------------------------------


def publisher(args: argparse.Namespace) -> None:
    """Publish for ``seconds``; print one JSON line with what the broker acknowledged."""
    client, acked = publishing_client(args.mqtt_url, queued=5000)
    per_ts = args.readings_per_message // args.points
    topics, templates = zip(*payload_templates(SITE, args.devices, args.points, args.readings_per_message), strict=True)
    sent = 0
    round_no = 0
    stamps: list[int] = []
    started = time.time()
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        # live timestamps, as devices send them (never in the future, never two alike for one device)
        ts0 = max(int(time.time() * 1000) - per_ts, (stamps[-1] + per_ts) if stamps else 0)
        stamps.append(ts0)
        for d, topic in enumerate(topics):
            payload = (templates[d] % tuple(range(ts0, ts0 + per_ts))).encode()
            while True:
                info = client.publish(topic, payload, qos=args.qos)
                if info.rc == 0:
                    break
                time.sleep(0.001)  # paho's queue is full: let the network catch up
            sent += 1
        round_no += 1
    while acked[0] < sent and args.qos > 0:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    print(
        json.dumps(
            {
                "started": started,
                "messages": sent,
                "readings": sent * per_ts * args.points,  # noqa: T201
                "stamps": stamps,
                "rounds": round_no,
                "cpu_s": time.process_time(),
            }
        )
    )


# --- the benchmark ------------------------------------------------------------------------------------------


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _copy_ceiling(url: str, pub: dict, args: argparse.Namespace) -> float:
    """COPY the same rows (same points, timestamps and values) into the emptied table, same batch size."""
    from core.registry import load_index
    from ingest.writer import write_readings

    with psycopg.connect(url, autocommit=True) as conn:
        index = load_index(conn)
        conn.execute("TRUNCATE reading")
        points = [
            [index.devices[(SITE, f"dev-{d:04d}")].points[f"t{p}_temp_c"].id for p in range(args.points)]
            for d in range(args.devices)
        ]
        per_ts = args.readings_per_message // args.points
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        rows = []
        for r in range(pub["rounds"]):
            for d in range(args.devices):
                for j in range(per_ts):
                    ts = epoch + timedelta(milliseconds=pub["stamps"][r] + j)
                    rows += [(ts, points[d][i], 20.0 + (d + j + i) % 50, 0) for i in range(args.points)]
        rows = rows[: pub["readings"]]
        started = time.perf_counter()
        for i in range(0, len(rows), args.batch):
            with conn.transaction():
                write_readings(conn, rows[i : i + args.batch])
        elapsed = time.perf_counter() - started
    return len(rows) / elapsed


def _compressed_bytes(url: str) -> int:
    """Compress every chunk (TimescaleDB with compression) and return the table's bytes on disk."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('reading') c")
        return storage.storage_bytes(conn)


def run(args: argparse.Namespace) -> dict:
    from core.plant import apply_plant

    with servers(args, prefix="ehs-bench-") as s:
        with psycopg.connect(s.database_url) as conn:
            apply_plant(conn=conn, plant=_plant(args.devices, args.points), source="benchmark")
        env = ingest_env(s, EHS_INGEST_HEARTBEAT_S="0.2", EHS_INGEST_BATCH_MAX_READINGS=str(args.batch))
        ingest = start_ingest(env)
        pids = {"ingest": [ingest.pid], **server_pids(s)}
        cpu_before = {name: process_tree_cpu(p) for name, p in pids.items()}
        wall_before = time.monotonic()
        try:
            pub_args = [
                sys.executable,
                "-m",
                "benchmarks.ingest",
                "--publisher",
                "--mqtt-url",
                s.mqtt_url,
                "--seconds",
                str(args.seconds),
                "--devices",
                str(args.devices),
                "--points",
                str(args.points),
                "--readings-per-message",
                str(args.readings_per_message),
                "--qos",
                str(args.qos),
            ]
            out = subprocess.run(pub_args, env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
            pub = json.loads(out.stdout.strip().splitlines()[-1])
            deadline = time.monotonic() + 300
            while True:
                counters = ingest_counters(s.database_url)
                if counters.get("readings_written", 0) + counters.get("readings_duplicate", 0) >= pub["readings"]:
                    break
                if time.monotonic() > deadline or ingest.poll() is not None:
                    raise RuntimeError(f"ingest did not commit everything: {counters}")
                time.sleep(0.1)
            peak_rss = _peak_rss_mb(ingest.pid)
            cpu = {name: round(process_tree_cpu(p) - cpu_before[name], 1) for name, p in pids.items()}
            cpu["publisher"] = round(pub["cpu_s"], 1)
            cpu["available"] = round((os.cpu_count() or 1) * (time.monotonic() - wall_before), 1)
        finally:
            ingest.terminate()
            ingest.wait(30)
        with psycopg.connect(s.database_url) as conn:
            stored = conn.execute("SELECT count(*) FROM reading").fetchone()[0]
            features = storage.detect(conn)
            size = storage.storage_bytes(conn)
        elapsed = counters["committed_at"] - pub["started"]
        e2e = pub["readings"] / elapsed
        ceiling = _copy_ceiling(s.database_url, pub, args)
        compressed = _compressed_bytes(s.database_url) if features.compression else None
        return {
            "readings_per_s": round(e2e),
            "messages_per_s": round(pub["messages"] / elapsed),
            "readings_per_message": args.readings_per_message,
            "qos": args.qos,
            "copy_ceiling_per_s": round(ceiling),
            "ratio_to_copy": round(e2e / ceiling, 3),
            "peak_rss_mb": round(peak_rss, 1),
            "readings": pub["readings"],
            "stored": stored,
            "devices": args.devices,
            "points": args.devices * args.points,
            "seconds": round(elapsed, 2),
            "transactions": counters.get("transactions"),
            "broker": s.broker,
            "database": s.database,
            "cpu_seconds": cpu,
            "storage": features.describe(),
            "bytes_per_reading": round(size / stored, 1) if stored else None,
            "bytes_per_reading_compressed": round(compressed / stored, 1) if compressed and stored else None,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks/ingest.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="publishing time")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--points", type=int, default=10, help="points per device")
    parser.add_argument("--readings-per-message", type=int, default=100)
    parser.add_argument("--qos", type=int, default=1, choices=(0, 1))
    parser.add_argument("--batch", type=int, default=60000, help="readings per transaction (ingest and ceiling)")
    add_server_arguments(parser)
    parser.add_argument("--publisher", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.publisher:
        publisher(args)
        return
    result = run(args)
    lines = [
        f"shape      : {args.devices} devices x {args.points} points, {args.readings_per_message} readings/message, "
        f"QoS {args.qos}",
        f"servers    : {result['broker']} broker, {result['database']}",
        f"end-to-end : {result['readings_per_s']:,} readings/s ({result['messages_per_s']:,} messages/s), "
        f"{result['readings']:,} readings in {result['seconds']} s, {result['stored']:,} stored",
        f"COPY ceiling: {result['copy_ceiling_per_s']:,} readings/s (same rows, same table, same batch size)",
        f"ratio      : {result['ratio_to_copy']:.0%} of the ceiling (target >= 60%; target >= 100,000 readings/s)",
        f"ingest peak RSS: {result['peak_rss_mb']} MB",
        f"storage    : {result['bytes_per_reading']} bytes per reading as ingested (table, indexes, all partitions "
        f"or chunks)"
        + (f", {result['bytes_per_reading_compressed']} compressed" if result["bytes_per_reading_compressed"] else "")
        + f"; {result['storage']}",
        "CPU seconds during the run: " + ", ".join(f"{k} {v}" for k, v in result["cpu_seconds"].items()),
    ]
    for line in lines:
        print(line)  # noqa: T201
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    main()
