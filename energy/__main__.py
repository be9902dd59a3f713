"""``python -m energy``: the energy job. Every ``EHS_ENERGY_INTERVAL_S`` it turns new and late counter readings into
15-minute intervals and days (``energy.intervals.refresh``), then evaluates the energy findings (balance, demand)
of every site and hands the changes to the alarm engine in the same transaction.

The composition root of the energy domain (it wires ``alerts.service``), like ``python -m compliance``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime

import psycopg

from alerts import service as alert_service
from core.db import execute, heartbeat, sign_off
from core.logging import setup_logging
from core.model import Finding
from core.settings import get_settings
from energy import balance, intervals, jobs

_LOGGER = logging.getLogger("energy")


def run_once(conn: psycopg.Connection, *, now: datetime) -> tuple[intervals.RefreshSummary, list[Finding]]:
    """One run in one transaction: intervals, days, findings and their alarms."""
    with conn.transaction():
        done = jobs.refresh(conn, now=now)
        findings: list[Finding] = []
        for (site,) in execute(conn, "SELECT code FROM site ORDER BY id").fetchall():
            findings += balance.evaluate(conn, site=site, now=now)
        if findings:
            alert_service.apply_findings(conn=conn, findings=findings, now=now)
    return done, findings


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    if not settings.database_url:
        raise SystemExit("python -m energy needs EHS_DATABASE_URL (`ehs up` sets it)")
    interval = float(os.environ.get("EHS_ENERGY_INTERVAL_S", "60"))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    started = datetime.now(UTC)
    instance = f"{socket.gethostname()}:{os.getpid()}"
    runs = readings = found = errors = 0
    down = False
    next_run = 0.0
    while not stop.is_set():
        try:
            with psycopg.connect(settings.database_url, connect_timeout=5, autocommit=True) as conn:
                if time.monotonic() >= next_run:
                    done, findings = run_once(conn, now=datetime.now(UTC))
                    runs, readings, found = runs + 1, readings + done.readings, found + len(findings)
                    next_run = time.monotonic() + interval
                heartbeat(
                    conn,
                    service="energy",
                    instance=instance,
                    started_at=started,
                    counters={"runs": runs, "readings": readings, "findings": found, "errors": errors},
                )
            if down:
                _LOGGER.warning("energy: database is back")
            down = False
        except psycopg.OperationalError as exc:
            if not down:
                _LOGGER.error("energy: database unavailable: %s", exc)
            down = True
        except Exception:  # noqa: BLE001 - one bad run must not end the job
            errors += 1
            next_run = time.monotonic() + interval
            _LOGGER.exception("energy: this run failed; the next one is in %.0f s", interval)
        stop.wait(min(interval, 10.0))
    sign_off(settings.database_url, service="energy", instance=instance)


if __name__ == "__main__":
    main()
