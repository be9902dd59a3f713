"""Helpers for tests: small plant configurations, MQTT publishing, waiting on conditions."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from core import mqtt as mq
from core.plant import PlantConfig

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The public data folder (``../shared/data`` beside the repository, or ``EHS_SHARED_DATA``)."""
    candidates = [os.environ.get("EHS_SHARED_DATA"), REPO_ROOT.parent / "shared" / "data", "/work/shared/data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return REPO_ROOT.parent / "shared" / "data"


def wait_for(
    condition: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.05, message: str = "condition"
) -> Any:
    """Poll until ``condition()`` is truthy and return it; fail after ``timeout`` (readiness, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


def unique_code(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def small_plant(site: str, *, devices: int = 2, extra_points: int = 0) -> PlantConfig:
    """A one-area plant: gas detectors with h2/co/voc points (and ``extra_points`` more gauges each)."""
    return PlantConfig.model_validate(
        {
            "sites": [
                {
                    "code": site,
                    "name": f"测试厂 {site}",
                    "areas": [
                        {
                            "code": "formation",
                            "name": "化成",
                            "process": "formation",
                            "devices": [
                                {
                                    "code": f"gas-{i:02d}",
                                    "name": f"气体探测器 {i}",
                                    "kind": "gas_detector",
                                    "interval_s": 1,
                                    "points": [
                                        {"key": "h2_ppm", "name": "氢气", "quantity": "h2", "range": [0, 40000]},
                                        {"key": "co_ppm", "name": "一氧化碳", "quantity": "co", "range": [0, 1000]},
                                        {"key": "voc_ppm", "name": "VOC", "quantity": "voc", "range": [0, 2000]},
                                        *(
                                            {"key": f"t{j}_temp_c", "name": f"温度 {j}", "quantity": "temperature"}
                                            for j in range(extra_points)
                                        ),
                                    ],
                                }
                                for i in range(devices)
                            ],
                        }
                    ],
                }
            ]
        }
    )


def count(url: str, sql: str, params: tuple = ()) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchone()[0]


class Publisher:
    """A QoS 1 publisher that records which messages the broker acknowledged."""

    def __init__(self, broker_url: str) -> None:
        self.address = mq.BrokerAddress.parse(broker_url)
        self.protocol = mq.detect_protocol(self.address)
        self.client = mq.new_client(self.address, protocol=self.protocol)
        self.acked: set[int] = set()
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        mq.connect_blocking(self.client, self.address)

    def _on_publish(self, _client, _userdata, mid, _rc, _props) -> None:
        with self._lock:
            self.acked.add(mid)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False):
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def spawn(module: str, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    """Run ``python -m module`` with the repository on the path, output to ``log``."""
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=full_env,
        cwd=REPO_ROOT,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )  # noqa: SIM115


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


class StoppablePostgres:
    """A private embedded PostgreSQL that a test may stop and start again (pgserver's binaries)."""

    def __init__(self, pgdata: Path) -> None:
        from core.embedded import start_pgserver

        self.service = start_pgserver(pgdata, dbname="ehs")
        self.url = self.service.url
        self.pgdata = pgdata.resolve()

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        user = "pgserver" if os.geteuid() == 0 else None
        pg_ctl(list(args), pgdata=self.pgdata, user=user, timeout=30)

    def stop(self) -> None:
        self._pg_ctl("-w", "stop", "-m", "fast")

    def start(self) -> None:
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.pgdata}", "-l", str(self.pgdata / "log"), "start")

    def close(self) -> None:
        # pgserver only knows the postmaster it started; one restarted by ``start`` must be stopped here
        if (self.pgdata / "postmaster.pid").exists():
            try:
                self.stop()
            except Exception:  # noqa: BLE001 - already stopped
                pass
        self.service.stop()


def seal_template(admin_url: str, name: str) -> None:
    """Refuse new connections to a built template and end its sessions (TimescaleDB's scheduler connects to
    every database with the extension; a template with a session cannot be copied)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        for _ in range(200):
            left = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()[0]
            if not left:
                return
            time.sleep(0.05)
        raise AssertionError(f"sessions on template {name} did not end")
