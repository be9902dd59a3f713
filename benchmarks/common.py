"""What the benchmarks share: the servers they run against, ingest as its own process, and its counters."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg

REPO_ROOT = Path(__file__).resolve().parents[1]


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mqtt-url",
        default=os.environ.get("EHS_BENCH_MQTT_URL"),
        help="use this broker instead of an embedded Mosquitto",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("EHS_BENCH_DATABASE_URL"),
        help="server on which to create a fresh database (default: embedded pgserver)",
    )


@dataclass(frozen=True)
class Servers:
    mqtt_url: str
    broker: str  # how it was found, for the printed figures
    database_url: str
    database: str
    work: Path


@contextmanager
def servers(args: argparse.Namespace, *, prefix: str) -> Iterator[Servers]:
    """A broker (the configured one, else an embedded Mosquitto) and a fresh, migrated database."""
    from core.embedded import start_broker, start_pgserver, with_dbname
    from core.migrate import migrate

    work = Path(tempfile.mkdtemp(prefix=prefix))
    started, name = [], None
    try:
        if args.mqtt_url:
            mqtt_url, broker = args.mqtt_url, "configured"
        else:
            service = start_broker(work / "broker", prefer="mosquitto")
            started.append(service)
            mqtt_url, broker = service.url, f"embedded {service.kind}"
        if args.database_url:
            name = f"ehs_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            db_url, database = with_dbname(args.database_url, name), "configured server, fresh database"
        else:
            service = start_pgserver(work / "pgdata")
            started.append(service)
            db_url, database = service.url, "embedded pgserver"
        migrate(db_url)
        yield Servers(mqtt_url, broker, db_url, database, work)
    finally:
        if name:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for service in reversed(started):
            service.stop()


def ingest_env(s: Servers, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "EHS_DATABASE_URL": s.database_url,
        "EHS_MQTT_URL": s.mqtt_url,
        "EHS_DATA_DIR": str(s.work),
        "EHS_INGEST_CLIENT_ID": f"bench-{uuid.uuid4().hex[:8]}",
        "EHS_INGEST_SESSION_EXPIRY_S": "60",
        "EHS_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO_ROOT),
        **extra,
    }


def ingest_counters(url: str) -> dict:
    """The newest heartbeat counters of ingest."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT counters FROM service_heartbeat WHERE service = 'ingest' ORDER BY updated_at DESC LIMIT 1"
        ).fetchone()
    return row[0] if row else {}


def start_ingest(env: dict[str, str]) -> subprocess.Popen:
    """``python -m ingest`` as its own process; return once it is connected to the broker."""
    proc = subprocess.Popen([sys.executable, "-m", "ingest"], env=env, cwd=REPO_ROOT)
    deadline = time.monotonic() + 60
    while not ingest_counters(env["EHS_DATABASE_URL"]).get("mqtt_connected"):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("ingest did not start")
        time.sleep(0.1)
    return proc


def payload_templates(site: str, devices: int, points: int, readings_per_message: int) -> list[tuple[str, str]]:
    """(topic, payload template) per device: ``readings_per_message`` readings of ``t<i>_temp_c`` points over
    ``readings_per_message / points`` timestamps left open (``%d``), so the load generator stays cheap and the
    machine's cores go to the system under test."""
    keys = [f"t{p}_temp_c" for p in range(points)]
    per_ts = readings_per_message // points
    out = []
    for d in range(devices):
        body = orjson.dumps(
            [
                {"ts": -(j + 1), "values": {k: 20.0 + (d + j + i) % 50 for i, k in enumerate(keys)}}
                for j in range(per_ts)
            ]
        ).decode()
        for j in range(per_ts):
            body = body.replace(f'"ts":-{j + 1},', '"ts":%d,', 1)
        out.append((f"ehs/v1/{site}/dev-{d:04d}/telemetry", body))
    return out


def publishing_client(mqtt_url: str, *, queued: int):
    """A connected QoS 1 publisher and the one-element list counting what the broker acknowledged."""
    from core import mqtt as mq

    address = mq.BrokerAddress.parse(mqtt_url)
    client = mq.new_client(address, protocol=mq.detect_protocol(address))
    client.max_inflight_messages_set(2000)
    client.max_queued_messages_set(queued)
    acked = [0]
    client.on_publish = lambda *_a: acked.__setitem__(0, acked[0] + 1)  # paho calls it from one thread
    mq.connect_blocking(client, address)
    return client, acked


def process_tree_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by these processes and their children."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def server_pids(s: Servers) -> dict[str, list[int]]:
    """The embedded broker's and database's process ids (empty lists for configured servers)."""
    import psutil

    broker = [
        p.pid for p in psutil.process_iter(["cmdline"]) if str(s.work / "broker") in " ".join(p.info["cmdline"] or [])
    ]
    pid_file = s.work / "pgdata" / "postmaster.pid"
    postgres = [int(pid_file.read_text().split()[0])] if pid_file.exists() else []
    return {"broker": broker, "postgres": postgres}
