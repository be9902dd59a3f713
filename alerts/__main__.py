"""Composition root of the alerts worker: ``python -m alerts`` (docker-compose, ``ehs up``)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from alerts import service
from alerts.settings import AlertSettings
from alerts.worker import AlertsWorker
from core import audit
from core.clock import SystemClock
from core.db import BackgroundConnection
from core.logging import setup_logging
from core.settings import get_settings
from energy import abnormal_job
from hazwaste import compliance
from hazwaste.settings import HazwasteSettings
from reports.delivery import Delivery
from reports.schedules import Scheduler

_LOGGER = logging.getLogger("alerts")
#: Exit code of a worker that found one of its threads stuck or dead (its supervisor starts it again).
EXIT_STUCK = 3


def _anchor_audit(url: str, directory: Path, every_s: float, stop: threading.Event) -> None:
    """Anchor the audit chain's head where the database role cannot write (core.audit), until ``stop``."""
    while not stop.is_set():
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                audit.anchor(conn, directory, now=datetime.now(UTC))
        except (psycopg.Error, OSError) as exc:
            _LOGGER.warning("cannot anchor the audit record: %s", str(exc).strip())
        stop.wait(every_s)


def evaluate_hazwaste(url: str, settings: HazwasteSettings, stop: threading.Event) -> None:
    """Every ``evaluate_s``: the hazardous-waste checks, their changed findings recorded as alarms."""
    db = BackgroundConnection(url, purpose="hazardous-waste evaluation", logger=_LOGGER)

    def work(conn: psycopg.Connection) -> None:
        now = datetime.now(UTC)
        with conn.transaction():
            findings = compliance.evaluate(conn=conn, now=now, calendar=settings.calendar(), dwell=settings.dwell)
            if findings:
                service.apply_findings(conn=conn, findings=findings, now=now)

    try:
        while not stop.is_set():
            try:
                db.run(work)
            except Exception:  # a bug in one evaluation must not stop the next ones
                _LOGGER.exception("hazardous-waste evaluation failed")
            stop.wait(settings.evaluate_s)
    finally:
        db.close()


def evaluate_energy(url: str, settings: abnormal_job.AbnormalSettings, stop: threading.Event) -> None:
    """Every ``evaluate_s``: the abnormal-energy-consumption checks, their changed findings recorded as alarms."""
    db = BackgroundConnection(url, purpose="abnormal-energy evaluation", logger=_LOGGER)

    def work(conn: psycopg.Connection) -> None:
        now = datetime.now(UTC)
        with conn.transaction():
            findings = abnormal_job.evaluate(conn=conn, now=now, settings=settings)
            if findings:
                service.apply_findings(conn=conn, findings=findings, now=now)

    try:
        while not stop.is_set():
            try:
                db.run(work)
            except Exception:  # a bug in one evaluation must not stop the next ones
                _LOGGER.exception("abnormal-energy evaluation failed")
            stop.wait(settings.evaluate_s)
    finally:
        db.close()


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    if not settings.database_url or not settings.mqtt_url:
        raise SystemExit("python -m alerts needs EHS_DATABASE_URL and EHS_MQTT_URL (`ehs up` sets them)")
    worker = AlertsWorker(
        database_url=settings.database_url,
        mqtt_url=settings.mqtt_url,
        secret=settings.keyring,
        settings=AlertSettings(),
        interlock_secret=settings.interlock_root,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    if worker.settings.audit_anchor_s > 0:
        threading.Thread(
            target=_anchor_audit,
            name="audit-anchor",
            daemon=True,
            args=(settings.database_url, settings.data_dir / "audit", worker.settings.audit_anchor_s, stop),
        ).start()
    # report schedules: a thread of its own; finished reports go out through the notification outbox
    delivery = Delivery(settings.keyring, worker.settings.public_url)
    scheduler = Scheduler(settings.database_url, clock=SystemClock(), delivery=delivery)
    scheduler.start()
    hazwaste = HazwasteSettings()
    if hazwaste.evaluate_s > 0:
        threading.Thread(
            target=evaluate_hazwaste,
            args=(settings.database_url, hazwaste, stop),
            name="hazwaste-evaluation",
            daemon=True,
        ).start()
    energy = abnormal_job.AbnormalSettings()
    if energy.evaluate_s > 0:
        threading.Thread(
            target=evaluate_energy,
            args=(settings.database_url, energy, stop),
            name="energy-abnormal-evaluation",
            daemon=True,
        ).start()
    _LOGGER.info(
        "alerts worker: MQTT %s; acknowledgements, retries, timeouts, shelving, floods, alarm events; notifications %s",
        worker.interlock.address.redacted(),
        f"on ({worker.settings.notify_senders} senders)" if worker.notifier else "off",
    )
    while not stop.wait(1.0):
        if failures := worker.liveness.failures():
            # a stuck thread may never return: report, then leave at once so that the supervisor starts a fresh
            # process (``ehs up``, docker-compose ``restart:``, systemd)
            _LOGGER.critical("alerts worker is stuck: %s; exiting", ", ".join(failures))
            worker.report_failure(failures)
            logging.shutdown()
            os._exit(EXIT_STUCK)
    scheduler.stop()
    worker.stop()


if __name__ == "__main__":
    main()
