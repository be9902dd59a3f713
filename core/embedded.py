"""Embedded defaults: a local PostgreSQL (pgserver) and a local MQTT broker, so a fresh machine needs nothing.

Configured servers always win (``EHS_DATABASE_URL``, ``EHS_MQTT_URL``). The embedded broker is a
``mosquitto`` binary when one is on the PATH, else the pure-Python ``amqtt`` broker (MQTT 3.1.1 only, about
850 QoS 1 messages/s: enough for the demo and a small plant, not for benchmarks; ARCHITECTURE.md Running).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_LOGGER = logging.getLogger(__name__)

EMBEDDED_DBNAME = "ehs"


@dataclass
class Service:
    """A server the process uses, and how to stop it if we started it."""

    url: str
    kind: str  # "external", "pgserver", "mosquitto", "amqtt"
    _stop: list = field(default_factory=list, repr=False)

    @property
    def embedded(self) -> bool:
        return self.kind != "external"

    def stop(self) -> None:
        while self._stop:
            with contextlib.suppress(Exception):
                self._stop.pop()()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, *, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Block until ``host:port`` accepts TCP connections (readiness, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker process exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")
        time.sleep(0.05)


def with_dbname(url: str, dbname: str) -> str:
    """Return a PostgreSQL URL pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


# --- PostgreSQL -----------------------------------------------------------------------------------------


def start_pgserver(pgdata: Path, *, dbname: str = EMBEDDED_DBNAME) -> Service:
    """Start (or join) an embedded PostgreSQL with its data in ``pgdata``; kept between runs."""
    import pgserver  # imported here: only the embedded path needs it

    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # As root, pgserver runs postgres as the system user "pgserver", which must be able to reach the
        # data folder (postgres itself insists that the folder stays private, so only its parents change).
        with contextlib.suppress(OSError):
            for parent in pgdata.parents:
                parent.chmod(parent.stat().st_mode | 0o011)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    admin_url = server.get_uri()
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')
    return Service(server.get_uri(dbname), "pgserver", [server.cleanup])


def resolve_database(database_url: str | None, data_dir: Path) -> Service:
    """The configured database, else the embedded one under ``data_dir/pgdata``."""
    if database_url:
        return Service(database_url, "external")
    return start_pgserver(data_dir / "pgdata")


# --- MQTT broker ----------------------------------------------------------------------------------------

_MOSQUITTO_CONF = """\
# Written by ehs-monitor for the embedded broker; local use only.
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {state}/
autosave_interval 30
# Ingest acknowledges only after commit, so the broker must let it hold many messages in flight
# (MQTT 5 clients also announce their Receive Maximum) and must keep what a disconnected persistent
# session has not yet received instead of dropping it after the default 1000 messages.
max_inflight_messages 0
max_queued_messages 1000000
max_queued_bytes 0
message_size_limit 0
log_dest file {state}/mosquitto.log
"""

_AMQTT_CONF = """\
listeners:
  default:
    type: tcp
    bind: 127.0.0.1:{port}
plugins:
  amqtt.plugins.authentication.AnonymousAuthPlugin: {{allow_anonymous: true}}
"""


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_broker(state_dir: Path, *, prefer: str | None = None) -> Service:
    """Start an embedded broker on a free local port; ``prefer`` is "mosquitto" or "amqtt".

    Without ``prefer``, ``EHS_EMBEDDED_BROKER`` (``mosquitto``, ``amqtt`` or ``auto``) decides, so that the pure-Python
    broker of a bare machine can be tried on a machine that has Mosquitto.
    """
    if prefer is None:
        prefer = os.environ.get("EHS_EMBEDDED_BROKER", "auto").strip().lower() or "auto"
    if prefer not in ("auto", "mosquitto", "amqtt"):
        raise ValueError(f"EHS_EMBEDDED_BROKER must be auto, mosquitto or amqtt, not {prefer!r}")
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    mosquitto = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )
    use_mosquitto = mosquitto is not None and prefer != "amqtt"
    if use_mosquitto:
        conf = state_dir / "mosquitto.conf"
        conf.write_text(_MOSQUITTO_CONF.format(port=port, state=state_dir))
        cmd = [mosquitto, "-c", str(conf)]
        kind = "mosquitto"
    else:
        conf = state_dir / "amqtt.yaml"
        conf.write_text(_AMQTT_CONF.format(port=port))
        cmd = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
        kind = "amqtt"
    log = open(state_dir / f"{kind}.out", "ab")  # noqa: SIM115 - closed by the stop callback
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, proc=proc)
    except Exception:
        _terminate(proc)
        log.close()
        raise
    return Service(f"mqtt://127.0.0.1:{port}", kind, [log.close, lambda: _terminate(proc)])


def resolve_broker(mqtt_url: str | None, data_dir: Path) -> Service:
    """The configured broker, else an embedded one with its state under ``data_dir/broker``."""
    if mqtt_url:
        return Service(mqtt_url, "external")
    return start_broker(data_dir / "broker")
