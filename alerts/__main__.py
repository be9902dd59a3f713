"""Composition root of the alerts worker: ``python -m alerts`` (docker-compose, ``ehs up``)."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime

import psycopg

from alerts import service
from alerts.settings import AlertSettings
from alerts.worker import AlertsWorker
from core.db import BackgroundConnection
from core.logging import setup_logging
from core.settings import get_settings
from hazwaste import compliance
from hazwaste.settings import HazwasteSettings

_LOGGER = logging.getLogger("alerts")


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
            except Exception:                    # a bug in one evaluation must not stop the next ones
                _LOGGER.exception("hazardous-waste evaluation failed")
            stop.wait(settings.evaluate_s)
    finally:
        db.close()


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    if not settings.database_url or not settings.mqtt_url:
        raise SystemExit("python -m alerts needs EHS_DATABASE_URL and EHS_MQTT_URL (`ehs up` sets them)")
    worker = AlertsWorker(database_url=settings.database_url, mqtt_url=settings.mqtt_url,
                          secret=settings.secret_key.get_secret_value(), settings=AlertSettings())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    hazwaste = HazwasteSettings()
    if hazwaste.evaluate_s > 0:
        threading.Thread(target=evaluate_hazwaste, args=(settings.database_url, hazwaste, stop),
                         name="hazwaste-evaluation", daemon=True).start()
    _LOGGER.info("alerts worker: MQTT %s; acknowledgements, retries, timeouts, shelving, floods, alarm events; "
                 "notifications %s", worker.interlock.address.redacted(),
                 f"on ({worker.settings.notify_senders} senders)" if worker.notifier else "off")
    stop.wait()
    worker.stop()


if __name__ == "__main__":
    main()
