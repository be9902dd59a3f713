"""``python -m compliance``: evaluate the outfalls every ``EHS_COMPLIANCE_INTERVAL_S`` and raise alarms.

The composition root of the compliance job: its findings go to the alarm engine (``alerts.service``) in the same
transaction as the results and the watermark, like the rules' findings in ingest.
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
from compliance.job import ComplianceJob
from core.db import heartbeat, sign_off
from core.logging import setup_logging
from core.model import Finding
from core.settings import get_settings

_LOGGER = logging.getLogger("compliance")


def evaluate_and_alarm(conn: psycopg.Connection, job: ComplianceJob, *, now: datetime) -> list[Finding]:
    """One run in one transaction: results, watermarks, and the alarms of the findings."""
    with conn.transaction():
        findings = job.run_once(conn, now=now)
        if findings:
            alert_service.apply_findings(conn=conn, findings=findings, now=now)
    return findings


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    if not settings.database_url:
        raise SystemExit("python -m compliance needs EHS_DATABASE_URL (`ehs up` sets it)")
    interval = float(os.environ.get("EHS_COMPLIANCE_INTERVAL_S", "60"))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    job = ComplianceJob()
    started = datetime.now(UTC)
    instance = f"{socket.gethostname()}:{os.getpid()}"
    runs = found = errors = 0
    down = False
    next_run = 0.0
    while not stop.is_set():
        try:
            with psycopg.connect(settings.database_url, connect_timeout=5, autocommit=True) as conn:
                if time.monotonic() >= next_run:
                    found += len(evaluate_and_alarm(conn, job, now=datetime.now(UTC)))
                    runs += 1
                    next_run = time.monotonic() + interval
                # heartbeat more often than the API's 30 s staleness, whatever the evaluation interval
                heartbeat(
                    conn,
                    service="compliance",
                    instance=instance,
                    started_at=started,
                    counters={"runs": runs, "findings": found, "errors": errors},
                )
            if down:
                _LOGGER.warning("compliance: database is back")
            down = False
        except psycopg.OperationalError as exc:
            if not down:
                _LOGGER.error("compliance: database unavailable: %s", exc)
            down = True
        except Exception:  # noqa: BLE001 - one bad run (a bug, data the database refuses) must not end the job
            errors += 1
            next_run = time.monotonic() + interval
            _LOGGER.exception("compliance: this run failed; the next one is in %.0f s", interval)
        stop.wait(min(interval, 10.0))
    sign_off(settings.database_url, service="compliance", instance=instance)  # only a death leaves a stale row


if __name__ == "__main__":
    main()
